/**
 * The six layouts that did not open before (issue 11): experts without a gate (nemotron_h,
 * switch_transformers, nllb_moe), aria's grouped fc1/fc2, step3p7's stacked 3-D experts and
 * ernie4_5_vl_moe's text + vision experts. Each is written by the generator and read back exactly;
 * orientation and splits are also checked element by element against the raw stored bytes.
 */
import { strict as assert } from 'node:assert';
import { openCheckpoint } from '../../src/engine/model/open-checkpoint';
import { FAMILY_RULES, resolveMoeModel } from '../../src/engine/layouts';
import { projectionsOf, type Projection } from '../../src/engine/layouts/types';
import { generateSyntheticCheckpoint, SyntheticModel, type SynthSpec } from '../../src/engine/synth/generate';
import type { SynthDtype } from '../../src/engine/synth/encode-matrix';
import type { Checkpoint } from '../../src/engine/model/checkpoint';
import type { MoeModel } from '../../src/engine/layouts/types';
import { rejectsWith, sameBits, viewOf, withTempDir } from './helpers';

const UP = { kind: 'upcycled' as const, ranks: { gate: 2, up: 3, down: 2 } };

async function opened<T>(spec: SynthSpec, fn: (ckpt: Checkpoint, model: MoeModel, gen: SyntheticModel) => Promise<T>): Promise<T> {
  return withTempDir(async (dir) => {
    await generateSyntheticCheckpoint(dir, spec);
    const ckpt = await openCheckpoint(dir);
    try {
      return await fn(ckpt, resolveMoeModel(ckpt), new SyntheticModel(spec));
    } finally {
      await ckpt.close();
    }
  });
}

const f32 = async (ckpt: Checkpoint, name: string): Promise<Float32Array> => new Float32Array((await ckpt.readTensorBytes(name)).slice().buffer);

