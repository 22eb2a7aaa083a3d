import { strict as assert } from 'node:assert';
import { createComputeBackend, type ComputeBackend } from '../../src/engine/numerics/backend';
import { projectionMetrics } from '../../src/engine/numerics/projection-metrics';
import { sharedSpectrumPool, spectrumThreadPlan, threadsFit, THREADS_MEMORY_BUDGET, threadWorkingSet } from '../../src/engine/numerics/spectrum-pool';
import { sharedEigenPool } from '../../src/engine/numerics/eigen-pool';
import { isMoeInspectorError } from '../../src/engine/errors';
import type { ExpertMatrix } from '../../src/engine/layouts/types';
import { gaussian, jacobiSingularValues, refEffectiveRank, withSpectrum } from './reference';

/** base +/- D_p (the mean expert is exactly base), D_p with the given spectra. */
function paired(m: number, n: number, spectra: number[][], seed: number): { experts: ExpertMatrix[]; deltas: Float64Array[] } {
  const g = gaussian(seed);
  const base = Float64Array.from({ length: m * n }, g);
  const experts: ExpertMatrix[] = [];
  const deltas: Float64Array[] = [];
  spectra.forEach((s, p) => {
    const d = withSpectrum(m, n, s, seed + 7 * (p + 1));
    for (const sign of [1, -1]) {
      experts.push({ rows: m, cols: n, data: Float32Array.from(base, (b, i) => b + sign * d[i]!) });
      deltas.push(d.map((x) => sign * x));
    }
  });
  return { experts, deltas };
}

describe('spectrum pool: whole delta spectra on worker threads', function () {
  let backend: ComputeBackend;
  before(async () => (backend = await createComputeBackend('cpu')));
  after(async () => backend.dispose());

  it('starts its threads from the sources under test (and so does the eigen pool)', async () => {
    const pool = await sharedSpectrumPool();
    assert.ok(pool, 'the spectrum pool did not start');
    assert.equal(pool.threads, spectrumThreadPlan().threads);
    await sharedEigenPool().eigenvalues(Float64Array.of(2, 0, 0, 3), 2);
    assert.ok(sharedEigenPool().threads >= 1, 'the eigen pool fell back to inline solving');
  });

  it('plans one thread per core up to 8, extra cores as ORT threads', () => {
    assert.deepEqual(spectrumThreadPlan(1), { threads: 1, ortThreads: 1 });
    assert.deepEqual(spectrumThreadPlan(2), { threads: 2, ortThreads: 1 });
    assert.deepEqual(spectrumThreadPlan(16), { threads: 8, ortThreads: 2 });
    assert.deepEqual(spectrumThreadPlan(20), { threads: 8, ortThreads: 2 });
  });

  it('threads run only where their copies fit the budget: GPT-OSS- and OLMoE-shaped on 2 threads, DeepSeek-V3-shaped not', () => {
    assert.ok(threadsFit(2880, 2880, 2));
    assert.ok(threadsFit(1024, 2048, 2));
    assert.ok(!threadsFit(2048, 7168, 2));
    assert.equal(threadWorkingSet(2048, 7168), 6 * 4 * 2048 * 7168 + 3 * 4 * 2048 * 2048);
    assert.ok(2 * threadWorkingSet(2880, 2880) <= THREADS_MEMORY_BUDGET);
  });

  it('threads and this thread agree with a float64 Jacobi reference on constructed spectra (ranks exact; values 2e-4 sigma_max; delta norms 1e-6)', async () => {
    // 300x200: k = 200 > 96, so the banded two-stage path runs (stage one, chase, PWK).
    const spectra = [0, 1, 2].map((p) => Array.from({ length: 200 }, (_, i) => 10 * Math.exp(-i / (8 + 12 * p)) + 0.01));
    const { experts, deltas } = paired(300, 200, spectra, 41);
    const onThreads = await projectionMetrics(backend, experts, { spectraOn: 'threads' });
    const here = await projectionMetrics(backend, experts, { spectraOn: 'here' });
    for (const [j, d] of deltas.entries()) {
      const ref = jacobiSingularValues(d, 300, 200);
      const smax = ref[0]!;
      for (const m of [onThreads, here]) {
        for (let i = 0; i < ref.length; i++) assert.ok(Math.abs(m.singularValues[j]![i]! - ref[i]!) <= 2e-4 * smax, `expert ${j} s${i}`);
        for (const t of [0.9, 0.95, 0.99] as const) assert.equal(m.effectiveRank[String(t) as '0.9'][j], refEffectiveRank(ref, t), `expert ${j} rank at ${t}`);
        const norm = Math.sqrt(ref.reduce((a, s) => a + s * s, 0));
        assert.ok(Math.abs(m.deltaNorms[j]! - norm) <= 1e-6 * norm);
      }
    }
    assert.deepEqual(onThreads.cosine, here.cosine);
  });

  it('a failure on a thread is one "numerics" error naming the projection and the expert (k = 100: banded path; a NaN reaching the solver)', async () => {
    const { experts } = paired(120, 100, [Array.from({ length: 100 }, (_, i) => 1 / (1 + i)), Array.from({ length: 100 }, () => 1)], 5);
    const clean = experts.map((e) => ({ ...e, data: Float32Array.from(e.data) }));
    experts[2]!.data[17] = Number.NaN; // the reader refuses NaN; here it reaches the solver directly (and the base: every delta is NaN)
    await assert.rejects(
      projectionMetrics(backend, experts, { spectraOn: 'threads', analyze: [2], label: 'layer 3 gate' }),
      (e: unknown) => isMoeInspectorError(e) && e.code === 'numerics' && /^layer 3 gate, expert 2: the eigenvalue solver failed/.test(e.message),
    );
    // the pool still works after a failed expert
    const ok = await projectionMetrics(backend, clean, { spectraOn: 'threads' });
    assert.equal(ok.singularValues.length, 4);
    assert.ok(ok.singularValues.every((s) => s.every(Number.isFinite)));
  });
});
