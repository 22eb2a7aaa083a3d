/**
 * Fused 3-D expert parameters without a ".weight" suffix: `...experts.gate_up_proj` + `...experts.down_proj`.
 *  - input-major [E, H, 2I] + [E, I, H] (y = x @ W): gpt_oss in bf16 (GptOssExperts, gate/up columns
 *    interleaved) and llama4 (Llama4TextExperts: gate_up_proj [E, H, 2I], gate = first I columns,
 *    down_proj [E, I, H]). Transposed to [out, in] on read.
 *  - output-major [E, 2I, H] + [E, H, I] (nn.Linear orientation, gate rows first): newer fused
 *    checkpoints such as Qwen3.5-MoE.
 * The orientation follows from the two shapes alone (both fit only if a dimension is 0); hidden_size
 * from config.json cross-checks it. The gate/up split (interleaved or halves) is family knowledge
 * (families.ts), since shapes cannot tell it.
 */
import { MoeInspectorError } from '../../errors';
import type { TensorEntry } from '../../model/checkpoint';
import { assertPlainFloat, decodeSlice, tensorOf, transpose, where } from '../tensor-read';
import { fusedSources, optionalTensor, plainStoredRows } from './fused-sources';
import { ATTENTION, type LayerTensors, type LayoutPattern, type PatternContext, type PatternMatch } from './types';
import { expertBlockKey } from './expert-block';

type Orientation = 'input-major' | 'output-major';

function orientationOf(gu: TensorEntry, dn: TensorEntry, hidden: number | null): Orientation {
  const [E, a, b] = gu.shape as [number, number, number];
  const [Ed, c, d] = dn.shape as [number, number, number];
  const outputMajor = Ed === E && b === c && 2 * d === a; // [E, 2I, H] + [E, H, I]
  const inputMajor = Ed === E && a === d && 2 * c === b; // [E, H, 2I] + [E, I, H]
  const o: Orientation | null = outputMajor ? 'output-major' : inputMajor ? 'input-major' : null;
  if (o === null) throw new MoeInspectorError('layout', `fused gate_up_proj [${gu.shape.join(', ')}] and down_proj [${dn.shape.join(', ')}] fit neither [E, 2I, H] + [E, H, I] nor [E, H, 2I] + [E, I, H]`, where(dn));
  const H = o === 'output-major' ? b : a;
  if (hidden !== null && H !== hidden) throw new MoeInspectorError('layout', `fused experts read as ${o} give hidden size ${H}, config.json says ${hidden}`, where(gu));
  return o;
}

function match(layer: LayerTensors, ctx: PatternContext): PatternMatch | null {
  const key = expertBlockKey(layer, ctx, (k) => /(^|\.)experts\.gate_up_proj$/.test(k) && !ATTENTION.test(k));
  if (!key) return null;
  const base = layer.prefix + key.slice(0, -'gate_up_proj'.length);
  const gu = tensorOf(ctx.ckpt, base + 'gate_up_proj');
  const dn = tensorOf(ctx.ckpt, base + 'down_proj');
  if (gu.shape.length !== 3 || dn.shape.length !== 3) throw new MoeInspectorError('layout', `fused expert tensors must be 3-D [E, ., .], got [${gu.shape.join(', ')}] and [${dn.shape.join(', ')}]`, where(gu));
  assertPlainFloat(gu);
  if (dn.dtype !== gu.dtype) throw new MoeInspectorError('layout', `down_proj is ${dn.dtype}, gate_up_proj is ${gu.dtype}`, where(dn));
  const o = orientationOf(gu, dn, ctx.hidden);
  const E = gu.shape[0]!;
  const decode = async (t: TensorEntry, j: number): Promise<Float32Array> => {
    const raw = await decodeSlice(ctx.ckpt, t, j, E);
    return o === 'input-major' ? transpose(raw, t.shape[1]!, t.shape[2]!) : raw;
  };
  const [, a, b] = gu.shape as [number, number, number];
  const [, c, d] = dn.shape as [number, number, number];
  return {
    pattern: `fused-${o}`,
    numExperts: E,
    projections: fusedSources(ctx, {
      gateUp: gu,
      down: dn,
      numExperts: E,
      decode,
      ...plainStoredRows(ctx, E),
      storedTransposed: o === 'input-major',
      gateUpShape: o === 'input-major' ? [b, a] : [a, b],
      downShape: o === 'input-major' ? [d, c] : [c, d],
      split: ctx.rule.fusedGateUpSplit,
      encoding: { kind: 'plain', dtype: gu.dtype },
      gateUpTensors: [gu.name],
      downTensors: [dn.name],
      gateUpBias: optionalTensor(ctx, base + 'gate_up_proj_bias'),
      downBias: optionalTensor(ctx, base + 'down_proj_bias'),
    }),
  };
}

export const fusedExpertsPattern: LayoutPattern = { name: 'fused', match };
