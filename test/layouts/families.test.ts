import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { openCheckpoint } from '../../src/engine/model/open-checkpoint';
import { resolveMoeModel } from '../../src/engine/layouts';
import { PROJECTIONS, layerIndex } from '../../src/engine/layouts/types';
import { generateSyntheticCheckpoint, SyntheticModel, type SynthSpec } from '../../src/engine/synth/generate';
import { writeSafetensors, type TensorPlan } from '../../src/engine/synth/safetensors-writer';
import { writeFile } from 'node:fs/promises';
import { countingView, rejectsWith, sameBits, viewOf, withTempDir } from './helpers';

const UP = { kind: 'upcycled' as const, ranks: { gate: 2, up: 3, down: 2 } };
const L = layerIndex;

async function generated<T>(spec: SynthSpec, fn: (dir: string) => Promise<T>): Promise<T> {
  return withTempDir(async (dir) => {
    await generateSyntheticCheckpoint(dir, spec);
    return fn(dir);
  });
}

describe('family layouts: biases, orientation, shared experts, layer rules', function () {
  it('gpt_oss MXFP4: interleaved gate/up exact, biases read apart and never folded in', async () => {
    const spec: SynthSpec = { family: 'gpt_oss', dtype: 'MXFP4', numLayers: 2, numExperts: 4, hidden: 64, intermediate: 32, structure: UP, seed: 11 };
    await generated(spec, async (dir) => {
      const ckpt = await openCheckpoint(dir);
      try {
        const model = resolveMoeModel(ckpt);
        const gen = new SyntheticModel(spec);
        assert.deepEqual(model.activation, { kind: 'gpt-oss', alpha: 1.702, limit: 7 });
        for (const p of PROJECTIONS) {
          assert.equal(model.layers[0]!.projections[p]!.encoding.kind, 'mxfp4');
          assert.ok(model.layers[0]!.projections[p]!.hasBias);
          for (let j = 0; j < 4; j++) {
            const w = await model.readExpert(L(1), p, j);
            assert.ok(sameBits(w.data, gen.encodedExpert(1, p, j).values), `${p} ${j} weight`);
            const b = await model.readExpertBias(L(1), p, j);
            const want = gen.bias(1, p, j);
            assert.ok(b !== null && sameBits(b, want), `${p} ${j} bias`);
            // The bias is O(1) against weights O(1/sqrt(in)): folding it in would dominate every delta.
            const rms = Math.sqrt(want.reduce((a, x) => a + x * x, 0) / want.length);
            assert.ok(rms > 0.5, `bias rms ${rms}`);
          }
        }
        assert.deepEqual([...model.layers[0]!.routerTensors].sort(), ['model.layers.0.mlp.router.bias', 'model.layers.0.mlp.router.weight']);
      } finally {
        await ckpt.close();
      }
    });
  });

  it('gpt_oss BF16 fused [E, H, 2I]: interleaved columns transposed to [out, in], biases apart', async () => {
    const spec: SynthSpec = { family: 'gpt_oss', dtype: 'BF16', numLayers: 1, numExperts: 3, hidden: 24, intermediate: 20, structure: UP, seed: 3 };
    await generated(spec, async (dir) => {
      const ckpt = await openCheckpoint(dir);
      try {
        const model = resolveMoeModel(ckpt);
        const gen = new SyntheticModel(spec);
        assert.equal(ckpt.tensors.get('model.layers.0.mlp.experts.gate_up_proj')!.shape.join(), '3,24,40');
        for (const p of PROJECTIONS) {
          for (let j = 0; j < 3; j++) {
            const w = await model.readExpert(L(0), p, j);
            assert.deepEqual([w.rows, w.cols], gen.shapeOf(p));
            assert.ok(sameBits(w.data, gen.encodedExpert(0, p, j).values), `${p} ${j}`);
            assert.ok(sameBits((await model.readExpertBias(L(0), p, j))!, gen.bias(0, p, j)), `${p} ${j} bias`);
          }
        }
      } finally {
        await ckpt.close();
      }
    });
  });

  it('deepseek_v3 FP8: 128x128 block scales with partial edge tiles, dense first layer, MTP layer skipped', async () => {
    // I = 136, H = 160: each matrix has one full and one partial tile per dimension.
    const spec: SynthSpec = { family: 'deepseek_v3', dtype: 'FP8', numLayers: 3, numExperts: 2, hidden: 160, intermediate: 136, structure: UP, seed: 5 };
    await generated(spec, async (dir) => {
      const ckpt = await openCheckpoint(dir);
      try {
        assert.ok(ckpt.tensors.has('model.layers.3.mlp.experts.0.gate_proj.weight'), 'the MTP layer holds experts on disk');
        assert.ok(ckpt.tensors.has('model.layers.0.mlp.gate_proj.weight'), 'layer 0 is a dense FFN');
        const model = resolveMoeModel(ckpt);
        assert.deepEqual(model.layers.map((l) => l.layer as number), [1, 2]);
        assert.equal(model.numLayers, 3);
        const enc = model.layers[0]!.projections.gate!.encoding;
        assert.deepEqual(enc, { kind: 'fp8-block', dtype: 'F8_E4M3', scaleDtype: 'F32', block: [128, 128] });
        assert.deepEqual(ckpt.tensors.get('model.layers.1.mlp.experts.0.down_proj.weight_scale_inv')!.shape, [2, 2]);
        assert.ok(model.layers[0]!.sharedExpertTensors.every((n) => n.includes('.mlp.shared_experts.')) && model.layers[0]!.sharedExpertTensors.length === 3);
        assert.ok(model.layers[0]!.routerTensors.includes('model.layers.1.mlp.gate.e_score_correction_bias'));
        const gen = new SyntheticModel(spec);
        for (const p of PROJECTIONS) {
          const got = await model.readExpert(L(2), p, 1);
          const want = gen.encodedExpert(2, p, 1).values;
          assert.ok(sameBits(got.data, want), p);
          // Independent spot check of one element in the partial corner tile: q * s by hand.
          const [rows, cols] = gen.shapeOf(p);
          const t = ckpt.tensors.get(`model.layers.2.mlp.experts.1.${p}_proj.weight`)!;
          const q = (await ckpt.readTensorBytes(t.name, { offset: (rows - 1) * cols + cols - 1, length: 1 }))[0]!;
          const s = new DataView((await ckpt.readTensorBytes(`${t.name}_scale_inv`)).slice().buffer).getFloat32(12, true); // tile [1, 1] of [2, 2]
          const e = (q >> 3) & 15;
          const m = q & 7;
          const mag = e === 0 ? (m / 8) * 2 ** -6 : (1 + m / 8) * 2 ** (e - 7);
          assert.equal(got.data[rows * cols - 1], Math.fround((q & 0x80 ? -mag : mag) * s));
        }
      } finally {
        await ckpt.close();
      }
    });
  });

  it('qwen2_moe: the shared expert is reported, not counted among the routed experts', async () => {
    const spec: SynthSpec = { family: 'qwen2_moe', dtype: 'BF16', numLayers: 2, numExperts: 4, hidden: 16, intermediate: 8, structure: UP, seed: 2 };
    await generated(spec, async (dir) => {
      const ckpt = await openCheckpoint(dir);
      try {
        const model = resolveMoeModel(ckpt);
        assert.equal(model.numExperts, 4);
        const l = model.layers[0]!;
        assert.deepEqual([...l.sharedExpertTensors].sort(), [
          'model.layers.0.mlp.shared_expert.down_proj.weight',
          'model.layers.0.mlp.shared_expert.gate_proj.weight',
          'model.layers.0.mlp.shared_expert.up_proj.weight',
          'model.layers.0.mlp.shared_expert_gate.weight',
        ]);
        assert.deepEqual(l.routerTensors, ['model.layers.0.mlp.gate.weight']);
        for (const p of PROJECTIONS) assert.ok(l.projections[p]!.tensors.every((n) => /\.mlp\.experts\.\d+\./.test(n)) && l.projections[p]!.tensors.length === 4);
      } finally {
        await ckpt.close();
      }
    });
  });

  it('qwen2_moe decoder_sparse_step / mlp_only_layers and jamba expert_layer_period decide the MoE layers', async () => {
    const spec: SynthSpec = { family: 'jamba', dtype: 'F32', numLayers: 4, numExperts: 2, hidden: 8, intermediate: 8, structure: UP, seed: 2 };
    await generated(spec, async (dir) => {
      const ckpt = await openCheckpoint(dir);
      try {
        assert.deepEqual(resolveMoeModel(ckpt).layers.map((l) => l.layer as number), [1, 3]);
        // A config whose rule disagrees with the tensors is refused, naming the layers.
        const wrong = viewOf(ckpt, { config: { ...ckpt.config, expert_layer_offset: 0 } });
        await rejectsWith(() => resolveMoeModel(wrong), 'layout', (e) => assert.match(e.message, /layers 0,2.*dense: 1,3/));
      } finally {
        await ckpt.close();
      }
    });
    const q: SynthSpec = { family: 'qwen2_moe', dtype: 'F32', numLayers: 3, numExperts: 2, hidden: 8, intermediate: 8, structure: UP, seed: 2 };
    await generated(q, async (dir) => {
      const ckpt = await openCheckpoint(dir);
      try {
        const drop = (n: string) => /^model\.layers\.1\.mlp\.experts\./.test(n);
        const rule = viewOf(ckpt, { drop, config: { ...ckpt.config, mlp_only_layers: [1] } });
        assert.deepEqual(resolveMoeModel(rule).layers.map((l) => l.layer as number), [0, 2]);
        const step = viewOf(ckpt, { drop: (n) => /^model\.layers\.[02]\.mlp\.experts\./.test(n), config: { ...ckpt.config, decoder_sparse_step: 2 } });
        assert.deepEqual(resolveMoeModel(step).layers.map((l) => l.layer as number), [1]);
      } finally {
        await ckpt.close();
      }
    });
  });

  it('dbrx: w1/v1 rows of expert j, w2 stored transposed', async () => {
    const spec: SynthSpec = { family: 'dbrx', dtype: 'F32', numLayers: 1, numExperts: 3, hidden: 12, intermediate: 5, structure: { kind: 'native' }, seed: 9 };
    await generated(spec, async (dir) => {
      const ckpt = await openCheckpoint(dir);
      try {
        const model = resolveMoeModel(ckpt);
        const gen = new SyntheticModel(spec);
        const down = await model.readExpert(L(0), 'down', 2);
        assert.deepEqual([down.rows, down.cols], [12, 5]);
        // Stored element (row 2*5 + i, col h) of w2 is down[h, i]: read one by hand.
        const raw = new Float32Array((await ckpt.readTensorBytes('transformer.blocks.0.ffn.experts.mlp.w2')).slice().buffer);
        for (const [h, i] of [[0, 0], [11, 4], [7, 2]] as const) assert.equal(down.data[h * 5 + i], raw[(2 * 5 + i) * 12 + h]);
        assert.ok(sameBits(down.data, gen.encodedExpert(0, 'down', 2).values));
      } finally {
        await ckpt.close();
      }
    });
  });

  it('llama4: fused [E, H, 2I] in->out transposed, halves split, language_model. prefix, text_config', async () => {
    const spec: SynthSpec = { family: 'llama4', dtype: 'F32', numLayers: 1, numExperts: 2, hidden: 6, intermediate: 4, structure: { kind: 'native' }, seed: 4 };
    await generated(spec, async (dir) => {
      const ckpt = await openCheckpoint(dir);
      try {
        const model = resolveMoeModel(ckpt);
        assert.equal(model.family, 'llama4');
        const raw = new Float32Array((await ckpt.readTensorBytes('language_model.model.layers.0.feed_forward.experts.gate_up_proj')).slice().buffer);
        const gate = await model.readExpert(L(0), 'gate', 1);
        const up = await model.readExpert(L(0), 'up', 1);
        // expert 1, stored [H=6, 2I=8]: gate[i, h] = col i, up[i, h] = col 4 + i.
        for (let i = 0; i < 4; i++) {
          for (let h = 0; h < 6; h++) {
            assert.equal(gate.data[i * 6 + h], raw[48 + h * 8 + i]);
            assert.equal(up.data[i * 6 + h], raw[48 + h * 8 + 4 + i]);
          }
        }
        assert.ok(model.layers[0]!.sharedExpertTensors.length === 3);
      } finally {
        await ckpt.close();
      }
    });
  });

  it('reading one expert of a fused tensor reads only that expert\'s byte range', async () => {
    const spec: SynthSpec = { family: 'fused', dtype: 'BF16', numLayers: 1, numExperts: 4, hidden: 16, intermediate: 8, structure: UP, seed: 1 };
    await generated(spec, async (dir) => {
      const real = await openCheckpoint(dir);
      try {
        const { ckpt, reads } = countingView(real);
        const model = resolveMoeModel(ckpt);
        assert.equal(model.family, 'detected:fused-output-major');
        assert.equal(reads.length, 0, 'resolving reads headers only');
        await model.readExpert(L(0), 'up', 2);
        const gu = real.tensors.get('model.layers.0.mlp.experts.gate_up_proj')!;
        assert.deepEqual(reads, [{ name: gu.name, offset: 2 * (gu.byteLength / 4), length: gu.byteLength / 4 }]);
      } finally {
        await real.close();
      }
    });
    const mx: SynthSpec = { family: 'gpt_oss', dtype: 'MXFP4', numLayers: 1, numExperts: 4, hidden: 32, intermediate: 32, structure: UP, seed: 1 };
    await generated(mx, async (dir) => {
      const real = await openCheckpoint(dir);
      try {
        const { ckpt, reads } = countingView(real);
        await resolveMoeModel(ckpt).readExpert(L(0), 'down', 3);
        const b = real.tensors.get('model.layers.0.mlp.experts.down_proj_blocks')!;
        const s = real.tensors.get('model.layers.0.mlp.experts.down_proj_scales')!;
        assert.deepEqual(reads, [
          { name: b.name, offset: 3 * (b.byteLength / 4), length: b.byteLength / 4 },
          { name: s.name, offset: 3 * (s.byteLength / 4), length: s.byteLength / 4 },
        ]);
      } finally {
        await real.close();
      }
    });
  });
});