describe('new family layouts (issue 11)', function () {
  it('nemotron_h: up/down experts without a gate, relu2, hybrid_override_pattern layers, router and shared experts apart', async () => {
    const spec: SynthSpec = { family: 'nemotron_h', dtype: 'F32', numLayers: 4, numExperts: 3, hidden: 16, intermediate: 12, structure: UP, seed: 3 };
    await opened(spec, async (_ckpt, model, gen) => {
      assert.equal(model.family, 'nemotron_h');
      assert.deepEqual(model.activation, { kind: 'relu2' });
      assert.deepEqual(model.layers.map((l) => l.name), ['1', '3']); // "MEME"
      const l = model.layers[0]!;
      assert.equal(l.projections.gate, undefined);
      assert.deepEqual(projectionsOf(l.projections), ['up', 'down']);
      assert.deepEqual([...l.routerTensors].sort(), ['backbone.layers.1.mixer.gate.e_score_correction_bias', 'backbone.layers.1.mixer.gate.weight']);
      assert.deepEqual([...l.sharedExpertTensors].sort(), ['backbone.layers.1.mixer.shared_experts.down_proj.weight', 'backbone.layers.1.mixer.shared_experts.up_proj.weight']);
      for (const p of ['up', 'down'] as const) for (let j = 0; j < 3; j++) assert.ok(sameBits((await model.readExpert('3', p, j)).data, gen.encodedExpert(3, p, j).values));
      await rejectsWith(model.readExpert('1', 'gate', 0), 'usage', (e) => assert.match(e.message, /no gate projection/));
    });
  });

  it('switch_transformers: encoder and decoder MoE blocks are distinct layer groups; wi = up [d_ff, d_model], wo = down', async () => {
    const spec: SynthSpec = { family: 'switch_transformers', dtype: 'BF16', numLayers: 4, numExperts: 3, hidden: 10, intermediate: 6, structure: UP, seed: 4 };
    await opened(spec, async (ckpt, model, gen) => {
      assert.deepEqual(model.layers.map((l) => l.name), ['encoder.1', 'encoder.3', 'decoder.1', 'decoder.3']);
      assert.deepEqual(model.layers.map((l) => l.group), ['encoder', 'encoder', 'decoder', 'decoder']);
      assert.deepEqual(model.activation, { kind: 'relu' });
      assert.deepEqual(model.layers[2]!.routerTensors, ['decoder.block.1.layer.2.mlp.router.classifier.weight']);
      // Distinct matrices: the decoder's expert is not the encoder's.
      const enc = await model.readExpert('encoder.3', 'up', 1);
      const dec = await model.readExpert('decoder.3', 'up', 1);
      assert.deepEqual([enc.rows, enc.cols], [6, 10]);
      assert.ok(sameBits(enc.data, gen.encodedExpert(3, 'up', 1, 'encoder').values));
      assert.ok(sameBits(dec.data, gen.encodedExpert(3, 'up', 1, 'decoder').values));
      assert.ok(!sameBits(enc.data, dec.data));
      const wo = await model.readExpert('decoder.1', 'down', 2);
      assert.deepEqual([wo.rows, wo.cols], [10, 6]);
      assert.equal(ckpt.tensors.get('decoder.block.1.layer.2.mlp.experts.expert_2.wo.weight')!.shape.join(), '10,6');
      await rejectsWith(model.readExpert(1 as never, 'up', 0), 'usage', (e) => assert.match(e.message, /ambiguous: name it as encoder\.1 or decoder\.1/));
    });
  });

  it('nllb_moe: fc1/fc2 biases are read apart and never folded into the weights', async () => {
    const spec: SynthSpec = { family: 'nllb_moe', dtype: 'F16', numLayers: 2, numExperts: 4, hidden: 12, intermediate: 8, structure: UP, seed: 5 };
    await opened(spec, async (ckpt, model, gen) => {
      assert.deepEqual(model.layers.map((l) => l.name), ['encoder.1', 'decoder.1']);
      const l = model.layers[1]!;
      assert.ok(l.projections.up.hasBias && l.projections.down.hasBias);
      assert.ok(l.projections.up.tensors.includes('model.decoder.layers.1.ffn.experts.expert_3.fc1.bias'));
      for (const p of ['up', 'down'] as const) {
        for (let j = 0; j < 4; j++) {
          const w = await model.readExpert('decoder.1', p, j);
          assert.ok(sameBits(w.data, gen.encodedExpert(1, p, j, 'decoder').values), `${p} ${j} weight`);
          const b = await model.readExpertBias('decoder.1', p, j);
          assert.ok(b !== null && sameBits(b, gen.bias(1, p, j, 'decoder')), `${p} ${j} bias`);
          assert.ok(sameBits(b, await f32FromF16(ckpt, `model.decoder.layers.1.ffn.experts.expert_${j}.${p === 'up' ? 'fc1' : 'fc2'}.bias`)));
        }
      }
    });
  });

  it('aria: fc1 [E, H, 2I] splits into gate = first I columns (silu\'d), up = last I columns; fc2 [E, I, H] transposed', async () => {
    const spec: SynthSpec = { family: 'aria', dtype: 'F32', numLayers: 1, numExperts: 2, hidden: 6, intermediate: 4, structure: { kind: 'native' }, seed: 6 };
    await opened(spec, async (ckpt, model, gen) => {
      assert.equal(model.family, 'aria');
      const raw1 = await f32(ckpt, 'language_model.model.layers.0.mlp.experts.fc1.weight');
      const raw2 = await f32(ckpt, 'language_model.model.layers.0.mlp.experts.fc2.weight');
      const gate = await model.readExpert('0', 'gate', 1);
      const up = await model.readExpert('0', 'up', 1);
      const down = await model.readExpert('0', 'down', 1);
      // expert 1 of fc1 starts at 6 * 8; stored [h, c]: gate[i, h] = col i, up[i, h] = col 4 + i.
      for (let i = 0; i < 4; i++) {
        for (let h = 0; h < 6; h++) {
          assert.equal(gate.data[i * 6 + h], raw1[48 + h * 8 + i]);
          assert.equal(up.data[i * 6 + h], raw1[48 + h * 8 + 4 + i]);
          assert.equal(down.data[h * 4 + i], raw2[24 + i * 6 + h]); // fc2 stored [i, h]
        }
      }
      for (const p of ['gate', 'up', 'down'] as const) assert.ok(sameBits((await model.readExpert('0', p, 0)).data, gen.encodedExpert(0, p, 0).values));
      assert.equal(model.layers[0]!.sharedExpertTensors.length, 3);
      assert.deepEqual(model.layers[0]!.routerTensors, ['language_model.model.layers.0.mlp.router.weight']);
    });
  });

  it('step3p7: stacked moe.*_proj [E, I, H] per expert slice, router moe.gate, share_expert apart, MTP layer declared and skipped', async () => {
    const spec: SynthSpec = { family: 'step3p7', dtype: 'BF16', numLayers: 3, numExperts: 3, hidden: 8, intermediate: 6, structure: UP, seed: 7 };
    await opened(spec, async (ckpt, model, gen) => {
      assert.ok(ckpt.tensors.has('model.layers.3.moe.gate_proj.weight'), 'the MTP layer holds experts on disk');
      assert.deepEqual(model.layers.map((l) => l.name), ['1', '2']);
      const l = model.layers[0]!;
      assert.deepEqual(l.routerTensors, ['model.layers.1.moe.gate.weight']);
      assert.deepEqual([...l.sharedExpertTensors].sort(), ['model.layers.1.share_expert.down_proj.weight', 'model.layers.1.share_expert.gate_proj.weight', 'model.layers.1.share_expert.up_proj.weight']);
      for (const p of ['gate', 'up', 'down'] as const) for (let j = 0; j < 3; j++) assert.ok(sameBits((await model.readExpert('2', p, j)).data, gen.encodedExpert(2, p, j).values), `${p} ${j}`);
      // Without num_nextn_predict_layers the MTP experts contradict num_hidden_layers: an error naming both sides.
      const { num_nextn_predict_layers: _drop, ...noMtp } = ckpt.config!;
      await rejectsWith(() => resolveMoeModel(viewOf(ckpt, { config: noMtp })), 'layout', (e) => {
        assert.match(e.message, /config\.json num_hidden_layers = 3, but model\.layers 3 holds 3 expert tensors \(e\.g\. model\.layers\.3\.moe\./);
        assert.match(e.message, /the config would drop them/);
      });
    });
  });

  it('ernie4_5_vl_moe: experts 0..E-1 are text, E..2E-1 vision (own group, own intermediate size), both routers apart', async () => {
    const spec: SynthSpec = { family: 'ernie4_5_vl_moe', dtype: 'BF16', numLayers: 2, numExperts: 3, hidden: 8, intermediate: 6, structure: UP, seed: 8 };
    await opened(spec, async (ckpt, model, gen) => {
      assert.deepEqual(model.layers.map((l) => l.name), ['1', 'vision.1']);
      const [text, vision] = model.layers as [MoeModel['layers'][number], MoeModel['layers'][number]];
      assert.equal(text.numExperts, 3);
      assert.equal(vision.numExperts, 3);
      assert.deepEqual(vision.projections.up.shape, [3, 8]);
      assert.deepEqual(text.projections.up.shape, [6, 8]);
      assert.ok(vision.projections.down.tensors.includes('model.layers.1.mlp.experts.5.down_proj.weight'));
      assert.deepEqual(text.routerTensors, ['model.layers.1.mlp.gate.weight']);
      assert.deepEqual(vision.routerTensors, ['model.layers.1.mlp.gate.weight_1']);
      assert.equal(text.sharedExpertTensors.length, 3);
      assert.equal(vision.sharedExpertTensors.length, 0, 'shared experts are reported once, with the text group');
      for (const p of ['gate', 'up', 'down'] as Projection[]) {
        for (let j = 0; j < 3; j++) {
          assert.ok(sameBits((await model.readExpert('vision.1', p, j)).data, gen.encodedExpert(1, p, j, 'vision').values), `vision ${p} ${j}`);
          assert.ok(sameBits((await model.readExpert('1', p, j)).data, gen.encodedExpert(1, p, j).values), `text ${p} ${j}`);
        }
      }
      // A config whose counts do not add up to the tensors' numbering is an error naming both sides.
      // Vision experts starting later than the text ones: layer 1 without them is the text group alone, as the rule says.
      const later = viewOf(ckpt, { drop: (n) => /^model\.layers\.1\.mlp\.experts\.[345]\./.test(n) });
      await rejectsWith(() => resolveMoeModel(later), 'layout', (e) => assert.match(e.message, /moe_layer_start_index = \[1,1\].*\(vision layers\): no expert tensors for MoE layers 1/));
      const laterCfg = viewOf(later, { config: { ...ckpt.config, moe_layer_start_index: [1, 2] } });
      assert.deepEqual(resolveMoeModel(laterCfg).layers.map((l) => l.name), ['1']);
      const wrong = viewOf(ckpt, { config: { ...ckpt.config, moe_num_experts: [4, 4] } });
      await rejectsWith(() => resolveMoeModel(wrong), 'layout', (e) => assert.match(e.message, /moe_num_experts\[0\] = 4, moe_num_experts\[1\] = 4 declares 8 experts per layer \(4 text \+ 4 vision\), but the tensors number 6/));
    });
  });

  it('ernie4_5_vl_moe as transformers saves it: text_moe and vision_moe blocks are two groups, neither left out', async () => {
    const spec: SynthSpec = { family: 'ernie4_5_vl_moe_fused', dtype: 'BF16', numLayers: 2, numExperts: 3, hidden: 8, intermediate: 6, structure: UP, seed: 8 };
    await opened(spec, async (ckpt, model, gen) => {
      assert.equal(model.family, 'ernie4_5_vl_moe');
      assert.deepEqual(model.layers.map((l) => l.name), ['1', 'vision.1']);
      const [text, vision] = model.layers as [MoeModel['layers'][number], MoeModel['layers'][number]];
      assert.deepEqual(text.projections.up.tensors, ['model.language_model.layers.1.mlp.text_moe.experts.gate_up_proj']);
      assert.deepEqual(vision.projections.down.tensors, ['model.language_model.layers.1.mlp.vision_moe.experts.down_proj']);
      assert.deepEqual(vision.projections.gate!.shape, [3, 8]);
      assert.deepEqual(text.routerTensors, ['model.language_model.layers.1.mlp.text_moe.gate.weight']);
      assert.deepEqual(vision.routerTensors, ['model.language_model.layers.1.mlp.vision_moe.gate.weight']);
      for (const p of ['gate', 'up', 'down'] as Projection[]) assert.ok(sameBits((await model.readExpert('vision.1', p, 2)).data, gen.encodedExpert(1, p, 2, 'vision').values), p);
      // Without its vision block the layer contradicts the vision layer rule: an error, not a silent text-only model.
      const noVision = viewOf(ckpt, { drop: (n) => n.includes('.vision_moe.experts.') });
      await rejectsWith(() => resolveMoeModel(noVision), 'layout', (e) => assert.match(e.message, /\(vision layers\): no expert tensors for MoE layers 1/));
    });
  });

  it('the new layouts read back bit-exactly in F32, F16 and BF16', async () => {
    for (const family of ['nemotron_h', 'nemotron_h_fused', 'switch_transformers', 'nllb_moe', 'aria', 'step3p7', 'ernie4_5_vl_moe', 'ernie4_5_vl_moe_fused'] as const) {
      for (const dtype of ['F32', 'F16', 'BF16'] as SynthDtype[]) {
        const spec: SynthSpec = { family, dtype, numLayers: 2, numExperts: 2, hidden: 8, intermediate: 6, structure: UP, seed: 9 };
        await opened(spec, async (_ckpt, model, gen) => {
          for (const u of gen.units.filter((x) => !x.extra)) {
            const layout = model.layers.find((l) => l.name === u.name)!;
            for (const p of projectionsOf(layout.projections)) {
              for (let j = 0; j < 2; j++) assert.ok(sameBits((await model.readExpert(u.name, p, j)).data, gen.encodedExpert(u.layer, p, j, u.group).values), `${family} ${dtype} ${u.name} ${p} ${j}`);
            }
          }
        });
      }
    }
  });
});

async function f32FromF16(ckpt: Checkpoint, name: string): Promise<Float32Array> {
  const { decodeToFloat32 } = await import('../../src/engine/formats/decode');
  return decodeToFloat32(await ckpt.readTensorBytes(name), 'F16', { file: ckpt.source, tensor: name });
}

describe('new families\' layer rules, from their transformers configs', function () {
  const moe = (family: string, c: Record<string, unknown>, n: number, group: string | null = null) => [...FAMILY_RULES[family]!.moeLayers!(c, n, group)].sort((a, b) => a - b);
  it('nemotron_h: hybrid_override_pattern "E", or layers_block_type "moe"', () => {
    assert.deepEqual(moe('nemotron_h', { hybrid_override_pattern: 'MEM*E' }, 5), [1, 4]);
    assert.deepEqual(moe('nemotron_h', { layers_block_type: ['mamba', 'moe', 'attention'] }, 3), [1]);
  });
  it('switch_transformers: i % step == 1 (or step 1); nllb_moe: (i + 1) % step == 0; per stack', () => {
    assert.deepEqual(moe('switch_transformers', { encoder_sparse_step: 2, decoder_sparse_step: 1 }, 4, 'encoder'), [1, 3]);
    assert.deepEqual(moe('switch_transformers', { encoder_sparse_step: 2, decoder_sparse_step: 1 }, 4, 'decoder'), [0, 1, 2, 3]);
    assert.deepEqual(moe('switch_transformers', { encoder_sparse_step: 0 }, 4, 'encoder'), []);
    assert.deepEqual(moe('nllb_moe', { encoder_sparse_step: 4, decoder_sparse_step: 2 }, 8, 'encoder'), [3, 7]);
    assert.deepEqual(moe('nllb_moe', { encoder_sparse_step: 4, decoder_sparse_step: 2 }, 8, 'decoder'), [1, 3, 5, 7]);
  });
  it('step3p7: mlp_layer_types, else moe_layers_enum (string or list), else layers from 3', () => {
    assert.deepEqual(moe('step3p7', { mlp_layer_types: ['dense', 'sparse', 'sparse'] }, 3), [1, 2]);
    assert.deepEqual(moe('step3p7', { moe_layers_enum: '2,4' }, 5), [2, 4]);
    assert.deepEqual(moe('step3p7', { moe_layers_enum: [1, 3] }, 5), [1, 3]);
    assert.deepEqual(moe('step3p7', {}, 5), [3, 4]);
  });
  it('ernie4_5_vl_moe: start/end index per modality; expert groups from moe_num_experts', () => {
    const c = { moe_layer_interval: 1, moe_layer_start_index: [1, 2], moe_layer_end_index: [3, -1] };
    assert.deepEqual(moe('ernie4_5_vl_moe', c, 5), [1, 2, 3]);
    assert.deepEqual(moe('ernie4_5_vl_moe', c, 5, 'vision'), [2, 3, 4]);
    assert.deepEqual(FAMILY_RULES['ernie4_5_vl_moe']!.expertGroups!({ moe_num_experts: [64, 32] }), [
      { group: null, count: 64, field: 'moe_num_experts[0]' },
      { group: 'vision', count: 32, field: 'moe_num_experts[1]' },
    ]);
    assert.equal(FAMILY_RULES['ernie4_5_vl_moe']!.expertGroups!({ moe_num_experts: 64 })!.length, 2);
  });
});
