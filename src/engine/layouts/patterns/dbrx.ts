/**
 * DBRX (transformers DbrxExperts / DbrxExpertGLU): transformer.blocks.N.ffn.experts.mlp.{w1, v1, w2},
 * each [E*I, H]; expert j owns rows [j*I, (j+1)*I). w1 = gate, v1 = up: x @ w1_j^T (linear
 * orientation). w2 is stored TRANSPOSED: out = h @ w2_j, so down = w2_j^T [H, I]. E comes from
 * config.json ffn_config.moe_num_experts: the tensors alone cannot tell E from I.
 */
import { MoeInspectorError } from '../../errors';
import type { TensorEntry } from '../../model/checkpoint';
import { assertFinite, assertPlainFloat, decodeSlice, readSliceBytes, tensorOf, transpose, where } from '../tensor-read';
import { decodeRows } from '../row-blocks';
import type { LayerTensors, LayoutPattern, PatternContext, PatternMatch, ProjSource } from './types';
import { expertBlockKey } from './expert-block';

function match(layer: LayerTensors, ctx: PatternContext): PatternMatch | null {
  const key = expertBlockKey(layer, ctx, (k) => /(^|\.)experts\.mlp\.w1$/.test(k));
  if (!key) return null;
  const base = layer.prefix + key.slice(0, -'w1'.length);
  const E = ctx.configExperts;
  if (E === null) throw new MoeInspectorError('layout', 'the DBRX layout needs ffn_config.moe_num_experts in config.json to split [E*I, H] into experts', { file: ctx.ckpt.source, tensor: base + 'w1' });
  const [w1, v1, w2] = ['w1', 'v1', 'w2'].map((s) => tensorOf(ctx.ckpt, base + s)) as [TensorEntry, TensorEntry, TensorEntry];
  assertPlainFloat(w1);
  for (const t of [v1, w2]) {
    if (t.dtype !== w1.dtype || t.shape.length !== 2 || t.shape[0] !== w1.shape[0] || t.shape[1] !== w1.shape[1]) {
      throw new MoeInspectorError('layout', `is ${t.dtype} [${t.shape.join(', ')}], w1 is ${w1.dtype} [${w1.shape.join(', ')}]`, where(t));
    }
  }
  const I = w1.shape[0]! / E;
  const H = w1.shape[1]!;
  if (!Number.isInteger(I)) throw new MoeInspectorError('layout', `${w1.shape[0]} rows do not split into ${E} experts (ffn_config.moe_num_experts)`, where(w1));
  const src = (tensor: TensorEntry, storedTransposed: boolean): ProjSource => ({
    layout: { shape: storedTransposed ? [H, I] : [I, H], encoding: { kind: 'plain', dtype: tensor.dtype }, tensors: [tensor.name], hasBias: false },
    // Expert j's stored [I, H] rows either way; for w2 they are the transposed down matrix's rows.
    rowBlocks: {
      rows: I,
      cols: H,
      transposed: storedTransposed,
      read: (j, first, count) => decodeRows(ctx.ckpt, tensor, j, E, I, first, count),
      prefetch: async (j) => void (await readSliceBytes(ctx.ckpt, tensor, j, E)),
    },
    async read(j) {
      const raw = await decodeSlice(ctx.ckpt, tensor, j, E);
      const w = storedTransposed ? transpose(raw, I, H) : raw;
      assertFinite(w, tensor, j);
      return w;
    },
    async readBias() {
      return null;
    },
  });
  return { pattern: 'dbrx', numExperts: E, projections: { gate: src(w1, false), up: src(v1, false), down: src(w2, true) } };
}

export const dbrxPattern: LayoutPattern = { name: 'dbrx', match };