describe('layout errors', function () {
  it('a dense model is not-moe, naming what was found', async () => {
    await withTempDir(async (dir) => {
      const plan = (name: string, shape: number[]): TensorPlan => ({ name, dtype: 'F32', shape, produce: async (sink) => sink(new Uint8Array(shape.reduce((a, b) => a * b, 1) * 4)) });
      await writeSafetensors(join(dir, 'model.safetensors'), [plan('model.layers.0.mlp.gate_proj.weight', [8, 4]), plan('model.layers.0.mlp.up_proj.weight', [8, 4]), plan('model.layers.0.mlp.down_proj.weight', [4, 8])]);
      await writeFile(join(dir, 'config.json'), JSON.stringify({ model_type: 'llama', num_hidden_layers: 1, hidden_size: 4 }));
      const ckpt = await openCheckpoint(dir);
      try {
        await rejectsWith(() => resolveMoeModel(ckpt), 'not-moe', (e) => {
          assert.match(e.message, /not a Mixture-of-Experts model: model_type llama/);
          assert.match(e.message, /no expert tensors/);
        });
      } finally {
        await ckpt.close();
      }
    });
  });

  it('NaN in one expert: non-finite error naming the tensor and the count', async () => {
    const spec: SynthSpec = { family: 'olmoe', dtype: 'BF16', numLayers: 1, numExperts: 2, hidden: 16, intermediate: 8, structure: UP, seed: 1, injectNaN: { layer: 0, projection: 'up', expert: 1, count: 3 } };
    await generated(spec, async (dir) => {
      const ckpt = await openCheckpoint(dir);
      try {
        const model = resolveMoeModel(ckpt);
        await model.readExpert(L(0), 'up', 0);
        await rejectsWith(model.readExpert(L(0), 'up', 1), 'non-finite', (e) => {
          assert.equal(e.where.tensor, 'model.layers.0.mlp.experts.1.up_proj.weight');
          assert.equal(e.where.file, 'model.safetensors');
          assert.match(e.problem, /^3 NaN\/Inf values in expert 1$/);
        });
      } finally {
        await ckpt.close();
      }
    });
  });

  it('missing, mismatched or unscaled tensors are layout/dtype errors naming the tensor', async () => {
    const spec: SynthSpec = { family: 'deepseek_v3', dtype: 'FP8', numLayers: 2, numExperts: 3, hidden: 32, intermediate: 16, structure: UP, seed: 1 };
    await generated(spec, async (dir) => {
      const ckpt = await openCheckpoint(dir);
      try {
        const missing = viewOf(ckpt, { drop: (n) => n === 'model.layers.1.mlp.experts.1.up_proj.weight' });
        await rejectsWith(() => resolveMoeModel(missing), 'layout', (e) => assert.equal(e.where.tensor, 'model.layers.1.mlp.experts.1.up_proj.weight'));
        const unscaled = viewOf(ckpt, { drop: (n) => n.endsWith('_scale_inv') });
        await rejectsWith(() => resolveMoeModel(unscaled), 'dtype', (e) => assert.match(e.message, /weight_scale_inv/));
        const count = viewOf(ckpt, { config: { ...ckpt.config, n_routed_experts: 4 } });
        await rejectsWith(() => resolveMoeModel(count), 'layout', (e) => assert.match(e.message, /n_routed_experts = 4, but the tensors hold 3 routed experts per layer \(layer 1: model\.layers\.1\.mlp\.experts\.0\.up_proj\.weight … model\.layers\.1\.mlp\.experts\.2\.up_proj\.weight_scale_inv\)/));
        const block = viewOf(ckpt, { config: { ...ckpt.config, quantization_config: { weight_block_size: [8, 8] } } });
        await rejectsWith(() => resolveMoeModel(block), 'layout', (e) => assert.match(e.message, /block scales have shape \[1, 1\], expected \[2, 4\]/));
      } finally {
        await ckpt.close();
      }
    });
    const fused: SynthSpec = { family: 'fused', dtype: 'F32', numLayers: 1, numExperts: 2, hidden: 16, intermediate: 8, structure: UP, seed: 1 };
    await generated(fused, async (dir) => {
      const ckpt = await openCheckpoint(dir);
      try {
        const noDown = viewOf(ckpt, { drop: (n) => n.endsWith('experts.down_proj') });
        await rejectsWith(() => resolveMoeModel(noDown), 'layout', (e) => assert.equal(e.where.tensor, 'model.layers.0.mlp.experts.down_proj'));
        const hidden = viewOf(ckpt, { config: { ...ckpt.config, hidden_size: 8 } });
        await rejectsWith(() => resolveMoeModel(hidden), 'layout', (e) => assert.match(e.message, /hidden size 16, config.json says 8/));
        const bent = viewOf(ckpt, { retype: (t) => (t.name.endsWith('down_proj') ? { ...t, shape: [2, 4, 32] } : t) });
        await rejectsWith(() => resolveMoeModel(bent), 'layout', (e) => assert.match(e.message, /fit neither/));
      } finally {
        await ckpt.close();
      }
    });
  });

  it('an unknown model_type is detected from the tensor names', async () => {
    const spec: SynthSpec = { family: 'mixtral', dtype: 'BF16', numLayers: 1, numExperts: 2, hidden: 8, intermediate: 8, structure: UP, seed: 1 };
    await generated(spec, async (dir) => {
      const ckpt = await openCheckpoint(dir);
      try {
        const model = resolveMoeModel(viewOf(ckpt, { config: { ...ckpt.config, model_type: 'brand_new_moe' } }));
        assert.equal(model.family, 'detected:per-expert');
        assert.equal(model.numExperts, 2);
        const bare = resolveMoeModel(viewOf(ckpt, { config: null }));
        assert.equal(bare.family, 'detected:per-expert');
        assert.equal(bare.numLayers, null);
      } finally {
        await ckpt.close();
      }
    });
  });
});
