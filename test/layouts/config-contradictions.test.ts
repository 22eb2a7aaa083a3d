/**
 * A config.json that contradicts the tensors is never silently trusted (issue 11, item 5): each
 * contradiction is an error naming both sides, the config field with its value and the tensors found.
 */
import { strict as assert } from 'node:assert';
import { openCheckpoint } from '../../src/engine/model/open-checkpoint';
import { resolveMoeModel } from '../../src/engine/layouts';
import { generateSyntheticCheckpoint, type SynthSpec } from '../../src/engine/synth/generate';
import type { Checkpoint } from '../../src/engine/model/checkpoint';
import { rejectsWith, viewOf, withTempDir } from './helpers';

const UP = { kind: 'upcycled' as const, ranks: { gate: 2, up: 2, down: 2 } };

async function withCkpt(spec: SynthSpec, fn: (ckpt: Checkpoint) => Promise<void>): Promise<void> {
  await withTempDir(async (dir) => {
    await generateSyntheticCheckpoint(dir, spec);
    const ckpt = await openCheckpoint(dir);
    try {
      await fn(ckpt);
    } finally {
      await ckpt.close();
    }
  });
}

describe('config.json contradicting the tensors: errors naming both sides', function () {
  it('expert layers past a num_hidden_layers that is too small are an error, not dropped', async () => {
    await withCkpt({ family: 'qwen3_moe', dtype: 'F32', numLayers: 3, numExperts: 3, hidden: 8, intermediate: 8, structure: UP, seed: 1 }, async (ckpt) => {
      const small = viewOf(ckpt, { config: { ...ckpt.config, num_hidden_layers: 2 } });
      await rejectsWith(() => resolveMoeModel(small), 'layout', (e) => {
        assert.match(e.message, /config\.json num_hidden_layers = 2, but model\.layers 2 holds 9 expert tensors \(e\.g\. model\.layers\.2\.mlp\.experts\.0\.gate_proj\.weight\): the config would drop them/);
        assert.equal(e.where.tensor, 'model.layers.2.mlp.experts.0.gate_proj.weight');
      });
      const smaller = viewOf(ckpt, { config: { ...ckpt.config, num_hidden_layers: 1 } });
      await rejectsWith(() => resolveMoeModel(smaller), 'layout', (e) => assert.match(e.message, /num_hidden_layers = 1, but model\.layers 1, 2 hold 18 expert tensors/));
    });
  });

  it('MTP layers are skipped only as far as num_nextn_predict_layers declares them', async () => {
    await withCkpt({ family: 'deepseek_v3', dtype: 'BF16', numLayers: 3, numExperts: 2, hidden: 8, intermediate: 8, structure: UP, seed: 1 }, async (ckpt) => {
      assert.deepEqual(resolveMoeModel(ckpt).layers.map((l) => l.name), ['1', '2']); // layer 3 is the declared MTP module
      const small = viewOf(ckpt, { config: { ...ckpt.config, num_hidden_layers: 2 } });
      await rejectsWith(() => resolveMoeModel(small), 'layout', (e) => assert.match(e.message, /num_hidden_layers = 2 \(\+ num_nextn_predict_layers = 1\), but model\.layers 3 holds 6 expert tensors/));
    });
  });

  it('expert indices at or past the config\'s count, and missing experts', async () => {
    await withCkpt({ family: 'olmoe', dtype: 'F32', numLayers: 1, numExperts: 4, hidden: 8, intermediate: 8, structure: UP, seed: 1 }, async (ckpt) => {
      const fewer = viewOf(ckpt, { config: { ...ckpt.config, num_experts: 2 } });
      await rejectsWith(() => resolveMoeModel(fewer), 'layout', (e) =>
        assert.match(e.message, /config\.json num_experts = 2, but the tensors hold 4 routed experts per layer \(layer 0: model\.layers\.0\.mlp\.experts\.0\.up_proj\.weight … model\.layers\.0\.mlp\.experts\.3\.up_proj\.weight\)/),
      );
      const lastGone = viewOf(ckpt, { drop: (n) => n.includes('.experts.3.') });
      await rejectsWith(() => resolveMoeModel(lastGone), 'layout', (e) => assert.match(e.message, /num_experts = 4, but the tensors hold 3 routed experts per layer/));
      const hole = viewOf(ckpt, { drop: (n) => n.includes('.experts.1.') });
      await rejectsWith(() => resolveMoeModel(hole), 'layout', (e) => {
        assert.match(e.message, /expert 1 of 4 \(experts numbered 0\.\.3 in this layer\) has no gate weight/);
        assert.equal(e.where.tensor, 'model.layers.0.mlp.experts.1.gate_proj.weight');
      });
    });
  });

  it('a family whose every decoder layer is MoE: a layer without experts is an error, not skipped', async () => {
    await withCkpt({ family: 'mixtral', dtype: 'F32', numLayers: 3, numExperts: 2, hidden: 8, intermediate: 8, structure: UP, seed: 2 }, async (ckpt) => {
      const gap = viewOf(ckpt, { drop: (n) => n.startsWith('model.layers.1.block_sparse_moe.experts.') });
      await rejectsWith(() => resolveMoeModel(gap), 'layout', (e) => assert.match(e.message, /mixtral layer rule \(num_hidden_layers = 3\) and the tensors disagree: no expert tensors for MoE layers 1/));
      // An unknown family has no layer rule: the layers holding experts are the MoE layers.
      const unknown = viewOf(gap, { config: { ...ckpt.config, model_type: 'brand_new_moe' } });
      assert.deepEqual(resolveMoeModel(unknown).layers.map((l) => l.name), ['0', '2']);
    });
  });

  it('two expert blocks of one kind in a layer are refused, never half-read', async () => {
    await withCkpt({ family: 'fused', dtype: 'F32', numLayers: 1, numExperts: 2, hidden: 8, intermediate: 8, structure: UP, seed: 2 }, async (ckpt) => {
      const twice = viewOf(ckpt, {});
      const t = ckpt.tensors.get('model.layers.0.mlp.experts.gate_up_proj')!;
      (twice.tensors as Map<string, typeof t>).set('model.layers.0.mlp.other.experts.gate_up_proj', { ...t, name: 'model.layers.0.mlp.other.experts.gate_up_proj' });
      await rejectsWith(() => resolveMoeModel(twice), 'layout', (e) => assert.match(e.message, /several expert blocks of one kind in this layer \(model\.layers\.0\.mlp\.experts\.gate_up_proj, model\.layers\.0\.mlp\.other\.experts\.gate_up_proj\)/));
    });
  });

  it('a layer rule that would drop expert layers quotes its config fields', async () => {
    await withCkpt({ family: 'jamba', dtype: 'F32', numLayers: 4, numExperts: 2, hidden: 8, intermediate: 8, structure: UP, seed: 2 }, async (ckpt) => {
      const wrong = viewOf(ckpt, { config: { ...ckpt.config, expert_layer_period: 4 } });
      await rejectsWith(() => resolveMoeModel(wrong), 'layout', (e) =>
        assert.match(e.message, /jamba layer rule \(expert_layer_period = 4, expert_layer_offset = 1, num_hidden_layers = 4\) and the tensors disagree: expert tensors in layers the config calls dense: 3/),
      );
    });
  });

  it('per-modality expert counts that put vision experts among the text ones are refused on opening', async () => {
    await withCkpt({ family: 'ernie4_5_vl_moe', dtype: 'F32', numLayers: 2, numExperts: 3, hidden: 8, intermediate: 6, structure: UP, seed: 4 }, async (ckpt) => {
      const wrong = viewOf(ckpt, { config: { ...ckpt.config, moe_num_experts: [4, 2] } });
      await rejectsWith(() => resolveMoeModel(wrong), 'layout', (e) => {
        assert.match(e.message, /expert 3 is F32 \[3, 8\], expert 0 is F32 \[6, 8\]/);
        assert.equal(e.where.tensor, 'model.layers.1.mlp.experts.3.gate_proj.weight');
      });
    });
  });

  it('encoder-decoder stacks are checked each against their own fields', async () => {
    await withCkpt({ family: 'switch_transformers', dtype: 'F32', numLayers: 4, numExperts: 2, hidden: 8, intermediate: 8, structure: UP, seed: 3 }, async (ckpt) => {
      const step = viewOf(ckpt, { config: { ...ckpt.config, decoder_sparse_step: 1 } });
      await rejectsWith(() => resolveMoeModel(step), 'layout', (e) => assert.match(e.message, /\(decoder layers\): no expert tensors for MoE layers 0,2/));
      const short = viewOf(ckpt, { config: { ...ckpt.config, num_decoder_layers: 3 } });
      await rejectsWith(() => resolveMoeModel(short), 'layout', (e) => assert.match(e.message, /config\.json num_decoder_layers = 3, but decoder\.block 3 holds 4 expert tensors \(e\.g\. decoder\.block\.3\.layer\.2\.mlp\.experts\.expert_0\.wi\.weight\)/));
    });
    await withCkpt({ family: 'switch_transformers', dtype: 'F32', numLayers: 4, numExperts: 2, hidden: 8, intermediate: 8, structure: UP, seed: 3 }, async (ckpt) => {
      // A stack whose experts are all gone is still checked against its config fields.
      const noDecoder = viewOf(ckpt, { drop: (n) => n.startsWith('decoder.') && n.includes('.experts.') });
      await rejectsWith(() => resolveMoeModel(noDecoder), 'layout', (e) => assert.match(e.message, /decoder_sparse_step = 2.*\(decoder layers\): no expert tensors for MoE layers 1,3/));
      // With only the encoder's experts the layers still carry the group's name.
      const encOnly = viewOf(ckpt, { drop: (n) => n.startsWith('decoder.') && n.includes('.experts.'), config: { ...ckpt.config, decoder_sparse_step: 0 } });
      assert.deepEqual(resolveMoeModel(encOnly).layers.map((l) => l.name), ['encoder.1', 'encoder.3']);
    });
    await withCkpt({ family: 'nllb_moe', dtype: 'F32', numLayers: 2, numExperts: 2, hidden: 8, intermediate: 8, structure: UP, seed: 3 }, async (ckpt) => {
      const enc = viewOf(ckpt, { config: { ...ckpt.config, encoder_layers: 1 } });
      await rejectsWith(() => resolveMoeModel(enc), 'layout', (e) => assert.match(e.message, /config\.json encoder_layers = 1, but model\.encoder\.layers 1 holds 8 expert tensors/));
    });
  });
});
