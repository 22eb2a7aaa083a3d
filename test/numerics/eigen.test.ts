import { strict as assert } from 'node:assert';
import { createComputeBackend, type ComputeBackend } from '../../src/engine/numerics/backend';
import { denseToBand, panelQR } from '../../src/engine/numerics/band-reduction';
import { BandMatrix, bandToTridiagonal } from '../../src/engine/numerics/band-tridiagonal';
import { EigenPool } from '../../src/engine/numerics/eigen-pool';
import { gramEigenvalues } from '../../src/engine/numerics/gram-spectrum';
import { jacobiEigen } from '../../src/engine/numerics/small-symmetric';
import { symmetricEigenvalues, tridiagonalQL } from '../../src/engine/numerics/symmetric-eigen';
import { tridiagonalEigenvalues } from '../../src/engine/numerics/tridiagonal-eigen';
import { gaussian, jacobiEigenvaluesRef, maxAbsDiff, symmetricWithEigenvalues } from './reference';

const desc = (x: readonly number[]) => [...x].sort((a, b) => b - a);

describe('symmetric eigenvalue kernels (float64 references)', function () {
  let backend: ComputeBackend;
  before(async () => (backend = await createComputeBackend('cpu')));
  after(async () => backend.dispose());

  it('tridiagonal QL: the (-1, 2, -1) matrix has eigenvalues 2 - 2 cos(k pi/(n+1)) (closed form, 1e-13)', () => {
    for (const n of [1, 2, 3, 50, 400]) {
      const got = tridiagonalEigenvalues(new Float64Array(n).fill(2), new Float64Array(n - 1).fill(-1));
      const want = desc(Array.from({ length: n }, (_, k) => 2 - 2 * Math.cos(((k + 1) * Math.PI) / (n + 1))));
      assert.ok(maxAbsDiff(got, want) <= 1e-13, `n=${n}: ${maxAbsDiff(got, want)}`);
    }
  });

  it('tridiagonal QL: split blocks (zero couplings) and repeated eigenvalues', () => {
    // blocks [[1,1],[1,1]] (eigenvalues 2, 0), [5] and [[3,0],[0,3]]
    const got = tridiagonalEigenvalues([1, 1, 5, 3, 3], [1, 0, 0, 0]);
    assert.ok(maxAbsDiff(got, [5, 3, 3, 2, 0]) <= 1e-14, [...got].join(','));
  });

  it('Pal-Walker-Kahan tridiagonal eigenvalues equal implicit QL\'s (1e-13 of the largest), random and graded over 8 decades, with splits', () => {
    const g = gaussian(23);
    for (const [n, graded] of [[300, false], [300, true], [2, false], [7, true]] as const) {
      const d = Float64Array.from({ length: n }, (_, i) => (graded ? 10 ** ((-8 * i) / n) : 1) * g());
      const e = Float64Array.from({ length: n - 1 }, (_, i) => (i % 50 === 49 ? 0 : (graded ? 10 ** ((-8 * i) / n) : 1) * g()));
      const ref = Float64Array.from(d);
      const refE = Float64Array.from({ length: n }, (_, i) => (i === 0 ? 0 : e[i - 1]!));
      tridiagonalQL(ref, refE);
      const want = desc([...ref]);
      const got = tridiagonalEigenvalues(d, e);
      assert.ok(maxAbsDiff(got, want) <= 1e-13 * Math.max(...want.map(Math.abs)), `n=${n} graded=${graded}: ${maxAbsDiff(got, want)}`);
    }
  });

  it('band -> tridiagonal bulge chasing keeps the eigenvalues of random band matrices (vs cyclic Jacobi, 1e-12 relative)', () => {
    const g = gaussian(21);
    for (const [n, b] of [[2, 1], [5, 8], [37, 5], [64, 1], [120, 16], [161, 32]] as const) {
      const dense = new Float64Array(n * n);
      const band = new BandMatrix(n, b);
      for (let j = 0; j < n; j++) for (let i = j; i < Math.min(n, j + b + 1); i++) {
        const x = g();
        dense[i * n + j] = dense[j * n + i] = x;
        band.set(i, j, x);
      }
      const want = jacobiEigenvaluesRef(dense, n);
      const { d, e } = bandToTridiagonal(band);
      const got = tridiagonalEigenvalues(d, e);
      assert.ok(maxAbsDiff(got, want) <= 1e-12 * Math.abs(want[0]!) * Math.sqrt(n), `n=${n} b=${b}: ${maxAbsDiff(got, want)}`);
    }
  });

  it('panel QR: Q R reproduces the panel and Q = I - V T V^T is orthogonal (1e-14)', () => {
    const g = gaussian(5);
    for (const [rows, b] of [[2, 16], [16, 16], [40, 8], [9, 4]] as const) {
      const p = Float64Array.from({ length: rows * b }, g);
      const { k, v, t, r } = panelQR(p, rows, b);
      const q = new Float64Array(rows * rows);
      for (let i = 0; i < rows; i++) for (let j = 0; j < rows; j++) {
        let s = i === j ? 1 : 0;
        for (let a = 0; a < k; a++) for (let c = a; c < k; c++) s -= v[i * k + a]! * t[a * k + c]! * v[j * k + c]!;
        q[i * rows + j] = s;
      }
      for (let i = 0; i < rows; i++) for (let j = 0; j < b; j++) {
        let s = 0;
        for (let l = 0; l < k; l++) s += q[i * rows + l]! * r[l * b + j]!;
        assert.ok(Math.abs(s - p[i * b + j]!) <= 1e-14 * 10, `QR[${i},${j}]`);
      }
      for (let i = 0; i < rows; i++) for (let j = 0; j < rows; j++) {
        let s = 0;
        for (let l = 0; l < rows; l++) s += q[l * rows + i]! * q[l * rows + j]!;
        assert.ok(Math.abs(s - (i === j ? 1 : 0)) <= 1e-14 * 10, `Q^T Q[${i},${j}]`);
      }
    }
  });

  // Sizes around and between multiples of the band width exercise the first/last panel paths.
  // Deferred groups run while n - o >= (GROUP + 4) b: 300/16 and 513/32 panel by panel, 260/4 and 400/6 both ways.
  for (const [n, b, deferred] of [[17, 16, true], [18, 16, true], [33, 16, true], [300, 16, true], [513, 32, true], [260, 4, true], [400, 6, true], [400, 6, false]] as const) {
    it(`two-stage (ORT float64 stage one${deferred ? ', deferred groups where large' : ', panel by panel'}) on a constructed spectrum, n=${n}, b=${b}: eigenvalues within 1e-12 of |lambda|max`, async () => {
      const lambda = Array.from({ length: n }, (_, i) => (i % 3 === 0 ? -1 : 1) * 10 * 0.97 ** i);
      lambda[n >> 1] = 0; // an exact zero and a repeated value
      lambda[(n >> 1) + 1] = lambda[1]!;
      const a = symmetricWithEigenvalues(lambda, 100 + n);
      const band = await denseToBand(backend, a, n, b, 'float64', { deferred });
      const { d, e } = bandToTridiagonal(band);
      const got = tridiagonalEigenvalues(d, e);
      assert.ok(maxAbsDiff(got, desc(lambda)) <= 1e-12 * 10, `max error ${maxAbsDiff(got, desc(lambda))}`);
    });
  }

  it('two-stage in float32 (the production path), n=700: eigenvalues within 2e-6 of lambda_max', async () => {
    const n = 700;
    const lambda = Array.from({ length: n }, (_, i) => 1 / (1 + i));
    const a = symmetricWithEigenvalues(lambda, 7);
    const got = await gramEigenvalues(backend, Float32Array.from(a), n);
    // float32 rounding of the input alone moves eigenvalues by up to ~eps32 * ||A||_F
    assert.ok(maxAbsDiff(got, desc(lambda)) <= 2e-6, `max error ${maxAbsDiff(got, desc(lambda))}`);
  });

  it('one-stage JS solver and small Jacobi solver agree with cyclic Jacobi (1e-12)', () => {
    const g = gaussian(9);
    for (const n of [1, 3, 40, 90]) {
      const a = new Float64Array(n * n);
      for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) a[i * n + j] = a[j * n + i] = g();
      const want = jacobiEigenvaluesRef(a, n);
      assert.ok(maxAbsDiff(symmetricEigenvalues(a.slice(), n), want) <= 1e-12 * n, `one-stage n=${n}`);
      const { values, vectors } = jacobiEigen(a.slice(), n);
      assert.ok(maxAbsDiff(values, want) <= 1e-12 * n, `jacobiEigen n=${n}`);
      // A x = lambda x for the returned vectors
      for (let c = 0; c < n; c++) for (let i = 0; i < n; i++) {
        let s = 0;
        for (let k = 0; k < n; k++) s += a[i * n + k]! * vectors[k * n + c]!;
        assert.ok(Math.abs(s - values[c]! * vectors[i * n + c]!) <= 1e-11 * n, `A v = lambda v, n=${n}`);
      }
    }
  });

  it('the eigen pool really runs jobs on a worker thread, and matches inline solving', async () => {
    const pool = new EigenPool(1);
    try {
      assert.equal(pool.threads, 1);
      const a = symmetricWithEigenvalues([3, 2, 1, 0.5], 1);
      const r = await pool.solve({ kind: 'dense', n: 4, a });
      assert.ok(maxAbsDiff(r.ev, [3, 2, 1, 0.5]) <= 1e-14);
      assert.ok(maxAbsDiff(await pool.eigenvalues(symmetricWithEigenvalues([1, -1], 2), 2), [1, -1]) <= 1e-14);
    } finally {
      await pool.dispose();
    }
  });
});
