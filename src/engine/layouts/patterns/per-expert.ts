/**
 * One tensor per expert and projection: `...experts.{j}.{gate_proj|w1, up_proj|w3, down_proj|w2}.weight`,
 * each [out, in] (nn.Linear). Used by mixtral, minimax, phimoe (w1 = gate, w3 = up, w2 = down:
 * transformers MixtralBlockSparseTop2MLP), olmoe, qwen2_moe, qwen3_moe, deepseek_v2/v3, kimi_k2,
 * glm4_moe, ernie4_5_moe, jamba (gate_proj/up_proj/down_proj), ernie4_5_vl_moe (experts numbered
 * across the text and vision groups: FamilyRule.expertGroups). Experts without a gate:
 * nemotron_h (`experts.{j}.{up,down}_proj`), switch_transformers (`experts.expert_{j}.{wi,wo}`:
 * SwitchTransformersDenseActDense, wi = up [d_ff, d_model], wo = down) and nllb_moe
 * (`experts.expert_{j}.{fc1,fc2}` with biases: NllbMoeDenseActDense). DeepSeek-V3-style FP8 releases add
 * `...weight_scale_inv` [ceil(out/b0), ceil(in/b1)] with W = q * s per tile (DeepSeek-V3
 * README_WEIGHTS.md). Optional `.bias` siblings are read apart, never folded in.
 */
import { MoeInspectorError } from '../../errors';
import type { TensorEntry } from '../../model/checkpoint';
import { applyBlockScales } from '../../formats/fp8-block';
import { PROJECTIONS, type Projection, type WeightEncoding } from '../types';
import { assertFinite, decodeSlice, tensorOf, where } from '../tensor-read';
import { applyRowBlockScales, decodeRows } from '../row-blocks';
import { ATTENTION, type LayerTensors, type LayoutPattern, type PatternContext, type PatternMatch, type ProjSource } from './types';

const PER_EXPERT = /^(.+\.experts)\.((?:expert_)?\d+)\.([A-Za-z0-9_]+)\.weight$/;
const PROJ_NAMES: Readonly<Record<Projection, readonly string[]>> = {
  gate: ['gate_proj', 'w1'],
  up: ['up_proj', 'w3', 'wi', 'fc1'],
  down: ['down_proj', 'w2', 'wo', 'fc2'],
};
/** Up projections that only exist in experts without a gate: their absent gate is the design. */
const UNGATED_UP = new Set(['wi', 'fc1']);

/** "block|projName" -> expert -> full tensor name, for the layer's non-attention expert tensors; the "expert_" of "expert_{j}" is kept in `label`. */
function collect(layer: LayerTensors): { found: Map<string, Map<number, string>>; label: string } {
  const found = new Map<string, Map<number, string>>();
  let label = '';
  for (const [rest, full] of layer.rest) {
    const m = PER_EXPERT.exec(rest);
    if (!m || ATTENTION.test(rest)) continue;
    const key = `${m[1]}|${m[3]}`;
    const byExpert = found.get(key) ?? new Map<number, string>();
    label = m[2]!.startsWith('expert_') ? 'expert_' : '';
    byExpert.set(Number(m[2]!.replace('expert_', '')), full);
    found.set(key, byExpert);
  }
  return { found, label };
}

