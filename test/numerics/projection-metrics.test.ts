import { strict as assert } from 'node:assert';
import { createComputeBackend, ort, type ComputeBackend } from '../../src/engine/numerics/backend';
import { matmulGraph } from '../../src/engine/numerics/graphs';
import { symmetricEigenvalues } from '../../src/engine/numerics/symmetric-eigen';
import { projectionMetrics, singularValueFloor } from '../../src/engine/numerics/projection-metrics';
import { singularValues } from '../../src/engine/numerics/gram-spectrum';
import { isMoeInspectorError } from '../../src/engine/errors';
import type { ExpertMatrix } from '../../src/engine/layouts/types';
import { gaussian, jacobiSingularValues, refEffectiveRank, withSpectrum } from './reference';

const THRESHOLDS = [0.9, 0.95, 0.99] as const;

/** Experts base + D_p and base - D_p (antithetic pairs: the mean expert is exactly `base`), D_p with spectrum s_p. */
function pairedExperts(m: number, n: number, spectra: number[][], seed: number): ExpertMatrix[] {
  const g = gaussian(seed);
  const base = Float64Array.from({ length: m * n }, g);
  const experts: ExpertMatrix[] = [];
  spectra.forEach((s, p) => {
    const d = withSpectrum(m, n, s, seed + 10 * (p + 1));
    for (const sign of [1, -1]) experts.push({ rows: m, cols: n, data: Float32Array.from(base, (b, i) => b + sign * d[i]!) });
  });
  return experts;
}

