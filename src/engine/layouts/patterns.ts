/**
 * Expert tensor layouts, recognised from tensor names (the config tells which family, the names
 * tell where the weights are). Each pattern turns one layer's tensors into three ProjSources that
 * read expert j in linear [out, in] orientation, exactly, biases kept apart.
 *
 *  per-expert   ...experts.{j}.{gate_proj|w1, up_proj|w3, down_proj|w2}.weight   (mixtral, minimax,
 *               phimoe, olmoe, qwen2/3_moe, deepseek_v2/v3, kimi_k2, glm4_moe, ernie4_5_moe, jamba);
 *               FP8 releases add ...weight_scale_inv (128x128 block scales).
 *  gpt-oss MXFP4 ...experts.gate_up_proj_blocks [E,2I,H/32,16] + _scales + _bias, rows INTERLEAVED
 *               (even = gate, odd = up); down_proj_blocks [E,H,I/32,16].
 *  fused        ...experts.gate_up_proj + ...experts.down_proj, no ".weight": gpt_oss bf16 and llama4
 *               store [E,H,2I] input-major (gpt_oss interleaved columns, llama4 halves); newer
 *               checkpoints (Qwen3.5-MoE style) [E,2I,H] output-major, halves.
 *  input_linear ...input_linear.weight [E,2I,H] halves (gate first) + output_linear.weight [E,H,I] (granitemoe, jetmoe).
 *  dbrx         ffn.experts.mlp.{w1,v1,w2} each [E*I,H]; expert j = rows j*I..(j+1)*I; w2 is stored transposed.
 */
import { MoeInspectorError } from '../errors';
import { decodeToFloat32 } from '../formats/decode';
import { decodeMxfp4 } from '../formats/mxfp4';
import { applyBlockScales } from '../formats/fp8-block';
import type { Checkpoint, TensorEntry } from '../model/checkpoint';
import type { Projection, ProjectionLayout, WeightEncoding } from './types';
import { assertFinite, decodeSlice, pickElems, pickRows, readSliceBytes, tensorOf, transpose, where } from './tensor-read';

export interface ProjSource {
  readonly layout: ProjectionLayout;
  read(j: number): Promise<Float32Array>;
  readBias(j: number): Promise<Float32Array | null>;
}

export interface LayerTensors {
  /** Tensor names of one decoder layer, without the "...layers.N." prefix -> full name. */
  readonly rest: ReadonlyMap<string, string>;
}

export interface PatternMatch {
  readonly pattern: string;
  readonly numExperts: number;
  readonly projections: Readonly<Record<Projection, ProjSource>>;
}

export interface PatternContext {
  readonly ckpt: Checkpoint;
  readonly family: string;
  readonly hidden: number | null;
  readonly fp8Block: readonly [number, number];
}

type Split = 'interleaved' | 'halves';

const plain = (t: TensorEntry): WeightEncoding => ({ kind: 'plain', dtype: t.dtype });

// ---------------------------------------------------------------------------------------------
// per-expert tensors

const PER_EXPERT = /^(.+\.experts)\.(\d+)\.([A-Za-z0-9_]+)\.weight$/;
const PROJ_NAMES: Readonly<Record<Projection, readonly string[]>> = {
  gate: ['gate_proj', 'w1'],
  up: ['up_proj', 'w3'],
  down: ['down_proj', 'w2'],
};

export function matchPerExpert(layer: LayerTensors, ctx: PatternContext): PatternMatch | null {
  const found = new Map<string, Map<number, string>>(); // "block|projName" -> expert -> full name
  for (const [rest, full] of layer.rest) {
    const m = PER_EXPERT.exec(rest);
    if (!m) continue;
    const key = `${m[1]}|${m[3]}`;
    const byExpert = found.get(key) ?? new Map<number, string>();
    byExpert.set(Number(m[2]), full);
    found.set(key, byExpert);
  }
  if (found.size === 0) return null;
  const blocks = new Set([...found.keys()].map((k) => k.split('|')[0]));
  if (blocks.size !== 1) throw new MoeInspectorError('layout', `expert tensors under several blocks (${[...blocks].join(', ')})`, { file: ctx.ckpt.source });
  const block = [...blocks][0]!;
  const byProj = {} as Record<Projection, Map<number, string>>;
  for (const p of ['gate', 'up', 'down'] as const) {
    const name = PROJ_NAMES[p].find((n) => found.has(`${block}|${n}`));
    if (!name) throw new MoeInspectorError('layout', `no ${p} projection among the experts of ${block} (looked for ${PROJ_NAMES[p].join(', ')})`, { file: ctx.ckpt.source });
    byProj[p] = found.get(`${block}|${name}`)!;
  }
  const numExperts = byProj.gate.size;
  for (const p of ['gate', 'up', 'down'] as const) {
    for (let j = 0; j < numExperts; j++) {
      if (!byProj[p].has(j)) throw new MoeInspectorError('layout', `expert ${j} has no ${p} weight (experts are numbered 0..${numExperts - 1})`, { file: ctx.ckpt.source, tensor: `${block}.${j}` });
    }
  }
  return {
    pattern: 'per-expert',
    numExperts,
    projections: {
      gate: perExpertSource(ctx, byProj.gate),
      up: perExpertSource(ctx, byProj.up),
      down: perExpertSource(ctx, byProj.down),
    },
  };
}

