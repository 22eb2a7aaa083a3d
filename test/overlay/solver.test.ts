/** The engine's ONNX Runtime solver against the exact float64 Jacobi SVD. */
import { strict as assert } from 'node:assert';
import { createComputeBackend, type ComputeBackend } from '../../src/engine/numerics/backend';
import { numericsSolver } from '../../src/engine/overlay/numerics-solver';
import { fillGaussian } from '../../src/engine/synth/random';
import { jacobiSvd } from './reference';

/** U diag(s) V^T + noise, built here in float64 with Gram-Schmidt bases. */
function constructed(m: number, n: number, s: number[], noise: number, seed: number): Float32Array {
  const basis = (len: number, k: number, sd: number) => {
    const cols: Float64Array[] = [];
    for (let c = 0; c < k; c++) {
      const v = new Float64Array(len);
      fillGaussian(v, sd * 100 + c);
      for (let pass = 0; pass < 2; pass++) for (const q of cols) {
        const d = q.reduce((a, x, i) => a + x * v[i]!, 0);
        for (let i = 0; i < len; i++) v[i]! -= d * q[i]!;
      }
      const nv = Math.hypot(...v);
      cols.push(v.map((x) => x / nv));
    }
    return cols;
  };
  const U = basis(m, s.length, seed);
  const V = basis(n, s.length, seed + 1);
  const e = new Float64Array(m * n);
  fillGaussian(e, seed + 7, noise);
  const out = new Float32Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
    let acc = e[i * n + j]!;
    for (let k = 0; k < s.length; k++) acc += U[k]![i]! * s[k]! * V[k]![j]!;
    out[i * n + j] = acc;
  }
  return out;
}

describe('overlay solver on ONNX Runtime vs exact Jacobi SVD', function () {
  let backend: ComputeBackend;
  before(async () => (backend = await createComputeBackend('cpu')));
  after(async () => backend.dispose());

  for (const [m, n] of [[60, 80], [96, 40]] as const) {
    it(`${m}x${n}, constructed spectrum + noise: singular values within 2e-4 sigma_max, rank-r error within 1e-4 of optimal`, async () => {
      const data = constructed(m, n, [5, 4, 3.5, 3, 2, 1.5], 0.01, m + n);
      const delta = { rows: m, cols: n, data };
      const ref = jacobiSvd(data, m, n);
      const solver = numericsSolver(backend);
      const s = await solver.spectrum(delta);
      assert.equal(s.length, Math.min(m, n));
      for (let i = 0; i < s.length; i++) assert.ok(Math.abs(s[i]! - ref.s[i]!) < 2e-4 * ref.s[0]!, `s[${i}] ${s[i]} vs ${ref.s[i]}`);
      const total = ref.s.reduce((a, x) => a + x * x, 0);
      for (const r of [1, 4, 6, 12]) {
        const f = await solver.factors(delta, r);
        let err = 0;
        for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
          let acc = 0;
          for (let k = 0; k < r; k++) acc += f.us[i * r + k]! * f.vt[k * n + j]!;
          err += (data[i * n + j]! - acc) ** 2;
        }
        const optimal = ref.s.slice(r).reduce((a, x) => a + x * x, 0);
        assert.ok(Math.abs(Math.sqrt(err / total) - Math.sqrt(optimal / total)) < 1e-4, `r=${r}: ${Math.sqrt(err / total)} vs optimal ${Math.sqrt(optimal / total)}`);
        for (let k = 0; k < r; k++) assert.ok(Math.abs(f.s[k]! - ref.s[k]!) < 1e-4 * ref.s[0]!, `r=${r} s[${k}]`);
      }
    });
  }

  it('a gapless spectrum (s_i = 0.99^i, the trap for a fixed number of power iterations): rank-r error within 1% of optimal, and the error implied by the returned s equals the reconstruction error (1e-5)', async () => {
    const m = 120;
    const n = 200;
    const r = 16;
    const data = constructed(m, n, Array.from({ length: m }, (_, i) => 0.99 ** i), 0, 3);
    const ref = jacobiSvd(data, m, n);
    const total = ref.s.reduce((a, x) => a + x * x, 0);
    const f = await numericsSolver(backend).factors({ rows: m, cols: n, data }, r);
    let err = 0;
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
      let acc = 0;
      for (let k = 0; k < r; k++) acc += f.us[i * r + k]! * f.vt[k * n + j]!;
      err += (data[i * n + j]! - acc) ** 2;
    }
    const measured = Math.sqrt(err / total);
    const optimal = Math.sqrt(ref.s.slice(r).reduce((a, x) => a + x * x, 0) / total);
    const implied = Math.sqrt(Math.max(0, total - f.s.reduce((a, x) => a + x * x, 0)) / total);
    assert.ok(measured >= optimal * (1 - 1e-6) && measured <= optimal * 1.01, `measured ${measured} vs optimal ${optimal}`);
    assert.ok(Math.abs(implied - measured) <= 1e-5, `implied by s ${implied} vs measured ${measured}`);
  });

  it('a zero delta (an unpaired expert equal to the mean) gives zero factors', async () => {
    const f = await numericsSolver(backend).factors({ rows: 8, cols: 6, data: new Float32Array(48) }, 3);
    assert.ok(f.us.every((x) => x === 0) && f.vt.every((x) => x === 0));
  });
});
