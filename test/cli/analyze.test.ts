/**
 * End to end through the real worker process: synthetic checkpoints of known structure, in every
 * family layout and stored format of the generator, are called what they were built as.
 */
import { strict as assert } from 'node:assert';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WorkerClient } from '../../src/client/worker-client';
import { generateSyntheticCheckpoint, type SynthSpec } from '../../src/engine/synth/generate';
import type { SynthFamily } from '../../src/engine/synth/families';
import type { AnalysisReport } from '../../src/engine/report/schema';
import { ensureBuilt, WORKER } from './build';

const RANKS = { gate: 2, up: 4, down: 3 };

function spec(family: SynthFamily, structure: 'upcycled' | 'native'): SynthSpec {
  const dtype = family === 'gpt_oss' ? 'MXFP4' : family === 'deepseek_v3' ? 'FP8' : family === 'mixtral' ? 'F16' : family === 'olmoe' ? 'F32' : 'BF16';
  return {
    family,
    dtype,
    numLayers: 2,
    numExperts: 6,
    hidden: 160,
    intermediate: 128,
    seed: 11,
    // 4-bit MXFP4 rounding adds independent full-rank noise to every expert: a larger delta keeps
    // the constructed structure above it (with 0.3 the 95% rank of a rank-2 delta reads ~22%).
    structure: structure === 'native' ? { kind: 'native' } : { kind: 'upcycled', ranks: RANKS, ...(dtype === 'MXFP4' ? { deltaScale: 1 } : {}) },
  };
}

const FAMILIES: SynthFamily[] = ['olmoe', 'mixtral', 'qwen2_moe', 'deepseek_v3', 'gpt_oss', 'granitemoe', 'dbrx', 'llama4', 'jamba', 'fused'];

describe('analyze through the worker: synthetic upcycled and native checkpoints in every layout and dtype', function () {
  let root: string;
  let client: WorkerClient;
  before(async () => {
    ensureBuilt();
    root = await mkdtemp(join(tmpdir(), 'moe-analyze-'));
    client = WorkerClient.start({ workerPath: WORKER });
  });
  after(async () => {
    client.dispose();
    await rm(root, { recursive: true, force: true });
  });

  async function analyze(dir: string): Promise<AnalysisReport> {
    const r = await client.run({ kind: 'analyze', model: dir, layers: { kind: 'all' }, sampleExperts: null, device: 'cpu' });
    assert.equal(r.kind, 'analyze');
    return (r as { report: AnalysisReport }).report;
  }

  for (const family of FAMILIES) {
    it(`${family}: upcycled is upcycled with the constructed ranks; native is native`, async () => {
      const up = join(root, `${family}-up`);
      const nat = join(root, `${family}-nat`);
      const truth = await generateSyntheticCheckpoint(up, spec(family, 'upcycled'));
      await generateSyntheticCheckpoint(nat, spec(family, 'native'));
      const a = await analyze(up);
      assert.equal(a.schema, 'moe-inspector/analysis@1');
      assert.equal(a.runtime.execution_provider, 'cpu');
      assert.deepEqual(a.model.moe_layers, truth.moeLayers);
      assert.equal(a.verdict.type, 'upcycled', JSON.stringify(a.layers.map((l) => l.verdict)));
      for (const l of a.layers) {
        assert.equal(l.verdict.type, 'upcycled');
        for (const p of ['gate', 'up', 'down'] as const) {
          const pa = l.projections[p]!;
          assert.deepEqual(pa.experts_analyzed, [0, 1, 2, 3, 4, 5]);
          // Every expert's delta from the mean is the constructed rank-r delta (antithetic pairs): exact ranks at 95%.
          assert.deepEqual(pa.effective_rank['0.95'], Array(6).fill(RANKS[p]), `${family} L${l.layer} ${p}`);
          assert.equal(pa.cosine.matrix.length, 6);
        }
        assert.ok(l.estimated_overlay_ratio! > 1);
      }
      const n = await analyze(nat);
      assert.equal(n.verdict.type, 'native', JSON.stringify(n.layers.map((l) => l.verdict)));
      for (const l of n.layers) assert.ok(l.projections.gate!.rank_ratio > 0.5 && Math.abs(l.projections.gate!.cosine.mean) < 0.1);
    });
  }

  it('--sample-experts reproduces the seeds\' sampling (indices floor(i*E/N)) while the base uses all experts', async () => {
    const dir = join(root, 'olmoe-up');
    const r = await client.run({ kind: 'analyze', model: dir, layers: { kind: 'list', layers: [1] }, sampleExperts: 3, device: 'cpu' });
    const a = (r as { report: AnalysisReport }).report;
    assert.deepEqual(a.layers.map((l) => l.layer), [1]);
    assert.deepEqual(a.layers[0]!.projections.gate!.experts_analyzed, [0, 2, 4]);
    assert.deepEqual(a.layers[0]!.projections.gate!.effective_rank['0.95'], [2, 2, 2]);
  });

  it('GPT-OSS biases stay out of the weights: folding them in would have changed the answer', async () => {
    const dir = join(root, 'gpt_oss-up');
    const a = await analyze(dir);
    // Folded, each expert's per-row bias adds a rank-1 term larger than the whole delta (see the
    // generator): the 95% rank would not be the constructed 2. It is, so no bias was folded.
    assert.deepEqual(a.layers[0]!.projections.gate!.effective_rank['0.95'], Array(6).fill(2));
  });

  it('partial streams: a layer result arrives before the job ends', async () => {
    const partials: number[] = [];
    await client.run({ kind: 'analyze', model: join(root, 'olmoe-nat'), layers: { kind: 'all' }, sampleExperts: null, device: 'cpu' }, { onPartial: (_m, l) => partials.push(l.layer) });
    assert.deepEqual(partials, [0, 1]);
  });
});
