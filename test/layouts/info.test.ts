import { strict as assert } from 'node:assert';
import { stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openCheckpoint } from '../../src/engine/model/open-checkpoint';
import { resolveMoeModel } from '../../src/engine/layouts';
import { buildInfoReport } from '../../src/engine/report/info';
import { generateSyntheticCheckpoint, type SynthSpec } from '../../src/engine/synth/generate';
import { writeSafetensors } from '../../src/engine/synth/safetensors-writer';
import { withTempDir } from './helpers';

const UP = { kind: 'upcycled' as const, ranks: { gate: 2, up: 2, down: 2 } };

describe('info report (headers only)', function () {
  it('gpt_oss MXFP4: logical parameters count 2 per block byte, scales are not parameters', async () => {
    const E = 4, H = 64, I = 32, layers = 2;
    const spec: SynthSpec = { family: 'gpt_oss', dtype: 'MXFP4', numLayers: layers, numExperts: E, hidden: H, intermediate: I, structure: UP, seed: 1 };
    await withTempDir(async (dir) => {
      await generateSyntheticCheckpoint(dir, spec);
      const ckpt = await openCheckpoint(dir);
      try {
        const r = buildInfoReport(ckpt, resolveMoeModel(ckpt));
        // Routed experts per layer: gate_up E*2I*H + bias E*2I, down E*H*I + bias E*H.
        const routed = layers * (E * 2 * I * H + E * 2 * I + E * H * I + E * H);
        // Other: embedding 64*H, per layer norm H + q,k,v,o H*H + router E*H + router bias E, final norm H, lm_head 64*H.
        const other = 64 * H + layers * (H + 4 * H * H + E * H + E) + H + 64 * H;
        assert.deepEqual(r.parameters, { total: routed + other, routed_experts: routed, other });
        assert.equal(r.family, 'gpt_oss');
        assert.equal(r.num_experts, E);
        assert.equal(r.num_layers, layers);
        assert.deepEqual(r.moe_layers, [0, 1]);
        assert.deepEqual(r.projections.gate!.shape, [I, H]);
        assert.deepEqual(r.projections.down!.shape, [H, I]);
        assert.match(r.projections.up!.encoding, /^MXFP4/);
        // U8: blocks (params / 2 bytes) and scales (one byte per 32 inputs), 4 tensors per layer.
        const u8Bytes = layers * ((E * 2 * I * H + E * H * I) / 2 + (E * 2 * I * H + E * H * I) / 32);
        assert.deepEqual(r.dtypes['U8'], { tensors: 4 * layers, bytes: u8Bytes });
        const size = (await stat(join(dir, 'model.safetensors'))).size;
        assert.deepEqual(r.files, [{ name: 'model.safetensors', bytes: size }]);
        assert.equal(r.total_bytes, size);
        assert.deepEqual(r.shared_experts, { present: false, tensors: 0 });
        assert.equal(r.moe_error, undefined);
      } finally {
        await ckpt.close();
      }
    });
  });

  it('deepseek_v3 FP8: shared experts reported, block scales not counted, sharded files listed', async () => {
    const spec: SynthSpec = { family: 'deepseek_v3', dtype: 'FP8', numLayers: 2, numExperts: 2, hidden: 32, intermediate: 16, structure: UP, seed: 1, maxShardBytes: 4096 };
    await withTempDir(async (dir) => {
      const truth = await generateSyntheticCheckpoint(dir, spec);
      const ckpt = await openCheckpoint(dir);
      try {
        const r = buildInfoReport(ckpt, resolveMoeModel(ckpt));
        assert.deepEqual(r.moe_layers, [1]);
        assert.deepEqual(r.shared_experts, { present: true, tensors: 3 });
        assert.match(r.projections.gate!.encoding, /^F8_E4M3 x F32 scale per 128x128 block$/);
        // Decoder MoE layer 1 only: the MTP layer (2) holds experts too, counted as "other".
        assert.equal(r.parameters.routed_experts, 2 * 3 * 16 * 32);
        const scaleTensors = [...ckpt.tensors.values()].filter((t) => t.name.endsWith('_scale_inv'));
        assert.equal(scaleTensors.length, 2 * 2 * 3); // 2 expert layers (1 and MTP 2) x 2 experts x 3 projections
        const all = [...ckpt.tensors.values()].reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0);
        const scales = scaleTensors.reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0);
        assert.equal(r.parameters.total, all - scales);
        assert.deepEqual(r.files.map((f) => f.name), truth.files);
        for (const f of r.files) assert.equal(f.bytes, (await stat(join(dir, f.name))).size);
        assert.equal(r.total_bytes, r.files.reduce((a, f) => a + f.bytes, 0));
      } finally {
        await ckpt.close();
      }
    });
  });

  it('a model that is not MoE still gets dtypes, parameters and files, with the reason', async () => {
    await withTempDir(async (dir) => {
      await writeSafetensors(join(dir, 'model.safetensors'), [
        { name: 'model.layers.0.mlp.up_proj.weight', dtype: 'BF16', shape: [8, 4], produce: async (sink) => sink(new Uint8Array(64)) },
      ]);
      await writeFile(join(dir, 'config.json'), JSON.stringify({ model_type: 'llama', num_hidden_layers: 1 }));
      const ckpt = await openCheckpoint(dir);
      try {
        let err: Error | null = null;
        try {
          resolveMoeModel(ckpt);
        } catch (e) {
          err = e as Error;
        }
        const r = buildInfoReport(ckpt, err!);
        assert.equal(r.family, 'llama');
        assert.equal(r.moe_error?.code, 'not-moe');
        assert.deepEqual(r.moe_layers, []);
        assert.deepEqual(r.parameters, { total: 32, routed_experts: 0, other: 32 });
        assert.deepEqual(r.dtypes, { BF16: { tensors: 1, bytes: 64 } });
      } finally {
        await ckpt.close();
      }
    });
  });
});
