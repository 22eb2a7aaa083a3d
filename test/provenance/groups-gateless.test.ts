/**
 * Provenance where the experts have no gate (neurons are up row + down column) and the layers come in
 * groups (encoder.N / decoder.N): through the real worker, against the generator's ground truth. Also
 * the merged pieces of issue 12: a resumed run refuses another --parent, and shards merged give the
 * single run's model verdict, recipe included.
 */
import { strict as assert } from 'node:assert';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WorkerClient, WorkerJobError } from '../../src/client/worker-client';
import { mergeAnalysisReports } from '../../src/engine/report/merge-reports';
import { generateSyntheticCheckpoint, type GroundTruth } from '../../src/engine/synth/generate';
import type { AnalysisReport, ProvenanceReport } from '../../src/engine/report/schema';
import type { AnalyzeJob } from '../../src/shared/messages';
import { ensureBuilt, WORKER } from '../cli/build';

const HIDDEN = 64;

/** Expert groups the generator built: connected components of "shares a parent neuron" (the truth's sharedShare > 0). */
function truthGroups(t: GroundTruth['layers'][number]): number[][] {
  const share = t.recipe!.sharedShare;
  const seen = new Set<number>();
  const groups: number[][] = [];
  for (let a = 0; a < share.length; a++) {
    if (seen.has(a)) continue;
    const g = [a];
    seen.add(a);
    for (let i = 0; i < g.length; i++) for (let b = 0; b < share.length; b++) if (!seen.has(b) && b !== g[i] && share[g[i]!]![b]! > 0) (seen.add(b), g.push(b));
    if (g.length > 1) groups.push(g.sort((x, y) => x - y));
  }
  return groups;
}