function match(layer: LayerTensors, ctx: PatternContext): PatternMatch | null {
  const { found, label } = collect(layer);
  if (found.size === 0) return null;
  const blocks = new Set([...found.keys()].map((k) => k.split('|')[0]!));
  if (blocks.size !== 1) throw new MoeInspectorError('layout', `expert tensors under several blocks (${[...blocks].join(', ')})`, { file: ctx.ckpt.source });
  const block = [...blocks][0]!;
  const tensorName = (j: number, name: string): string => `${layer.prefix}${block}.${label}${j}.${name}.weight`;
  const byProj: Partial<Record<Projection, Map<number, string>>> = {};
  const projName: Partial<Record<Projection, string>> = {};
  for (const p of PROJECTIONS) {
    const name = PROJ_NAMES[p].find((n) => found.has(`${block}|${n}`));
    if (name) {
      byProj[p] = found.get(`${block}|${name}`)!;
      projName[p] = name;
      continue;
    }
    if (p === 'gate' && (ctx.rule.gateless === true || UNGATED_UP.has(PROJ_NAMES.up.find((n) => found.has(`${block}|${n}`)) ?? ''))) continue;
    throw new MoeInspectorError('layout', `no ${p} projection among the experts (looked for ${PROJ_NAMES[p].map((n) => `${block}.N.${n}.weight`).join(', ')}; found ${[...found.keys()].map((k) => k.split('|')[1]).join(', ')})`, {
      file: ctx.ckpt.source,
      tensor: `${layer.prefix}${block}.${label}0`,
    });
  }
  const present = PROJECTIONS.filter((p) => byProj[p] !== undefined);
  const numExperts = Math.max(...present.map((p) => Math.max(...byProj[p]!.keys()) + 1));
  // A layer holding only the first group's experts (ernie4_5_vl_moe layers outside the vision
  // experts' start..end range) is read as that group alone; the layer rules then check which is right.
  const groups = ctx.expertGroups && numExperts === ctx.expertGroups[0]?.count ? ctx.expertGroups.slice(0, 1) : ctx.expertGroups;
  const declared = groups ? groups.reduce((a, g) => a + g.count, 0) : null;
  if (groups && declared !== numExperts) {
    throw new MoeInspectorError('layout', `config.json ${groups.map((g) => `${g.field} = ${g.count}`).filter((x, i, a) => a.indexOf(x) === i).join(', ')} declares ${declared} experts per layer (${groups.map((g) => `${g.count} ${g.group ?? 'text'}`).join(' + ')}), but the tensors number ${numExperts} (${layer.prefix}${block}.0..${numExperts - 1})`, {
      file: ctx.ckpt.source,
      tensor: `${layer.prefix}${block}.${label}${numExperts - 1}`,
    });
  }
  for (const p of present) {
    for (let j = 0; j < numExperts; j++) {
      if (!byProj[p]!.has(j)) throw new MoeInspectorError('layout', `expert ${j} of ${numExperts} (experts numbered 0..${numExperts - 1} in this layer) has no ${p} weight`, { file: ctx.ckpt.source, tensor: tensorName(j, projName[p]!) });
    }
  }
  /** Experts [first, first + count) as their own group, renumbered from 0. */
  const groupOf = (first: number, count: number) => {
    const slice = (m: Map<number, string>): Map<number, string> => new Map(Array.from({ length: count }, (_, j) => [j, m.get(first + j)!]));
    const src = (p: Projection): ProjSource => source(ctx, slice(byProj[p]!), first);
    return { numExperts: count, projections: { ...(byProj.gate ? { gate: src('gate') } : {}), up: src('up'), down: src('down') } };
  };
  if (!groups) return { pattern: 'per-expert', ...groupOf(0, numExperts) };
  const starts = groups.map((_, i) => groups.slice(0, i).reduce((a, g) => a + g.count, 0));
  const [main, ...rest] = groups.map((g, i) => ({ group: g.group, ...groupOf(starts[i]!, g.count) }));
  if (rest.length === 0) return { pattern: 'per-expert', ...main! };
  return { pattern: 'per-expert', numExperts: main!.numExperts, projections: main!.projections, extraGroups: rest.map((g) => ({ ...g, group: g.group ?? 'text' })) };
}

const scaleName = (n: string): string => `${n}_scale_inv`;
const biasName = (n: string): string => n.replace(/\.weight$/, '.bias');

/** FP8 weights are only meaningful with their block scales; anything else would be silently wrong. */
function encodingOf(ctx: PatternContext, first: TensorEntry, shape: readonly [number, number]): WeightEncoding {
  if (!first.dtype.startsWith('F8_')) return { kind: 'plain', dtype: first.dtype };
  const s = ctx.ckpt.tensors.get(scaleName(first.name));
  if (!s) {
    const other = ['weight_scale', 'scale'].map((x) => first.name.replace(/weight$/, x)).find((n) => ctx.ckpt.tensors.has(n));
    throw new MoeInspectorError('dtype', `${first.dtype} expert weight without a "${scaleName(first.name)}" block-scale tensor${other ? ` (found "${other}": per-tensor/per-channel FP8 scaling is not supported)` : ''}`, where(first));
  }
  const [b0, b1] = ctx.fp8Block;
  const want = [Math.ceil(shape[0] / b0), Math.ceil(shape[1] / b1)];
  if (s.shape.length !== 2 || s.shape[0] !== want[0] || s.shape[1] !== want[1]) {
    throw new MoeInspectorError('layout', `block scales have shape [${s.shape.join(', ')}], expected [${want.join(', ')}] for a [${shape.join(', ')}] weight in ${b0}x${b1} blocks (quantization_config.weight_block_size)`, where(s));
  }
  return { kind: 'fp8-block', dtype: first.dtype, scaleDtype: s.dtype, block: ctx.fp8Block };
}

