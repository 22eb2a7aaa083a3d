/**
 * One 3-D tensor per projection, all experts stacked along dim 0, in nn.Linear orientation:
 * `...X.gate_proj` [E, I, H], `...X.up_proj` [E, I, H], `...X.down_proj` [E, H, I], each with or
 * without a ".weight" suffix.
 *  - step3p7's original checkpoints store their routed experts this way under `moe.` with ".weight"
 *    (router `moe.gate.weight`, shared expert `share_expert.*` apart; transformers' step3p7
 *    conversion concatenates gate and up into gate_up_proj).
 *  - transformers' NemotronHExperts (has_gate=False) saves `mixer.experts.up_proj` [E, I, H] and
 *    `mixer.experts.down_proj` [E, H, I] without a gate and without ".weight".
 * A 2-D `gate_proj.weight` is a dense FFN, not this; fused `gate_up_proj` checkpoints are fused-experts.ts.
 */
import { MoeInspectorError } from '../../errors';
import type { TensorEntry } from '../../model/checkpoint';
import { isKnownFamily } from '../families';
import { assertFinite, assertPlainFloat, decodeSlice, readSliceBytes, tensorOf, where } from '../tensor-read';
import { decodeRows } from '../row-blocks';
import { ATTENTION, type LayerTensors, type LayoutPattern, type PatternContext, type PatternMatch, type ProjSource } from './types';
import { expertBlockKey } from './expert-block';

/** Every stacked block has an up projection (the gate is optional): it names the block. */
const STACKED = /(^|\.)(up_proj)(\.weight)?$/;

function match(layer: LayerTensors, ctx: PatternContext): PatternMatch | null {
  const is3d = (full: string): boolean => ctx.ckpt.tensors.get(full)?.shape.length === 3;
  const key = expertBlockKey(layer, ctx, (k, full) => STACKED.test(k) && !ATTENTION.test(k) && !/shared?_experts?\./.test(k) && is3d(full));
  if (!key) return null;
  const m = STACKED.exec(key)!;
  const suffix = m[3] ?? '';
  const base = layer.prefix + key.slice(0, key.length - m[2]!.length - suffix.length);
  const named = (p: string): string => `${base}${p}${suffix}`;
  const gate = ctx.ckpt.tensors.get(named('gate_proj')) ?? null;
  if (gate === null && ctx.rule.gateless !== true && isKnownFamily(ctx.family)) {
    throw new MoeInspectorError('layout', `stacked expert tensors without a gate_proj: ${ctx.family} experts have a gate (found ${key})`, { file: ctx.ckpt.source, tensor: named('gate_proj') });
  }
  const [up, down] = [tensorOf(ctx.ckpt, named('up_proj')), tensorOf(ctx.ckpt, named('down_proj'))];
  assertPlainFloat(up);
  const [E, I, H] = up.shape as [number, number, number];
  const fits = (t: TensorEntry, want: number[]) => t.dtype === up.dtype && t.shape.length === 3 && t.shape.every((d, i) => d === want[i]);
  if (!fits(up, [E, I, H])) throw new MoeInspectorError('layout', `up_proj is ${up.dtype} [${up.shape.join(', ')}], expected 3-D [E, I, H]`, where(up));
  if (gate && !fits(gate, [E, I, H])) throw new MoeInspectorError('layout', `gate_proj is ${gate.dtype} [${gate.shape.join(', ')}], up_proj is ${up.dtype} [${up.shape.join(', ')}]`, where(gate));
  if (!fits(down, [E, H, I])) throw new MoeInspectorError('layout', `down_proj is ${down.dtype} [${down.shape.join(', ')}], expected [${E}, ${H}, ${I}] to fit up_proj [${up.shape.join(', ')}]`, where(down));
  // Only checkable where the experts read the hidden state itself (NemotronH's latent MoE reads a smaller latent).
  if (ctx.hidden !== null && H !== ctx.hidden && gate !== null) throw new MoeInspectorError('layout', `stacked experts [E, I, H] give hidden size ${H}, config.json says ${ctx.hidden}`, where(up));
  const src = (t: TensorEntry): ProjSource => ({
    layout: { shape: [t.shape[1]!, t.shape[2]!], encoding: { kind: 'plain', dtype: t.dtype }, tensors: [t.name], hasBias: false },
    // Expert j's [out, in] slice is contiguous: rows [first, first + count) of it are one byte range.
    rowBlocks: {
      rows: t.shape[1]!,
      cols: t.shape[2]!,
      transposed: false,
      read: (j, first, count) => decodeRows(ctx.ckpt, t, j, E, t.shape[1]!, first, count),
      prefetch: async (j) => void (await readSliceBytes(ctx.ckpt, t, j, E)),
    },
    async read(j) {
      const w = await decodeSlice(ctx.ckpt, t, j, E);
      assertFinite(w, t, j);
      return w;
    },
    async readBias() {
      return null;
    },
  });
  return { pattern: 'stacked-experts', numExperts: E, projections: { ...(gate ? { gate: src(gate) } : {}), up: src(up), down: src(down) } };
}

export const stackedExpertsPattern: LayoutPattern = { name: 'stacked-experts', match };