describe('provenance: gateless experts and layer groups (switch_transformers, nemotron_h) through the worker', function () {
  let root: string;
  let client: WorkerClient;
  let sw: string;
  let swTruth: GroundTruth;
  before(async () => {
    ensureBuilt();
    root = await mkdtemp(join(tmpdir(), 'moe-prov-groups-'));
    client = WorkerClient.start({ workerPath: WORKER });
    sw = join(root, 'switch');
    // 2 segments x 2 replicas: experts {0,2} and {1,3} are the same half of the parent's 64 neurons, shuffled
    swTruth = await generateSyntheticCheckpoint(
      sw,
      { family: 'switch_transformers', dtype: 'BF16', numLayers: 2, numExperts: 4, hidden: HIDDEN, intermediate: 32, seed: 5, structure: { kind: 'recipe', recipe: { kind: 'split', segments: 2, replicas: 2 } } },
      { parentDir: `${sw}-parent` },
    );
  });
  after(async () => {
    client.dispose();
    await rm(root, { recursive: true, force: true });
  });

  const job = (extra: Partial<AnalyzeJob>): AnalyzeJob => ({ kind: 'analyze', model: sw, layers: { kind: 'all' }, sampleExperts: null, device: 'cpu', parent: `${sw}-parent`, ...extra });
  async function analyze(extra: Partial<AnalyzeJob>): Promise<AnalysisReport> {
    const r = await client.run(job(extra));
    assert.equal(r.kind, 'analyze');
    const report = (r as { report: AnalysisReport }).report;
    return extra.output ? (JSON.parse(await readFile(extra.output.path, 'utf8')) as AnalysisReport) : report;
  }

  it('encoder and decoder layers: up+down neurons, the split groups of the ground truth, the parent matched in the first group only', async () => {
    const r = await analyze({});
    assert.deepEqual(swTruth.moeLayerNames, ['encoder.1', 'decoder.1']);
    assert.deepEqual(r.layers.map((l) => l.name), swTruth.moeLayerNames);
    assert.equal(r.options.parent, `${sw}-parent`);
    assert.equal(r.options.provenance, true);
    for (const [i, l] of r.layers.entries()) {
      const t = swTruth.layers.find((x) => x.name === l.name)!;
      const p = l.provenance!;
      assert.equal(p.method.neuron, 'up+down');
      assert.equal(p.method.dim, 2 * HIDDEN);
      assert.equal(p.neurons, 32);
      assert.equal(l.projections.gate, undefined);
      assert.deepEqual(p.groups, truthGroups(t), `${l.name}: groups`);
      assert.deepEqual(truthGroups(t), [[0, 2], [1, 3]]);
      assert.equal(l.verdict.type, 'upcycled', `${l.name}: ${l.verdict.reasons.join('; ')}`);
      assert.equal(l.verdict.recipe, 'split');
      assert.ok(l.verdict.reasons.some((x) => x.startsWith('the experts have no gate projection')), `${l.name}: the verdict says the experts have no gate`);
      // The dense parent is one stack: it stands for the encoder (the model's first group), not the decoder.
      if (i === 0) {
        const pp = p.parent!;
        assert.deepEqual(pp.experts_from_parent, [0, 1, 2, 3]);
        assert.ok(Math.abs(pp.coverage - t.recipe!.parentCoverage) < 1e-9, `coverage ${pp.coverage} vs ${t.recipe!.parentCoverage}`);
        assert.ok(Math.abs(pp.multiplicity! - 2) < 1e-9, `each parent neuron in 2 experts, got ${pp.multiplicity}`);
      } else {
        assert.equal(p.parent, undefined);
      }
    }
    assert.equal(r.verdict.type, 'upcycled');
    assert.equal(r.verdict.recipe, 'split');
  });

  it('a resumed run refuses another --parent; shards merged give the single run\'s model verdict with recipe', async () => {
    const full = join(root, 'full.json');
    const single = await analyze({ output: { path: full, resume: false } });
    await assert.rejects(
      client.run(job({ parent: undefined, output: { path: full, resume: true } })),
      (e: unknown) => e instanceof WorkerJobError && /cannot resume: not the same run: .*option parent/.test(e.message),
    );
    const parts = [];
    for (const index of [0, 1]) {
      const file = join(root, `part-${index}.json`);
      await analyze({ shard: { index, count: 2 }, output: { path: file, resume: false } });
      parts.push({ file, report: JSON.parse(await readFile(file, 'utf8')) as unknown });
    }
    const merged = mergeAnalysisReports(parts);
    assert.deepEqual(merged.layers.map((l) => l.name), ['encoder.1', 'decoder.1']);
    assert.deepEqual(merged.verdict, single.verdict);
    assert.equal(merged.verdict.recipe, 'split');
  });

  it('nemotron_h permuted copy, provenance command: named layers, up+down neurons, the recipe of the ground truth', async () => {
    const dir = join(root, 'nemotron');
    const truth = await generateSyntheticCheckpoint(dir, { family: 'nemotron_h', dtype: 'BF16', numLayers: 4, numExperts: 4, hidden: HIDDEN, intermediate: 32, seed: 9, structure: { kind: 'recipe', recipe: { kind: 'permuted-copy', reinit: 0.5 } } }, { parentDir: `${dir}-parent` });
    const r = await client.run({ kind: 'provenance', model: dir, parent: `${dir}-parent`, layers: { kind: 'all' }, device: 'cpu' });
    assert.equal(r.kind, 'provenance');
    const rep = (r as { report: ProvenanceReport }).report;
    assert.deepEqual(rep.model.moe_layer_names, truth.moeLayerNames);
    assert.deepEqual(rep.layers.map((l) => l.name), truth.moeLayerNames);
    for (const l of rep.layers) {
      const t = truth.layers.find((x) => x.name === l.name)!;
      assert.equal(l.method.neuron, 'up+down');
      assert.equal(l.verdict.recipe, 'permuted-copy', l.verdict.reasons.join('; '));
      // every expert keeps half its neurons from the parent: its share in the parent is the truth's inherited share
      for (const [j, s] of l.parent!.expert_share.entries()) assert.ok(Math.abs(s - t.recipe!.inheritedShare[j]!) <= 2 / 32, `expert ${j}: ${s} vs ${t.recipe!.inheritedShare[j]}`);
    }
  });
});