function checkLike(t: TensorEntry, first: TensorEntry, shape: readonly [number, number], expert: number, firstExpert: number): void {
  if (t.shape.length !== 2 || t.shape[0] !== shape[0] || t.shape[1] !== shape[1] || t.dtype !== first.dtype) {
    throw new MoeInspectorError('layout', `expert ${expert} is ${t.dtype} [${t.shape.join(', ')}], expert ${firstExpert} is ${first.dtype} [${shape.join(', ')}]`, where(t));
  }
}

/** Reads expert j from names.get(j); `offset` = the tensors' own number of expert 0, for messages. */
function source(ctx: PatternContext, names: Map<number, string>, offset = 0): ProjSource {
  const first = tensorOf(ctx.ckpt, names.get(0)!);
  if (first.shape.length !== 2) throw new MoeInspectorError('layout', `expert weight has shape [${first.shape.join(', ')}], expected 2-D [out, in]`, where(first));
  const shape: [number, number] = [first.shape[0]!, first.shape[1]!];
  // Headers only: every expert of the group has expert 0's shape and dtype (a count that puts a vision
  // expert among the text ones, or a damaged file, is refused when the model is opened, not mid-analysis).
  for (const [j, n] of names) checkLike(tensorOf(ctx.ckpt, n), first, shape, j + offset, offset);
  const encoding = encodingOf(ctx, first, shape);
  const fp8 = encoding.kind === 'fp8-block';
  const hasBias = ctx.ckpt.tensors.has(biasName(first.name));
  const tensors = [...names.values()].flatMap((n) => [n, ...(fp8 ? [scaleName(n)] : []), ...(hasBias ? [biasName(n)] : [])]);
  const weightOf = (j: number): TensorEntry => {
    const t = tensorOf(ctx.ckpt, names.get(j)!);
    checkLike(t, first, shape, j + offset, offset);
    return t;
  };
  const scalesOf = (t: TensorEntry): TensorEntry => {
    const s = tensorOf(ctx.ckpt, scaleName(t.name));
    const [b0, b1] = ctx.fp8Block;
    const want = [Math.ceil(shape[0] / b0), Math.ceil(shape[1] / b1)];
    if (s.shape.length !== 2 || s.shape[0] !== want[0] || s.shape[1] !== want[1]) {
      throw new MoeInspectorError('layout', `block scales have shape [${s.shape.join(', ')}], expected [${want.join(', ')}] for a [${shape.join(', ')}] weight in ${b0}x${b1} blocks`, where(s));
    }
    return s;
  };
  return {
    layout: { shape, encoding, tensors, hasBias },
    rowBlocks: {
      rows: shape[0],
      cols: shape[1],
      transposed: false,
      async read(j, firstRow, count) {
        const t = weightOf(j);
        const w = await decodeRows(ctx.ckpt, t, 0, 1, shape[0], firstRow, count);
        if (fp8) {
          // The scale rows covering these weight rows: one per b0 rows.
          const s = scalesOf(t);
          const r0 = Math.floor(firstRow / ctx.fp8Block[0]);
          const r1 = Math.floor((firstRow + count - 1) / ctx.fp8Block[0]);
          applyRowBlockScales(w, firstRow, count, shape[1], await decodeRows(ctx.ckpt, s, 0, 1, s.shape[0]!, r0, r1 - r0 + 1), ctx.fp8Block);
        }
        return w;
      },
      async prefetch(j) {
        const t = weightOf(j);
        await ctx.ckpt.readTensorBytes(t.name);
        if (fp8) await ctx.ckpt.readTensorBytes(scaleName(t.name));
      },
    },
    async read(j) {
      const t = weightOf(j);
      const w = await decodeSlice(ctx.ckpt, t, 0, 1);
      if (fp8) {
        const s = tensorOf(ctx.ckpt, scaleName(t.name));
        applyBlockScales(w, shape[0], shape[1], await decodeSlice(ctx.ckpt, s, 0, 1), ctx.fp8Block, where(s));
      }
      assertFinite(w, t, j + offset);
      return w;
    },
    async readBias(j) {
      if (!hasBias) return null;
      const t = tensorOf(ctx.ckpt, biasName(names.get(j)!));
      if (t.shape.length !== 1 || t.shape[0] !== shape[0]) throw new MoeInspectorError('layout', `expert bias has shape [${t.shape.join(', ')}], expected [${shape[0]}]`, where(t));
      const b = await decodeSlice(ctx.ckpt, t, 0, 1);
      assertFinite(b, t, j + offset);
      return b;
    },
  };
}

export const perExpertPattern: LayoutPattern = { name: 'per-expert', match };
