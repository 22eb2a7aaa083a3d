import { strict as assert } from 'node:assert';
import { createComputeBackend, type ComputeBackend } from '../../src/engine/numerics/backend';
import { truncatedSvd } from '../../src/engine/numerics/truncated-svd';
import { isMoeInspectorError } from '../../src/engine/errors';
import { gaussian, jacobiSingularValues, randomOrthonormal } from './reference';

/** D = U diag(s) V^T with the factors kept, so the test knows the exact singular vectors too. */
function constructed(m: number, n: number, s: readonly number[], seed: number) {
  const r = s.length;
  const U = randomOrthonormal(m, r, seed);
  const V = randomOrthonormal(n, r, seed + 1);
  const d = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
    let acc = 0;
    for (let k = 0; k < r; k++) acc += U[i * r + k]! * s[k]! * V[j * r + k]!;
    d[i * n + j] = acc;
  }
  return { d, U, V };
}

/** |<column a of X [rows, ca], column b of Y [rows, cb]>| */
function colDot(x: ArrayLike<number>, ca: number, a: number, y: ArrayLike<number>, cb: number, b: number, rows: number): number {
  let s = 0;
  for (let i = 0; i < rows; i++) s += x[i * ca + a]! * y[i * cb + b]!;
  return Math.abs(s);
}

describe('truncatedSvd vs exact references', function () {
  let backend: ComputeBackend;
  before(async () => (backend = await createComputeBackend('cpu')));
  after(async () => backend.dispose());

  for (const [m, n, r] of [[60, 40, 5], [300, 513, 16], [513, 300, 24], [700, 700, 32]] as const) {
    it(`${m}x${n}, rank ${r} of a constructed spectrum: s within 1e-5 s_max, vectors aligned to 1e-5, error = exact tail energy (1e-5 relative)`, async () => {
      const k = Math.min(m, n);
      // descending, with a gap of 0.6 after s_r: top r, then a slowly decaying tail
      const s = Array.from({ length: Math.min(k, 3 * r) }, (_, i) => (i < r ? 10 * 0.93 ** i : 0.6 * 10 * 0.93 ** (r - 1) * 0.97 ** (i - r)));
      const { d, U, V } = constructed(m, n, s, m + n + r);
      const res = await truncatedSvd(backend, { rows: m, cols: n, data: Float32Array.from(d) }, r);
      assert.equal(res.s.length, r);
      assert.equal(res.u.length, m * r);
      assert.equal(res.v.length, n * r);
      for (let i = 0; i < r; i++) {
        assert.ok(Math.abs(res.s[i]! - s[i]!) <= 1e-5 * s[0]!, `s_${i}: ${res.s[i]} vs ${s[i]}`);
        // singular vectors up to sign (every s_i here is simple)
        assert.ok(colDot(res.u, r, i, U, s.length, i, m) >= 1 - 1e-5, `u_${i} alignment ${colDot(res.u, r, i, U, s.length, i, m)}`);
        assert.ok(colDot(res.v, r, i, V, s.length, i, n) >= 1 - 1e-5, `v_${i} alignment`);
      }
      const total = s.reduce((a, x) => a + x * x, 0);
      const tail = s.slice(r).reduce((a, x) => a + x * x, 0);
      const exactError = Math.sqrt(tail / total);
      assert.ok(Math.abs(res.relativeError - exactError) <= 1e-5 * exactError + 1e-6, `relative error ${res.relativeError} vs exact ${exactError}`);
      assert.ok(Math.abs(res.energyKept - (1 - tail / total)) <= 1e-6, `energy kept ${res.energyKept}`);
    });
  }

  it('a random (non-constructed) delta: singular values match one-sided Jacobi (1e-5 s_max), error matches the Jacobi tail', async () => {
    const g = gaussian(31);
    const [m, n, r] = [90, 50, 10];
    const d = Float32Array.from({ length: m * n }, g);
    const ref = jacobiSingularValues(Float64Array.from(d), m, n);
    const res = await truncatedSvd(backend, { rows: m, cols: n, data: d }, r);
    for (let i = 0; i < r; i++) assert.ok(Math.abs(res.s[i]! - ref[i]!) <= 1e-5 * ref[0]!, `s_${i}: ${res.s[i]} vs ${ref[i]}`);
    const total = ref.reduce((a, x) => a + x * x, 0);
    const exact = Math.sqrt(ref.slice(r).reduce((a, x) => a + x * x, 0) / total);
    assert.ok(Math.abs(res.relativeError - exact) <= 1e-5, `${res.relativeError} vs ${exact}`);
  });

  it('a flat (native-like Gaussian) spectrum, 200x150 rank 20: still converges; s within 1e-5 s_max, error = Jacobi tail (1e-6)', async () => {
    const g = gaussian(4);
    const [m, n, r] = [200, 150, 20];
    const d = Float32Array.from({ length: m * n }, g);
    const ref = jacobiSingularValues(Float64Array.from(d), m, n);
    const res = await truncatedSvd(backend, { rows: m, cols: n, data: d }, r);
    for (let i = 0; i < r; i++) assert.ok(Math.abs(res.s[i]! - ref[i]!) <= 1e-5 * ref[0]!, `s_${i}: ${res.s[i]} vs ${ref[i]}`);
    const total = ref.reduce((a, x) => a + x * x, 0);
    const exact = Math.sqrt(ref.slice(r).reduce((a, x) => a + x * x, 0) / total);
    assert.ok(Math.abs(res.relativeError - exact) <= 1e-6, `${res.relativeError} vs ${exact}`);
  });

  it('exact rank r: rank r leaves no error; rank 0 keeps nothing; a zero delta is exact', async () => {
    const { d } = constructed(40, 30, [5, 3, 1], 3);
    const full = await truncatedSvd(backend, { rows: 40, cols: 30, data: Float32Array.from(d) }, 3);
    assert.ok(full.relativeError < 1e-6 && Math.abs(full.energyKept - 1) < 1e-6, `${full.relativeError}`);
    const none = await truncatedSvd(backend, { rows: 40, cols: 30, data: Float32Array.from(d) }, 0);
    assert.equal(none.relativeError, 1);
    assert.equal(none.energyKept, 0);
    const zero = await truncatedSvd(backend, { rows: 40, cols: 30, data: new Float32Array(1200) }, 4);
    assert.equal(zero.relativeError, 0);
    assert.ok(zero.s.every((x) => x === 0));
  });

  it('a rank outside 0..min(out, in) is a usage error', async () => {
    await assert.rejects(truncatedSvd(backend, { rows: 4, cols: 3, data: new Float32Array(12) }, 4), (e: unknown) => isMoeInspectorError(e) && e.code === 'usage');
  });
});