describe('projection metrics on ONNX Runtime', function () {
  let backend: ComputeBackend;
  before(async () => (backend = await createComputeBackend('cpu')));
  after(async () => backend.dispose());

  it('the project-built ONNX graph runs in a real session and matches a direct product', async () => {
    const g = gaussian(1);
    const A = Float64Array.from({ length: 7 * 5 }, g);
    const B = Float64Array.from({ length: 5 * 3 }, g);
    const out = await backend.run(matmulGraph('float64', 2, 2), { A: new ort.Tensor('float64', A, [7, 5]), B: new ort.Tensor('float64', B, [5, 3]) });
    const C = out['C']!.data as Float64Array;
    for (let i = 0; i < 7; i++) for (let j = 0; j < 3; j++) {
      let acc = 0;
      for (let k = 0; k < 5; k++) acc += A[i * 5 + k]! * B[k * 3 + j]!;
      assert.ok(Math.abs(C[i * 3 + j]! - acc) < 1e-12);
    }
    assert.equal(backend.executionProvider, 'cpu');
  });

  it('symmetric eigenvalues match a constructed spectrum to 1e-12 relative (n = 5, 64, 257)', () => {
    for (const n of [5, 64, 257]) {
      const lam = Array.from({ length: n }, (_, i) => (i % 2 ? -1 : 1) * (1 + i) ** 1.5);
      const Q = withSpectrum(n, n, Array(n).fill(1), 100 + n); // an orthogonal matrix (all singular values 1)
      const A = new Float64Array(n * n);
      for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
        let acc = 0;
        for (let k = 0; k < n; k++) acc += Q[i * n + k]! * lam[k]! * Q[j * n + k]!;
        A[i * n + j] = acc;
      }
      const got = symmetricEigenvalues(A, n);
      const want = [...lam].sort((a, b) => b - a);
      const scale = Math.max(...lam.map(Math.abs));
      for (let i = 0; i < n; i++) assert.ok(Math.abs(got[i]! - want[i]!) <= 1e-12 * scale * n, `n=${n} i=${i}: ${got[i]} vs ${want[i]}`);
    }
  });

  for (const [name, m, n, spectra] of [
    ['steep decay, 40x60', 40, 60, [Array.from({ length: 30 }, (_, i) => 0.8 ** i), Array.from({ length: 30 }, (_, i) => 0.7 ** i)]],
    ['flat spectrum, 96x48', 96, 48, [Array.from({ length: 48 }, (_, i) => 1 - i / 100), Array.from({ length: 48 }, (_, i) => 2 - i / 60)]],
    ['exact rank 5 with zeros, 64x64', 64, 64, [[5, 4, 3, 2, 1], [3, 3, 2, 2, 1]]],
    ['blocked sizes, 300x513', 300, 513, [Array.from({ length: 120 }, (_, i) => 1 / (1 + i)), Array.from({ length: 200 }, (_, i) => Math.exp(-i / 40))]],
    ['blocked sizes, down-shaped 513x300', 513, 300, [Array.from({ length: 300 }, (_, i) => 1 - i / 400), Array.from({ length: 37 }, (_, i) => 2 ** -(i / 4))]],
    ['n = 1024, exact rank 200 with zeros', 1024, 1024, [Array.from({ length: 200 }, (_, i) => 3 / Math.sqrt(1 + i))]],
  ] as [string, number, number, number[][]][]) {
    it(`effective ranks equal the constructed ones exactly; singular values above the floor within 1e-4 of sigma_max (${name})`, async () => {
      const experts = pairedExperts(m, n, spectra, 7);
      const r = await projectionMetrics(backend, experts);
      assert.deepEqual(r.shape, [m, n]);
      assert.equal(r.maxRank, Math.min(m, n));
      for (const [j] of experts.entries()) {
        const s = spectra[j >> 1]!;
        for (const t of THRESHOLDS) assert.equal(r.effectiveRank[String(t) as '0.9'][j], refEffectiveRank(s, t), `expert ${j} t=${t}`);
        const got = r.singularValues[j]!;
        assert.equal(got.length, Math.min(m, n));
        for (let i = 0; i < got.length; i++) {
          const want = s[i] ?? 0;
          if (want > r.singularValueFloor) assert.ok(Math.abs(got[i]! - want) <= 1e-4 * s[0]!, `expert ${j} sigma_${i}: ${got[i]} vs ${want}`);
          else assert.ok(got[i]! <= r.singularValueFloor * 1.001 + (want || 0), `expert ${j} sigma_${i} = ${got[i]} above the floor ${r.singularValueFloor} for a true ${want}`);
        }
      }
    });
  }

  it('random deltas: all singular values match one-sided Jacobi in float64 (f32 Grams: 2e-4 of sigma_max; f64: 1e-10)', async () => {
    const g = gaussian(3);
    const experts: ExpertMatrix[] = Array.from({ length: 5 }, () => ({ rows: 33, cols: 21, data: Float32Array.from({ length: 33 * 21 }, g) }));
    const base = new Float64Array(33 * 21);
    for (const e of experts) for (let i = 0; i < base.length; i++) base[i]! += e.data[i]!;
    for (let i = 0; i < base.length; i++) base[i] = Math.fround(base[i]! / experts.length); // the documented f32 mean
    for (const [precision, tol] of [['float32', 2e-4], ['float64', 1e-10]] as const) {
      const r = await projectionMetrics(backend, experts, { precision, analyze: [0, 3] });
      assert.deepEqual(r.expertsAnalyzed, [0, 3]);
      for (const [k, j] of [0, 3].entries()) {
        const d = Float64Array.from(experts[j]!.data, (x, i) => x - base[i]!);
        const want = jacobiSingularValues(d, 33, 21);
        const got = r.singularValues[k]!;
        for (let i = 0; i < 21; i++) assert.ok(Math.abs(got[i]! - want[i]!) <= tol * want[0]!, `${precision} expert ${j} sigma_${i}: ${got[i]} vs ${want[i]}`);
      }
    }
  });

  it('cosine matrix, mean and population std over i<j match a direct float64 computation (1e-6)', async () => {
    const g = gaussian(5);
    const shared = Float64Array.from({ length: 30 * 20 }, g);
    const experts: ExpertMatrix[] = Array.from({ length: 6 }, (_, j) => ({ rows: 30, cols: 20, data: Float32Array.from(shared, (x) => x * (j % 3) + g()) }));
    const r = await projectionMetrics(backend, experts);
    const dot = (a: Float32Array, b: Float32Array) => a.reduce((s, x, i) => s + x * b[i]!, 0);
    const pairs: number[] = [];
    for (let i = 0; i < 6; i++) for (let j = 0; j < 6; j++) {
      const c = dot(experts[i]!.data, experts[j]!.data) / Math.sqrt(dot(experts[i]!.data, experts[i]!.data) * dot(experts[j]!.data, experts[j]!.data));
      assert.ok(Math.abs(r.cosine.matrix[i]![j]! - c) < 1e-6, `cos[${i}][${j}]`);
      if (j > i) pairs.push(c);
    }
    const mean = pairs.reduce((a, b) => a + b, 0) / pairs.length;
    const std = Math.sqrt(pairs.reduce((a, b) => a + (b - mean) ** 2, 0) / pairs.length);
    assert.ok(Math.abs(r.cosine.mean - mean) < 1e-6 && Math.abs(r.cosine.std - std) < 1e-6);
  });

  it('an aborted signal rejects with code "cancelled"', async () => {
    const ac = new AbortController();
    ac.abort();
    const experts = pairedExperts(20, 20, [[1, 0.5]], 9);
    await assert.rejects(projectionMetrics(backend, experts, { signal: ac.signal }), (e: { code?: string }) => e.code === 'cancelled');
  });

  it('the singular value floor bounds the error of every singular value, zeros included (float32, steep spectrum over 8 decades, 600x400)', async () => {
    const s = Array.from({ length: 300 }, (_, i) => 10 * 10 ** (-i / 37)); // 10 .. 1e-7; rank 300 of 400
    const experts = pairedExperts(600, 400, [s], 13);
    const r = await projectionMetrics(backend, experts);
    const sigmaMax = Math.max(...r.singularValues.map((x) => x[0]!));
    const floor = singularValueFloor(sigmaMax, 600, 'float32');
    assert.equal(r.singularValueFloor, floor);
    let worst = 0;
    // the documented formula, sigma_max * sqrt(eps32 sqrt(inner))
    assert.ok(Math.abs(floor - sigmaMax * Math.sqrt(2 ** -23 * Math.sqrt(600))) < 1e-12);
    for (const got of r.singularValues) {
      for (let i = 0; i < 400; i++) {
        worst = Math.max(worst, Math.abs(got[i]! - (s[i] ?? 0)));
        assert.ok(Math.abs(got[i]! - (s[i] ?? 0)) <= floor, `sigma_${i}: ${got[i]} vs ${s[i] ?? 0}, floor ${floor}`);
      }
    }
    // not vacuous: the floor is within a small factor of the worst error actually seen
    assert.ok(worst > floor / 50, `worst error ${worst} is far below the floor ${floor}: the formula is too loose`);
  });

  it('identical experts: every delta is zero, effective rank 0 (stated convention), singular values 0, cosine 1', async () => {
    const g = gaussian(17);
    const w = Float32Array.from({ length: 24 * 16 }, g);
    const experts: ExpertMatrix[] = Array.from({ length: 3 }, () => ({ rows: 24, cols: 16, data: w.slice() }));
    const r = await projectionMetrics(backend, experts);
    for (const t of THRESHOLDS) assert.deepEqual(r.effectiveRank[String(t) as '0.9'], [0, 0, 0]);
    for (const sv of r.singularValues) assert.ok(sv.every((x) => x === 0));
    assert.deepEqual(r.deltaNorms, [0, 0, 0]);
    assert.ok(Math.abs(r.cosine.mean - 1) < 1e-6 && r.cosine.std < 1e-6);
  });

  it('reports the provider, norms (float64 reference, 1e-9 relative) and progress for every analysed expert', async () => {
    const experts = pairedExperts(50, 70, [[4, 2, 1], [1]], 19);
    const progress: [number, number][] = [];
    const r = await projectionMetrics(backend, experts, { analyze: [1, 2], onProgress: (d, t) => progress.push([d, t]) });
    assert.equal(r.executionProvider, 'cpu');
    assert.deepEqual(progress, [[1, 2], [2, 2]]);
    experts.forEach((e, j) => {
      const want = Math.sqrt(e.data.reduce((a, x) => a + x * x, 0));
      assert.ok(Math.abs(r.expertNorms[j]! - want) <= 1e-9 * want);
    });
    // pair 0 = base +/- D_0 (spectrum 4,2,1), pair 1 = base +/- D_1: the mean is base, delta norms are |D|
    assert.ok(Math.abs(r.deltaNorms[0]! - Math.hypot(4, 2, 1)) <= 1e-5 * 4.6, `${r.deltaNorms[0]}`);
    assert.ok(Math.abs(r.deltaNorms[1]! - 1) <= 1e-5, `${r.deltaNorms[1]}`);
  });

  it('cancelling mid-run rejects with "cancelled" before the remaining experts are solved', async () => {
    const experts = pairedExperts(400, 400, Array.from({ length: 6 }, (_, p) => [3, 2, 1 + p]), 23);
    const ac = new AbortController();
    let done = 0;
    const run = projectionMetrics(backend, experts, {
      signal: ac.signal,
      onProgress: (d) => {
        done = d;
        ac.abort();
      },
    });
    await assert.rejects(run, (e: unknown) => isMoeInspectorError(e) && e.code === 'cancelled');
    assert.ok(done < experts.length, `stopped after ${done} of ${experts.length}`);
  });

  it('scale invariance: experts scaled by 1e20 and 1e-20 give the same ranks, singular values scaled (1e-4 of sigma_max) and the same cosines (1e-6)', async () => {
    const spectra = [Array.from({ length: 40 }, (_, i) => 0.9 ** i), Array.from({ length: 60 }, (_, i) => 1 - i / 80)];
    const experts = pairedExperts(64, 96, spectra, 11);
    const ref = await projectionMetrics(backend, experts);
    for (const c of [1e20, 1e-20, 3e36]) {
      const big = experts.map((e) => ({ ...e, data: Float32Array.from(e.data, (x) => x * c) }));
      assert.ok(big.every((e) => e.data.every(Number.isFinite)));
      const r = await projectionMetrics(backend, big);
      for (const t of ['0.9', '0.95', '0.99'] as const) assert.deepEqual(r.effectiveRank[t], ref.effectiveRank[t], `c=${c} t=${t}`);
      for (const [j, s] of r.singularValues.entries()) {
        const want = spectra[j >> 1]!;
        for (let i = 0; i < want.length; i++) assert.ok(Math.abs(s[i]! / c - want[i]!) <= 1e-4 * want[0]!, `c=${c} expert ${j} sigma_${i}: ${s[i]! / c} vs ${want[i]}`);
      }
      for (let i = 0; i < experts.length; i++) for (let j = 0; j < experts.length; j++) assert.ok(Math.abs(r.cosine.matrix[i]![j]! - ref.cosine.matrix[i]![j]!) < 1e-6, `c=${c} cos[${i}][${j}]`);
      assert.ok(Math.abs(r.singularValueFloor / c - ref.singularValueFloor) <= 1e-6 * ref.singularValueFloor);
    }
  });

  it('singularValues (the overlay\'s spectrum) of a constructed 300x200 matrix, plain and scaled by 1e20: within 1e-4 of sigma_max above the floor', async () => {
    const want = Array.from({ length: 150 }, (_, i) => 2 * 0.97 ** i);
    const d = withSpectrum(300, 200, want, 17);
    for (const c of [1, 1e20]) {
      const got = await singularValues(backend, Float32Array.from(d, (x) => x * c), 300, 200);
      assert.equal(got.length, 200);
      const floor = singularValueFloor(want[0]!, 300, 'float32');
      for (let i = 0; i < 200; i++) {
        const w = want[i] ?? 0;
        if (w > floor) assert.ok(Math.abs(got[i]! / c - w) <= 1e-4 * want[0]!, `c=${c} sigma_${i}: ${got[i]! / c} vs ${w}`);
        else assert.ok(got[i]! / c <= floor + w, `c=${c} sigma_${i} = ${got[i]! / c} above the floor ${floor}`);
      }
    }
  });

  it('a solver failure is a "numerics" error naming layer, projection and expert (a NaN reaching the solver)', async () => {
    const experts = pairedExperts(30, 20, [[1, 0.5], [2, 1]], 13);
    experts[2]!.data[17] = Number.NaN; // the reader refuses NaN; here it reaches the solver directly
    await assert.rejects(projectionMetrics(backend, experts, { analyze: [2], label: 'layer 3 gate' }), (e: unknown) => isMoeInspectorError(e) && e.code === 'numerics' && /^layer 3 gate, expert 2: the eigenvalue solver failed/.test(e.message));
  });

  it('bad input: mismatched expert shapes (layout) and analysed indices out of range (usage)', async () => {
    const a: ExpertMatrix = { rows: 4, cols: 3, data: new Float32Array(12) };
    const b: ExpertMatrix = { rows: 3, cols: 4, data: new Float32Array(12) };
    await assert.rejects(projectionMetrics(backend, [a, b]), (e: unknown) => isMoeInspectorError(e) && e.code === 'layout' && /expert 1 is 3x4/.test(e.message));
    await assert.rejects(projectionMetrics(backend, [a, a], { analyze: [2] }), (e: unknown) => isMoeInspectorError(e) && e.code === 'usage');
    await assert.rejects(projectionMetrics(backend, [a]), (e: unknown) => isMoeInspectorError(e) && e.code === 'usage');
  });
});
