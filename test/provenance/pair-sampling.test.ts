/**
 * The pair pass on a subset of experts (--pair-experts): a partial-upcycled layer of 12 experts,
 * paired on all of them and on 4 evenly spaced ones. The sampled run must be the full run's
 * matrices restricted to those experts (same sketches, same matches), name experts (not matrix
 * positions) in its groups, read only the experts it pairs, and still match every expert against
 * the dense parent.
 */
import { strict as assert } from 'node:assert';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decideRecipe } from '../../src/engine/analysis/verdict';
import { resolveMoeModel } from '../../src/engine/layouts';
import { openCheckpoint } from '../../src/engine/model/open-checkpoint';
import { createComputeBackend, type ComputeBackend } from '../../src/engine/numerics/backend';
import { denseParentOf } from '../../src/engine/provenance/dense-parent';
import { layerProvenance, pairedExperts } from '../../src/engine/provenance/layer-provenance';
import type { LayerProvenance } from '../../src/engine/report/schema';
import { generateSyntheticCheckpoint, type GroundTruth } from '../../src/engine/synth/generate';

const E = 12;

describe('provenance: pairs among a subset of experts (--pair-experts)', function () {
  let root: string;
  let dir: string;
  let truth: GroundTruth;
  let backend: ComputeBackend;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'moe-pair-sample-'));
    dir = join(root, 'moe');
    truth = await generateSyntheticCheckpoint(
      dir,
      { family: 'mixtral', dtype: 'BF16', numLayers: 1, numExperts: E, hidden: 64, intermediate: 48, seed: 31, structure: { kind: 'recipe', recipe: { kind: 'partial', fraction: 0.5 } } },
      { parentDir: `${dir}-parent` },
    );
    backend = await createComputeBackend('cpu');
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  async function run(pairExperts: number | 'all', parent = false): Promise<LayerProvenance> {
    const ckpt = await openCheckpoint(dir);
    const parentCkpt = parent ? await openCheckpoint(`${dir}-parent`) : null;
    try {
      const model = resolveMoeModel(ckpt);
      return await layerProvenance(model, model.layers[0]!, backend, { pairExperts, ...(parentCkpt ? { parent: denseParentOf(parentCkpt) } : {}) });
    } finally {
      await ckpt.close();
      await parentCkpt?.close();
    }
  }

  it('picks floor(i E / P) and every expert when P >= E; refuses fewer than 2', () => {
    assert.deepEqual(pairedExperts(12, 4), [0, 3, 6, 9]);
    assert.deepEqual(pairedExperts(256, 64).slice(0, 3), [0, 4, 8]);
    assert.deepEqual(pairedExperts(8, 64), [0, 1, 2, 3, 4, 5, 6, 7]);
    assert.deepEqual(pairedExperts(5, 'all'), [0, 1, 2, 3, 4]);
    assert.throws(() => pairedExperts(8, 1), /at least 2 experts/);
  });

  it('the sampled matrices are the full ones restricted to the paired experts; groups name experts', async () => {
    const full = await run('all');
    const part = await run(4);
    const members = [0, 3, 6, 9];
    assert.equal(full.pair_experts, undefined);
    assert.deepEqual(part.pair_experts, members);
    assert.equal(part.expert_reads, 4, 'four experts, all held: each read once');
    assert.equal(part.summary.pairs, 6);
    assert.equal(full.method.sketch_dim, part.method.sketch_dim);
    for (const [a, ja] of members.entries()) {
      for (const [b, jb] of members.entries()) {
        assert.equal(part.shared_share[a]![b], full.shared_share[ja]![jb], `share ${ja},${jb}`);
        assert.equal(part.matched_cosine[a]![b], full.matched_cosine[ja]![jb], `cosine ${ja},${jb}`);
      }
    }
    // the ground truth: experts sharing parent neurons are the copies; among the paired ones, the same
    const share = truth.layers[0]!.recipe!.sharedShare;
    const copies = members.filter((j) => members.some((i) => i !== j && share[i]![j]! > 0));
    assert.ok(copies.length >= 2, `the sample holds at least two copies (${copies.join(',')})`);
    assert.deepEqual(part.groups, [copies]);
    assert.deepEqual(part.unshared_experts, members.filter((j) => !copies.includes(j)));
    assert.deepEqual(full.groups[0]!.filter((j) => members.includes(j)), copies);
    const v = decideRecipe({ provenance: part, signalRankRatio: null });
    assert.equal(v.type, 'upcycled');
    assert.equal(v.recipe, 'partial');
    assert.deepEqual(v.upcycled_experts, copies);
    assert.ok(v.reasons.some((r) => /among 4 evenly spaced experts/.test(r)), v.reasons.join('; '));
  });

  it('with the parent: every expert is matched against it, only the sampled ones pair', async () => {
    const p = await run(4, true);
    assert.equal(p.parent!.expert_share.length, E);
    assert.equal(p.expert_reads, E, 'every expert read once for the parent, the 4 paired among them held');
    const share = truth.layers[0]!.recipe!.sharedShare;
    const fromParent = Array.from({ length: E }, (_, j) => j).filter((j) => share.some((row, i) => i !== j && row[j]! > 0));
    assert.deepEqual(p.parent!.experts_from_parent, fromParent);
    const v = decideRecipe({ provenance: p, signalRankRatio: null });
    assert.equal(v.recipe, 'partial');
    assert.deepEqual(v.upcycled_experts, fromParent);
  });
});
