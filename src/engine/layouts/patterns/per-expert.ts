/**
 * One tensor per expert and projection: `...experts.{j}.{gate_proj|w1, up_proj|w3, down_proj|w2}.weight`,
 * each [out, in] (nn.Linear). Used by mixtral, minimax, phimoe (w1 = gate, w3 = up, w2 = down:
 * transformers MixtralBlockSparseTop2MLP), olmoe, qwen2_moe, qwen3_moe, deepseek_v2/v3, kimi_k2,
 * glm4_moe, ernie4_5_moe, jamba (gate_proj/up_proj/down_proj). DeepSeek-V3-style FP8 releases add
 * `...weight_scale_inv` [ceil(out/b0), ceil(in/b1)] with W = q * s per tile (DeepSeek-V3
 * README_WEIGHTS.md). Optional `.bias` siblings are read apart, never folded in.
 */
import { MoeInspectorError } from '../../errors';
import type { TensorEntry } from '../../model/checkpoint';
import { applyBlockScales } from '../../formats/fp8-block';
import type { Projection, WeightEncoding } from '../types';
import { assertFinite, decodeSlice, tensorOf, where } from '../tensor-read';
import { applyRowBlockScales, decodeRows } from '../row-blocks';
import { ATTENTION, type LayerTensors, type LayoutPattern, type PatternContext, type PatternMatch, type ProjSource } from './types';

const PER_EXPERT = /^(.+\.experts)\.(\d+)\.([A-Za-z0-9_]+)\.weight$/;
const PROJ_NAMES: Readonly<Record<Projection, readonly string[]>> = {
  gate: ['gate_proj', 'w1'],
  up: ['up_proj', 'w3'],
  down: ['down_proj', 'w2'],
};

/** "block|projName" -> expert -> full tensor name, for the layer's non-attention expert tensors. */
function collect(layer: LayerTensors): Map<string, Map<number, string>> {
  const found = new Map<string, Map<number, string>>();
  for (const [rest, full] of layer.rest) {
    const m = PER_EXPERT.exec(rest);
    if (!m || ATTENTION.test(rest)) continue;
    const key = `${m[1]}|${m[3]}`;
    const byExpert = found.get(key) ?? new Map<number, string>();
    byExpert.set(Number(m[2]), full);
    found.set(key, byExpert);
  }
  return found;
}

function match(layer: LayerTensors, ctx: PatternContext): PatternMatch | null {
  const found = collect(layer);
  if (found.size === 0) return null;
  const blocks = new Set([...found.keys()].map((k) => k.split('|')[0]!));
  if (blocks.size !== 1) throw new MoeInspectorError('layout', `expert tensors under several blocks (${[...blocks].join(', ')})`, { file: ctx.ckpt.source });
  const block = [...blocks][0]!;
  const byProj = {} as Record<Projection, Map<number, string>>;
  const projName = {} as Record<Projection, string>;
  for (const p of ['gate', 'up', 'down'] as const) {
    const name = PROJ_NAMES[p].find((n) => found.has(`${block}|${n}`));
    if (!name) {
      throw new MoeInspectorError('layout', `no ${p} projection among the experts (looked for ${PROJ_NAMES[p].map((n) => `${block}.N.${n}.weight`).join(', ')}; found ${[...found.keys()].map((k) => k.split('|')[1]).join(', ')})`, {
        file: ctx.ckpt.source,
        tensor: `${layer.prefix}${block}.0`,
      });
    }
    byProj[p] = found.get(`${block}|${name}`)!;
    projName[p] = name;
  }
  const numExperts = Math.max(...(['gate', 'up', 'down'] as const).map((p) => Math.max(...byProj[p].keys()) + 1));
  for (const p of ['gate', 'up', 'down'] as const) {
    for (let j = 0; j < numExperts; j++) {
      if (!byProj[p].has(j)) throw new MoeInspectorError('layout', `expert ${j} of ${numExperts} has no ${p} weight`, { file: ctx.ckpt.source, tensor: `${layer.prefix}${block}.${j}.${projName[p]}.weight` });
    }
  }
  return {
    pattern: 'per-expert',
    numExperts,
    projections: { gate: source(ctx, byProj.gate), up: source(ctx, byProj.up), down: source(ctx, byProj.down) },
  };
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

function source(ctx: PatternContext, names: Map<number, string>): ProjSource {
  const first = tensorOf(ctx.ckpt, names.get(0)!);
  if (first.shape.length !== 2) throw new MoeInspectorError('layout', `expert weight has shape [${first.shape.join(', ')}], expected 2-D [out, in]`, where(first));
  const shape: [number, number] = [first.shape[0]!, first.shape[1]!];
  const encoding = encodingOf(ctx, first, shape);
  const fp8 = encoding.kind === 'fp8-block';
  const hasBias = ctx.ckpt.tensors.has(biasName(first.name));
  const tensors = [...names.values()].flatMap((n) => [n, ...(fp8 ? [scaleName(n)] : []), ...(hasBias ? [biasName(n)] : [])]);
  const weightOf = (j: number): TensorEntry => {
    const t = tensorOf(ctx.ckpt, names.get(j)!);
    if (t.shape.length !== 2 || t.shape[0] !== shape[0] || t.shape[1] !== shape[1] || t.dtype !== first.dtype) {
      throw new MoeInspectorError('layout', `expert ${j} is ${t.dtype} [${t.shape.join(', ')}], expert 0 is ${first.dtype} [${shape.join(', ')}]`, where(t));
    }
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
      assertFinite(w, t, j);
      return w;
    },
    async readBias(j) {
      if (!hasBias) return null;
      const t = tensorOf(ctx.ckpt, biasName(names.get(j)!));
      if (t.shape.length !== 1 || t.shape[0] !== shape[0]) throw new MoeInspectorError('layout', `expert bias has shape [${t.shape.join(', ')}], expected [${shape[0]}]`, where(t));
      const b = await decodeSlice(ctx.ckpt, t, 0, 1);
      assertFinite(b, t, j);
      return b;
    },
  };
}

export const perExpertPattern: LayoutPattern = { name: 'per-expert', match };
