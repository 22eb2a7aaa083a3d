/**
 * aria (transformers modeling_aria.py, AriaGroupedExpertsMLP): `...experts.fc1.weight` [E, H, 2I] and
 * `...experts.fc2.weight` [E, I, H], stored input-major (AriaGroupedExpertsGemm computes x @ W[j]).
 * The forward is `projection, gate = chunk(fc1(x), 2, dim=-1); silu(projection) * gate`: the FIRST
 * I output columns are the ones passed through silu, i.e. the SwiGLU gate, and the second I columns
 * are the multiplier, i.e. up (the variable the code calls "gate" is the up projection). Each expert
 * is transposed to linear [out, in] on read; the split is halves, never interleaved.
 */
import { MoeInspectorError } from '../../errors';
import type { TensorEntry } from '../../model/checkpoint';
import { assertPlainFloat, decodeSlice, tensorOf, transpose, where } from '../tensor-read';
import { fusedSources, plainStoredRows } from './fused-sources';
import { ATTENTION, type LayerTensors, type LayoutPattern, type PatternContext, type PatternMatch } from './types';
import { expertBlockKey } from './expert-block';

function match(layer: LayerTensors, ctx: PatternContext): PatternMatch | null {
  const key = expertBlockKey(layer, ctx, (k) => /(^|\.)experts\.fc1\.weight$/.test(k) && !ATTENTION.test(k));
  if (!key) return null;
  const base = layer.prefix + key.slice(0, -'fc1.weight'.length);
  const fc1 = tensorOf(ctx.ckpt, base + 'fc1.weight');
  const fc2 = tensorOf(ctx.ckpt, base + 'fc2.weight');
  assertPlainFloat(fc1);
  const [E, H, I2] = fc1.shape as [number, number, number];
  if (fc1.shape.length !== 3 || fc2.shape.length !== 3 || fc2.shape[0] !== E || 2 * fc2.shape[1]! !== I2 || fc2.shape[2] !== H || fc2.dtype !== fc1.dtype) {
    throw new MoeInspectorError('layout', `fc2 ${fc2.dtype} [${fc2.shape.join(', ')}] does not fit fc1 ${fc1.dtype} [${fc1.shape.join(', ')}] (expected fc1 [E, H, 2I] and fc2 [E, I, H])`, where(fc2));
  }
  if (ctx.hidden !== null && H !== ctx.hidden) throw new MoeInspectorError('layout', `grouped experts read as [E, H, 2I] give hidden size ${H}, config.json says ${ctx.hidden}`, where(fc1));
  const decode = async (t: TensorEntry, j: number): Promise<Float32Array> => transpose(await decodeSlice(ctx.ckpt, t, j, E), t.shape[1]!, t.shape[2]!);
  return {
    pattern: 'grouped-gemm',
    numExperts: E,
    projections: fusedSources(ctx, {
      gateUp: fc1,
      down: fc2,
      numExperts: E,
      decode,
      // Stored [H, 2I] / [I, H] per expert: pass one cuts the stored rows (RowBlockSource.transposed).
      ...plainStoredRows(ctx, E),
      storedTransposed: true,
      gateUpShape: [I2, H],
      downShape: [H, I2 / 2],
      split: 'halves',
      encoding: { kind: 'plain', dtype: fc1.dtype },
      gateUpTensors: [fc1.name],
      downTensors: [fc2.name],
      gateUpBias: null,
      downBias: null,
    }),
  };
}

export const groupedGemmPattern: LayoutPattern = { name: 'grouped-gemm', match };
