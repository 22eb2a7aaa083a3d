import { strict as assert } from 'node:assert';
import { decideVerdict, modelVerdict } from '../../src/engine/analysis/verdict';
import { parseLayerSpec, sampledExperts, selectLayers } from '../../src/engine/analysis/layer-selection';
import type { MoeModel } from '../../src/engine/layouts/types';
import { logSpacedIndices } from '../../src/engine/analysis/spectrum-sampling';
import { DEFAULT_THRESHOLDS as T } from '../../src/engine/report/schema';

describe('verdict rule', () => {
  it('calls the seeds\' pre-fix GPT-OSS numbers (bias folded in) upcycled, and the fixed ones not upcycled', () => {
    const folded = decideVerdict({ gateRankRatio: 1 / 2880, meanCosine: 0.418 }, T);
    assert.equal(folded.type, 'upcycled');
    const fixed = decideVerdict({ gateRankRatio: 1408 / 2880, meanCosine: 0.017 }, T);
    assert.notEqual(fixed.type, 'upcycled');
  });

  it('calls OLMoE-like evidence native with full confidence', () => {
    const v = decideVerdict({ gateRankRatio: 755 / 1024, meanCosine: 0.0 }, T);
    assert.equal(v.type, 'native');
    assert.equal(v.confidence, 1);
  });

  it('gives ~0.5 confidence when a rule is barely met and 1 when far past both thresholds', () => {
    const barely = decideVerdict({ gateRankRatio: 0.0499, meanCosine: 0.9 }, T);
    assert.equal(barely.type, 'upcycled');
    assert.ok(Math.abs(barely.confidence - 0.501) < 0.002, String(barely.confidence));
    const clear = decideVerdict({ gateRankRatio: 0.005, meanCosine: 0.6 }, T);
    assert.equal(clear.confidence, 1);
  });

  it('is uncertain between the rules, most confident when neither is close', () => {
    const mid = decideVerdict({ gateRankRatio: 0.25, meanCosine: 0.18 }, T);
    assert.equal(mid.type, 'uncertain');
    assert.equal(mid.confidence, 1);
    const nearNative = decideVerdict({ gateRankRatio: 0.49, meanCosine: 0.01 }, T);
    assert.equal(nearNative.type, 'uncertain');
    assert.ok(nearNative.confidence < 0.6);
  });

  it('judges experts without a gate on up, and says so', () => {
    const v = decideVerdict({ gateRankRatio: 0.01, meanCosine: 0.6, rankProjection: 'up' }, T);
    assert.equal(v.type, 'upcycled');
    assert.match(v.reasons[0]!, /^up rank ratio 1\.0%/);
    assert.ok(v.reasons.includes('the experts have no gate projection: the rank test uses up'));
    assert.match(decideVerdict({ gateRankRatio: 0.01, meanCosine: 0.6 }, T).reasons[0]!, /^gate rank ratio/);
  });

  it('aggregates layers by summed confidence; disagreement lowers the model confidence', () => {
    const up = { type: 'upcycled' as const, confidence: 0.9, reasons: [] };
    const nat = { type: 'native' as const, confidence: 0.8, reasons: [] };
    assert.deepEqual(modelVerdict([up, up, nat]), { type: 'upcycled', confidence: 0.6 });
    assert.equal(modelVerdict([up, { ...nat, confidence: 0.9 }]).type, 'uncertain');
  });
});

describe('layer selection', () => {
  it('parses lists and ranges', () => {
    assert.deepEqual(parseLayerSpec('0,3,8-11'), { kind: 'list', layers: [0, 3, 8, 9, 10, 11] });
    assert.deepEqual(parseLayerSpec('all'), { kind: 'all' });
    assert.throws(() => parseLayerSpec('3-1'), /bad layer range/);
    assert.throws(() => parseLayerSpec('x'), /bad layer list/);
  });

  it('parses layer groups: encoder.1, decoder.0-2, a whole group, mixed with bare indices', () => {
    assert.deepEqual(parseLayerSpec('encoder.1,decoder.0-2'), { kind: 'list', layers: [], names: ['encoder.1', 'decoder.0', 'decoder.1', 'decoder.2'] });
    assert.deepEqual(parseLayerSpec('3,vision'), { kind: 'list', layers: [3], names: ['vision.*'] });
    assert.throws(() => parseLayerSpec('encoder.3-1'), /bad layer range/);
    assert.throws(() => parseLayerSpec('middle.1'), /bad layer list/);
  });

  it('selects grouped layers by name, group or bare index; an unknown one lists the groups', () => {
    const layer = (group: string | null, n: number) => ({ layer: n, group, name: group === null ? String(n) : `${group}.${n}` });
    const model = { family: 'switch_transformers', layers: [layer('encoder', 1), layer('encoder', 3), layer('decoder', 1), layer('decoder', 3)] } as unknown as MoeModel;
    const names = (spec: string) => selectLayers(model, parseLayerSpec(spec)).map((l) => l.name);
    assert.deepEqual(names('decoder.3,encoder.1'), ['encoder.1', 'decoder.3']);
    assert.deepEqual(names('1'), ['encoder.1', 'decoder.1']);
    assert.deepEqual(names('decoder'), ['decoder.1', 'decoder.3']);
    assert.throws(() => names('encoder.2'), /layer encoder\.2 is not a MoE layer of this switch_transformers model; MoE layers: encoder\.1,3; decoder\.1,3/);
  });

  it('reproduces the seeds\' sampling of 8 experts and uses all by default', () => {
    assert.deepEqual(sampledExperts(32, 8), [0, 4, 8, 12, 16, 20, 24, 28]);
    assert.equal(sampledExperts(64, null).length, 64);
  });

  it('log-spaced spectrum positions are unique, sorted and include both ends', () => {
    const idx = logSpacedIndices(2880, 256);
    assert.equal(idx[0], 0);
    assert.equal(idx[idx.length - 1], 2879);
    for (let i = 1; i < idx.length; i++) assert.ok(idx[i]! > idx[i - 1]!);
    assert.ok(idx.length > 150 && idx.length <= 258);
  });
});
