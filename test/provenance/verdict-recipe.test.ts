/** The verdict-with-recipe rules on hand-built provenance (independent of the generator and of matching). */
import { strict as assert } from 'node:assert';
import { decideRecipe, NATIVE_WITHOUT_PARENT_CAP } from '../../src/engine/analysis/verdict';
import { pairStatistics } from '../../src/engine/provenance/layer-provenance';
import type { MatchResult } from '../../src/engine/provenance/match';
import { matchThreshold, minSharedCount } from '../../src/engine/provenance/null-threshold';
import type { LayerProvenance } from '../../src/engine/report/schema';

const I = 100;
const ALPHA = 1e-3;

/** A pair sharing `count` neurons at cosine 0.9, in identity order or reversed. */
function match(count: number, identity: boolean): MatchResult {
  const rows = Int32Array.from({ length: count }, (_, k) => k);
  const cols = Int32Array.from(rows, (k) => (identity ? k : count - 1 - k));
  return { rows, cols, cosines: new Float64Array(count).fill(0.9), candidates: count };
}

function provenance(E: number, shared: (a: number, b: number) => number, identity = false): LayerProvenance {
  const pairs = new Map<string, MatchResult>();
  for (let a = 0; a < E; a++) for (let b = a + 1; b < E; b++) pairs.set(`${a},${b}`, match(shared(a, b), identity));
  return {
    ...pairStatistics(Array.from({ length: E }, (_, j) => j), I, pairs, ALPHA),
    method: { neuron: 'gate+up+down', dim: 300, sketch_dim: 64, matching: 'mutual-best-on-sketch+exact-recheck', alpha: ALPHA, threshold: matchThreshold(300, I, ALPHA), min_shared: minSharedCount(I, ALPHA) },
    neurons: I,
    noise: {},
    expert_reads: E,
    seconds: 0,
  };
}

describe('verdict with recipe: the rules', function () {
  it('all pairs share everything in identity order: copy', () => {
    const v = decideRecipe({ provenance: provenance(6, () => 100, true), signalRankRatio: null });
    assert.equal(v.recipe, 'copy');
    assert.ok(v.confidence >= 0.9);
  });
  it('all pairs share 25% in shuffled order: permuted-copy with re-init 0.5', () => {
    const v = decideRecipe({ provenance: provenance(6, () => 25), signalRankRatio: null });
    assert.equal(v.recipe, 'permuted-copy');
    assert.equal(v.reinit_share, 0.5);
  });
  it('pairs (s, s+3) share everything, nothing across: split into 3 groups', () => {
    const v = decideRecipe({ provenance: provenance(6, (a, b) => (b - a === 3 ? 100 : 0)), signalRankRatio: null });
    assert.equal(v.recipe, 'split');
    assert.deepEqual(v.groups, [[0, 3], [1, 4], [2, 5]]);
  });
  it('experts 0-2 share, 3-5 share with no one: partial', () => {
    const v = decideRecipe({ provenance: provenance(6, (_a, b) => (b < 3 ? 100 : 0)), signalRankRatio: null });
    assert.equal(v.recipe, 'partial');
    assert.deepEqual(v.upcycled_experts, [0, 1, 2]);
  });
  it('everyone shares a few neurons with everyone: replicated split (Qwen2-style)', () => {
    const v = decideRecipe({ provenance: provenance(6, () => 8), signalRankRatio: null });
    assert.equal(v.recipe, 'split');
    assert.equal(v.groups!.length, 1);
  });
  it('no pair shares: native, capped without the parent; a lone chance match changes nothing', () => {
    const v = decideRecipe({ provenance: provenance(6, (a, b) => (a === 0 && b === 1 ? 1 : 0)), signalRankRatio: null });
    assert.equal(v.type, 'native');
    assert.ok(v.confidence <= NATIVE_WITHOUT_PARENT_CAP);
  });
});
