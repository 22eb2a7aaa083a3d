/**
 * One 3-D tensor per projection, all experts stacked along dim 0, in nn.Linear orientation:
 * `...X.gate_proj.weight` [E, I, H], `...X.up_proj.weight` [E, I, H], `...X.down_proj.weight` [E, H, I].
 * step3p7's original checkpoints store their routed experts this way under `moe.` (router
 * `moe.gate.weight`, shared expert `share_expert.*` apart; transformers' step3p7 conversion
 * concatenates gate and up into gate_up_proj). A 2-D `gate_proj.weight` is a dense FFN, not this.
 */
import { MoeInspectorError } from '../../errors';
import type { TensorEntry } from '../../model/checkpoint';
import { assertFinite, assertPlainFloat, decodeSlice, tensorOf, where } from '../tensor-read';
import { ATTENTION, type LayerTensors, type LayoutPattern, type PatternContext, type PatternMatch, type ProjSource } from './types';

function match(layer: LayerTensors, ctx: PatternContext): PatternMatch | null {
  const key = [...layer.rest.entries()].find(([k, full]) => /(^|\.)gate_proj\.weight$/.test(k) && !ATTENTION.test(k) && !/shared?_experts?\./.test(k) && ctx.ckpt.tensors.get(full)?.shape.length === 3)?.[0];
  if (!key) return null;
  const base = layer.prefix + key.slice(0, -'gate_proj.weight'.length);
  const [gate, up, down] = ['gate_proj', 'up_proj', 'down_proj'].map((p) => tensorOf(ctx.ckpt, `${base}${p}.weight`)) as [TensorEntry, TensorEntry, TensorEntry];
  assertPlainFloat(gate);
  const [E, I, H] = gate.shape as [number, number, number];
  const fits = (t: TensorEntry, want: number[]) => t.dtype === gate.dtype && t.shape.length === 3 && t.shape.every((d, i) => d === want[i]);
  if (!fits(up, [E, I, H])) throw new MoeInspectorError('layout', `up_proj is ${up.dtype} [${up.shape.join(', ')}], gate_proj is ${gate.dtype} [${gate.shape.join(', ')}]`, where(up));
  if (!fits(down, [E, H, I])) throw new MoeInspectorError('layout', `down_proj is ${down.dtype} [${down.shape.join(', ')}], expected [${E}, ${H}, ${I}] to fit gate_proj [${gate.shape.join(', ')}]`, where(down));
  if (ctx.hidden !== null && H !== ctx.hidden) throw new MoeInspectorError('layout', `stacked experts [E, I, H] give hidden size ${H}, config.json says ${ctx.hidden}`, where(gate));
  const src = (t: TensorEntry): ProjSource => ({
    layout: { shape: [t.shape[1]!, t.shape[2]!], encoding: { kind: 'plain', dtype: t.dtype }, tensors: [t.name], hasBias: false },
    async read(j) {
      const w = await decodeSlice(ctx.ckpt, t, j, E);
      assertFinite(w, t, j);
      return w;
    },
    async readBias() {
      return null;
    },
  });
  return { pattern: 'stacked-experts', numExperts: E, projections: { gate: src(gate), up: src(up), down: src(down) } };
}

export const stackedExpertsPattern: LayoutPattern = { name: 'stacked-experts', match };
