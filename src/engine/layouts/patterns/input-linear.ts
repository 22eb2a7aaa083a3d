/**
 * granitemoe / granitemoeshared (GraniteMoeParallelExperts) and jetmoe (JetMoeParallelExperts):
 *   ...input_linear.weight [E, 2I, H]: output rows, gate = rows [0, I), up = rows [I, 2I)
 *       (forward: chunk(2, dim=-1) -> act(first) * second): halves, NOT interleaved;
 *   ...output_linear.weight [E, H, I].
 * JetMoE also builds attention from experts (self_attention.experts.input_linear): those are not FFN
 * experts and are skipped here.
 */
import { MoeInspectorError } from '../../errors';
import { assertPlainFloat, decodeSlice, tensorOf, where } from '../tensor-read';
import { fusedSources, plainStoredRows } from './fused-sources';
import { ATTENTION, type LayerTensors, type LayoutPattern, type PatternContext, type PatternMatch } from './types';
import { expertBlockKey } from './expert-block';

function match(layer: LayerTensors, ctx: PatternContext): PatternMatch | null {
  const key = expertBlockKey(layer, ctx, (k) => /(^|\.)input_linear\.weight$/.test(k) && !ATTENTION.test(k));
  if (!key) return null;
  const base = layer.prefix + key.slice(0, -'input_linear.weight'.length);
  const gu = tensorOf(ctx.ckpt, base + 'input_linear.weight');
  const dn = tensorOf(ctx.ckpt, base + 'output_linear.weight');
  assertPlainFloat(gu);
  const [E, r2, h] = gu.shape as [number, number, number];
  if (gu.shape.length !== 3 || dn.shape.length !== 3 || dn.shape[0] !== E || dn.shape[1] !== h || 2 * dn.shape[2]! !== r2 || dn.dtype !== gu.dtype) {
    throw new MoeInspectorError('layout', `output_linear ${dn.dtype} [${dn.shape.join(', ')}] does not fit input_linear ${gu.dtype} [${gu.shape.join(', ')}] (expected [E, H, I] with input_linear [E, 2I, H])`, where(dn));
  }
  return {
    pattern: 'input-linear',
    numExperts: E,
    projections: fusedSources(ctx, {
      gateUp: gu,
      down: dn,
      numExperts: E,
      decode: (t, j) => decodeSlice(ctx.ckpt, t, j, E),
      ...plainStoredRows(ctx, E),
      storedTransposed: false,
      gateUpShape: [r2, h],
      downShape: [h, r2 / 2],
      split: 'halves',
      encoding: { kind: 'plain', dtype: gu.dtype },
      gateUpTensors: [gu.name],
      downTensors: [dn.name],
      gateUpBias: null,
      downBias: null,
    }),
  };
}

export const inputLinearPattern: LayoutPattern = { name: 'input-linear', match };