function perExpertSource(ctx: PatternContext, names: Map<number, string>): ProjSource {
  const first = tensorOf(ctx.ckpt, names.get(0)!);
  if (first.shape.length !== 2) throw new MoeInspectorError('layout', `expert weight has shape [${first.shape.join(', ')}], expected 2-D [out, in]`, where(first));
  const shape: [number, number] = [first.shape[0]!, first.shape[1]!];
  const scaleName = (n: string): string => `${n}_scale_inv`;
  const fp8 = first.dtype.startsWith('F8_') && ctx.ckpt.tensors.has(scaleName(first.name));
  const biasName = (n: string): string => n.replace(/\.weight$/, '.bias');
  const hasBias = ctx.ckpt.tensors.has(biasName(first.name));
  const encoding: WeightEncoding = fp8
    ? { kind: 'fp8-block', dtype: first.dtype, scaleDtype: tensorOf(ctx.ckpt, scaleName(first.name)).dtype, block: ctx.fp8Block }
    : plain(first);
  const tensors = [...names.values()].flatMap((n) => [n, ...(fp8 ? [scaleName(n)] : []), ...(hasBias ? [biasName(n)] : [])]);
  return {
    layout: { shape, encoding, tensors, hasBias },
    async read(j) {
      const t = tensorOf(ctx.ckpt, names.get(j)!);
      if (t.shape[0] !== shape[0] || t.shape[1] !== shape[1]) throw new MoeInspectorError('layout', `expert ${j} has shape [${t.shape.join(', ')}], expert 0 has [${shape.join(', ')}]`, where(t));
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
      return decodeSlice(ctx.ckpt, t, 0, 1);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// fused [E, ...] tensors

/** A fused gate+up tensor (one slice per expert) seen as two projections. */
interface FusedSpec {
  readonly gateUp: TensorEntry;
  readonly down: TensorEntry;
  readonly numExperts: number;
  /** Decodes expert j of a fused tensor to [out, in] (before any gate/up split). */
  readonly decode: (t: TensorEntry, j: number) => Promise<Float32Array>;
  readonly gateUpShape: readonly [number, number]; // [2I, H] as decoded
  readonly downShape: readonly [number, number]; // [H, I] as decoded
  readonly split: Split;
  readonly encoding: WeightEncoding;
  readonly gateUpTensors: readonly string[];
  readonly downTensors: readonly string[];
  readonly gateUpBias: TensorEntry | null;
  readonly downBias: TensorEntry | null;
}

function fusedSources(ctx: PatternContext, f: FusedSpec): Record<Projection, ProjSource> {
  const [rows2, cols] = f.gateUpShape;
  if (rows2 % 2 !== 0) throw new MoeInspectorError('layout', `fused gate/up has ${rows2} output rows, not an even number`, where(f.gateUp));
  const half = (p: 'gate' | 'up'): 'even' | 'odd' | 'first-half' | 'second-half' =>
    f.split === 'interleaved' ? (p === 'gate' ? 'even' : 'odd') : p === 'gate' ? 'first-half' : 'second-half';
  const gu = (p: 'gate' | 'up'): ProjSource => ({
    layout: { shape: [rows2 / 2, cols], encoding: f.encoding, tensors: [...f.gateUpTensors, ...(f.gateUpBias ? [f.gateUpBias.name] : [])], hasBias: f.gateUpBias !== null },
    async read(j) {
      const w = pickRows(await f.decode(f.gateUp, j), rows2, cols, half(p));
      assertFinite(w, f.gateUp, j);
      return w;
    },
    async readBias(j) {
      return f.gateUpBias ? pickElems(await decodeSlice(ctx.ckpt, f.gateUpBias, j, f.numExperts), half(p)) : null;
    },
  });
  return {
    gate: gu('gate'),
    up: gu('up'),
    down: {
      layout: { shape: f.downShape, encoding: f.encoding, tensors: [...f.downTensors, ...(f.downBias ? [f.downBias.name] : [])], hasBias: f.downBias !== null },
      async read(j) {
        const w = await f.decode(f.down, j);
        assertFinite(w, f.down, j);
        return w;
      },
      async readBias(j) {
        return f.downBias ? decodeSlice(ctx.ckpt, f.downBias, j, f.numExperts) : null;
      },
    },
  };
}

function optTensor(ctx: PatternContext, name: string | undefined): TensorEntry | null {
  return name === undefined ? null : (ctx.ckpt.tensors.get(name) ?? null);
}

export function matchGptOssMxfp4(layer: LayerTensors, ctx: PatternContext): PatternMatch | null {
  const key = [...layer.rest.keys()].find((k) => k.endsWith('experts.gate_up_proj_blocks'));
  if (!key) return null;
  const base = key.slice(0, -'gate_up_proj_blocks'.length);
  const need = (s: string): TensorEntry => tensorOf(ctx.ckpt, layer.rest.get(base + s) ?? `${base}${s}`);
  const gub = need('gate_up_proj_blocks');
  const gus = need('gate_up_proj_scales');
  const db = need('down_proj_blocks');
  const ds = need('down_proj_scales');
  for (const t of [gub, db]) {
    if (t.shape.length !== 4 || t.shape[3] !== 16 || t.dtype !== 'U8') throw new MoeInspectorError('layout', `MXFP4 blocks must be U8 [E, rows, groups, 16], got ${t.dtype} [${t.shape.join(', ')}]`, where(t));
  }
  const [E, R2, G] = gub.shape as [number, number, number];
  const [, H, Gd] = db.shape as [number, number, number];
  const scalesOf = new Map([[gub.name, gus], [db.name, ds]]);
  const decode = async (t: TensorEntry, j: number): Promise<Float32Array> => {
    const s = scalesOf.get(t.name)!;
    const [, rows, groups] = t.shape as [number, number, number];
    if (s.shape[0] !== E || s.shape[1] !== rows || s.shape[2] !== groups) throw new MoeInspectorError('layout', `MXFP4 scales [${s.shape.join(', ')}] do not match blocks [${t.shape.join(', ')}]`, where(s));
    return decodeMxfp4(await readSliceBytes(ctx.ckpt, t, j, E), await readSliceBytes(ctx.ckpt, s, j, E), rows, groups, where(t));
  };
  return {
    pattern: 'gpt-oss-mxfp4',
    numExperts: E,
    projections: fusedSources(ctx, {
      gateUp: gub,
      down: db,
      numExperts: E,
      decode,
      gateUpShape: [R2, G * 32],
      downShape: [H, Gd * 32],
      split: 'interleaved',
      encoding: { kind: 'mxfp4' },
      gateUpTensors: [gub.name, gus.name],
      downTensors: [db.name, ds.name],
      gateUpBias: optTensor(ctx, layer.rest.get(base + 'gate_up_proj_bias')),
      downBias: optTensor(ctx, layer.rest.get(base + 'down_proj_bias')),
    }),
  };
}

export function matchFusedExperts(layer: LayerTensors, ctx: PatternContext): PatternMatch | null {
  const key = [...layer.rest.keys()].find((k) => /experts\.gate_up_proj$/.test(k));
  if (!key) return null;
  const base = key.slice(0, -'gate_up_proj'.length);
  const gu = tensorOf(ctx.ckpt, layer.rest.get(key)!);
  const dn = tensorOf(ctx.ckpt, layer.rest.get(base + 'down_proj') ?? `${base}down_proj`);
  if (gu.shape.length !== 3 || dn.shape.length !== 3) throw new MoeInspectorError('layout', `fused expert tensors must be 3-D [E, ., .], got [${gu.shape.join(', ')}] and [${dn.shape.join(', ')}]`, where(gu));
  const [E, a, b] = gu.shape as [number, number, number];
  // gpt_oss (bf16) and llama4 store input-major [E, H, 2I]; newer checkpoints output-major [E, 2I, H].
  const inputMajor = ctx.family === 'gpt_oss' || ctx.family === 'llama4' || (ctx.hidden !== null && a === ctx.hidden && b !== ctx.hidden);
  const split: Split = ctx.family === 'gpt_oss' ? 'interleaved' : 'halves';
  const decode = async (t: TensorEntry, j: number): Promise<Float32Array> => {
    const raw = await decodeSlice(ctx.ckpt, t, j, E);
    const [, r, c] = t.shape as [number, number, number];
    return inputMajor ? transpose(raw, r, c) : raw;
  };
  const [, da, db] = dn.shape as [number, number, number];
  return {
    pattern: inputMajor ? 'fused-input-major' : 'fused-output-major',
    numExperts: E,
    projections: fusedSources(ctx, {
      gateUp: gu,
      down: dn,
      numExperts: E,
      decode,
      gateUpShape: inputMajor ? [b, a] : [a, b],
      downShape: inputMajor ? [db, da] : [da, db],
      split,
      encoding: plain(gu),
      gateUpTensors: [gu.name],
      downTensors: [dn.name],
      gateUpBias: optTensor(ctx, layer.rest.get(base + 'gate_up_proj_bias')),
      downBias: optTensor(ctx, layer.rest.get(base + 'down_proj_bias')),
    }),
  };
}

export function matchInputLinear(layer: LayerTensors, ctx: PatternContext): PatternMatch | null {
  const key = [...layer.rest.keys()].find((k) => k.endsWith('input_linear.weight'));
  if (!key) return null;
  const base = key.slice(0, -'input_linear.weight'.length);
  const gu = tensorOf(ctx.ckpt, layer.rest.get(key)!);
  const dn = tensorOf(ctx.ckpt, layer.rest.get(base + 'output_linear.weight') ?? `${base}output_linear.weight`);
  const [E, r2, h] = gu.shape as [number, number, number];
  return {
    pattern: 'input-linear',
    numExperts: E,
    projections: fusedSources(ctx, {
      gateUp: gu,
      down: dn,
      numExperts: E,
      decode: (t, j) => decodeSlice(ctx.ckpt, t, j, E),
      gateUpShape: [r2, h],
      downShape: [dn.shape[1]!, dn.shape[2]!],
      split: 'halves',
      encoding: plain(gu),
      gateUpTensors: [gu.name],
      downTensors: [dn.name],
      gateUpBias: null,
      downBias: null,
    }),
  };
}

export function matchDbrx(layer: LayerTensors, ctx: PatternContext, numExperts: number | null): PatternMatch | null {
  const key = [...layer.rest.keys()].find((k) => k.endsWith('experts.mlp.w1'));
  if (!key) return null;
  if (numExperts === null) throw new MoeInspectorError('layout', 'dbrx layout needs ffn_config.moe_num_experts in config.json to split the experts', { file: ctx.ckpt.source });
  const base = key.slice(0, -'w1'.length);
  const t = (s: string): TensorEntry => tensorOf(ctx.ckpt, layer.rest.get(base + s) ?? `${base}${s}`);
  const [w1, v1, w2] = [t('w1'), t('v1'), t('w2')];
  const E = numExperts;
  const I = w1.shape[0]! / E;
  const H = w1.shape[1]!;
  if (!Number.isInteger(I)) throw new MoeInspectorError('layout', `${w1.shape[0]} rows do not split into ${E} experts`, where(w1));
  const src = (tensor: TensorEntry, transposed: boolean): ProjSource => ({
    layout: { shape: transposed ? [H, I] : [I, H], encoding: plain(tensor), tensors: [tensor.name], hasBias: false },
    async read(j) {
      const raw = await decodeSlice(ctx.ckpt, tensor, j, E);
      const w = transposed ? transpose(raw, I, H) : raw; // w2 is stored [I, H]: out = h @ w2
      assertFinite(w, tensor, j);
      return w;
    },
    async readBias() {
      return null;
    },
  });
  return { pattern: 'dbrx', numExperts: E, projections: { gate: src(w1, false), up: src(v1, false), down: src(w2, true) } };
}

/** Decodes a small tensor completely (router weights etc.); for reports and overlays. */
export async function decodeWhole(ckpt: Checkpoint, name: string): Promise<Float32Array> {
  const t = tensorOf(ckpt, name);
  return decodeToFloat32(await ckpt.readTensorBytes(name), t.dtype, where(t));
}
