/**
 * The synthetic checkpoint generator: writes any supported family layout in any supported dtype,
 * with experts of a chosen structure (synth/experts.ts), streaming expert by expert, and records the
 * ground truth it used in synth-ground-truth.json.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { MoeInspectorError } from '../errors';
import type { Dtype } from '../formats/dtype';
import { PROJECTIONS, type Projection } from '../layouts/types';
import { encodeMatrix, encodePlain, type EncodedMatrix, type SynthDtype } from './encode-matrix';
import { energyMargin95, energyRanks, expertKinds, ExpertFactory, upcycledCount, type ExpertKind, type ExpertSource, type RankThreshold, type Structure } from './experts';
import { RecipeLayer, validateRecipe, type RecipeTruth } from './recipes';
import { writeDenseParent } from './dense-parent';
import { FAMILIES, type FamilyDef, type SynthFamily } from './families';
import { fillGaussian, hashKey } from './random';
import { AUX_DTYPE, onesPlan, randomPlan, writeAtomic } from './plans';
import { byteLengthOf, writeSafetensors, type TensorPlan } from './safetensors-writer';

export interface SynthSpec {
  readonly family: SynthFamily;
  readonly dtype: SynthDtype;
  readonly numLayers: number;
  readonly numExperts: number;
  readonly hidden: number;
  readonly intermediate: number;
  /** One structure for every MoE layer, or one per MoE layer in order. */
  readonly structure: Structure | readonly Structure[];
  readonly seed?: number;
  /** Split into model-0000k-of-0000n.safetensors shards of at most this many bytes (plus an index). */
  readonly maxShardBytes?: number;
  /** Poison: write `count` NaNs into one expert's weight (plain dtypes only), for error tests. */
  readonly injectNaN?: { readonly layer: number; readonly projection: Projection; readonly expert: number; readonly count: number };
  /** Skip the small non-expert tensors (attention, norms, embeddings): for benchmarks of expert reading. */
  readonly expertsOnly?: boolean;
}

export interface GroundTruth {
  readonly spec: SynthSpec;
  readonly moeLayers: number[];
  readonly layers: {
    readonly layer: number;
    readonly structure: Structure;
    readonly upcycledExperts: number;
    /** The constructed singular values of the delta of every expert whose kind is 'delta' (the same s for all). */
    readonly singularValues: Partial<Record<Projection, number[]>>;
    /** Per expert: 'delta' (base + constructed delta), 'base-only' (unpaired, no delta), 'native'. */
    readonly expertKinds: ExpertKind[];
    /** 90/95/99% energy ranks of the constructed delta (before noise and quantization). */
    readonly expectedRank: Partial<Record<Projection, Record<RankThreshold, number>>>;
    /** Distance of the 95% cumulative energy from its threshold at k95 and k95-1 (noise tolerance). */
    readonly energyMargin95: Partial<Record<Projection, number>>;
    /**
     * Whether W_j - mean_k W_k (what the analysis decomposes) equals the constructed delta up to noise
     * and rounding: true when every expert is upcycled with paired deltas (they sum to zero); false
     * for partial layers (the mean includes native experts: a full-rank shift) and native layers.
     */
    readonly deltaFromMeanIsConstructed: boolean;
    /** Recipe layers: neuron maps, inherited shares, expected shared-neuron shares, parent coverage. */
    readonly recipe?: RecipeTruth;
  }[];
  readonly files: string[];
  readonly totalBytes: number;
  /** Where the dense parent was written (recipe layers' parent FFNs at the same layer indices), if it was. */
  readonly parentDir?: string;
}

export interface GenerateOptions {
  /** Write the dense parent (a llama-layout dense model of the same hidden size) into this folder. */
  readonly parentDir?: string;
}

/** Builds, on demand, the matrices of one spec: the single source of truth for writing and for tests. */
export class SyntheticModel {
  readonly def: FamilyDef;
  readonly moeLayers: number[];
  private readonly factories = new Map<string, ExpertSource>();
  private readonly recipeLayers = new Map<number, RecipeLayer>();
  private readonly seed: number;

  constructor(readonly spec: SynthSpec) {
    this.def = FAMILIES[spec.family];
    this.seed = spec.seed ?? 1234;
    const total = spec.numLayers + (this.def.extraMoeLayers ?? 0);
    this.moeLayers = Array.from({ length: total }, (_, l) => l).filter((l) => l >= spec.numLayers || this.def.isMoeLayer(l, spec));
  }

  structureOf(layer: number): Structure {
    const s = this.spec.structure;
    if (!Array.isArray(s)) return s as Structure;
    const i = this.moeLayers.indexOf(layer);
    return (s as readonly Structure[])[Math.min(i, s.length - 1)]!;
  }

  shapeOf(p: Projection): [number, number] {
    return p === 'down' ? [this.spec.hidden, this.spec.intermediate] : [this.spec.intermediate, this.spec.hidden];
  }

  factory(layer: number, p: Projection): ExpertSource {
    const key = `L${layer}.${p}`;
    let f = this.factories.get(key);
    // Files are written layer by layer: keeping only one layer's bases and factors bounds memory
    // for many-layer, GPT-OSS-sized specs (out-of-order reads just recompute, deterministically).
    if (!f && [...this.factories.keys()].some((k) => !k.startsWith(`L${layer}.`))) this.factories.clear();
    if (!f) {
      const [out, inp] = this.shapeOf(p);
      const rl = this.recipeLayer(layer);
      f = rl ? { expert: (j) => rl.expert(p, j), singularValues: [] } : new ExpertFactory(this.seed, key, out, inp, this.structureOf(layer), this.spec.numExperts, p);
      this.factories.set(key, f);
    }
    return f;
  }

  /** The recipe builder of a layer (its dense parent FFN and neuron maps), or null for the other structures. */
  recipeLayer(layer: number): RecipeLayer | null {
    const s = this.structureOf(layer);
    if (s.kind !== 'recipe') return null;
    let rl = this.recipeLayers.get(layer);
    if (!rl) {
      this.recipeLayers.clear(); // one layer's parent at a time, like the factories
      rl = new RecipeLayer(s.recipe, this.seed, `L${layer}`, this.spec.numExperts, this.spec.hidden, this.spec.intermediate);
      this.recipeLayers.set(layer, rl);
    }
    return rl;
  }

  /** Expert j of a projection as stored: the bytes and the exact values a correct reader returns. */
  encodedExpert(layer: number, p: Projection, j: number): EncodedMatrix {
    const [out, inp] = this.shapeOf(p);
    const w = this.factory(layer, p).expert(j);
    const nan = this.spec.injectNaN;
    const e = encodeMatrix(w, out, inp, this.spec.dtype);
    if (nan && nan.layer === layer && nan.projection === p && nan.expert === j) poison(e, nan.count);
    return e;
  }

  /** Per-expert bias (gpt_oss): N(0, 1) per output row, large enough that folding it into W would change every metric. */
  bias(layer: number, p: Projection, j: number): Float32Array {
    const b = new Float32Array(this.shapeOf(p)[0]);
    fillGaussian(b, hashKey(this.seed, `L${layer}.${p}.bias${j}`));
    return encodePlain(b, AUX_DTYPE(this.spec.dtype)).values;
  }
}

function poison(e: EncodedMatrix, count: number): void {
  if (e.dtype !== 'F32' && e.dtype !== 'BF16' && e.dtype !== 'F16') throw new Error('injectNaN needs a plain float dtype');
  const nanBits = e.dtype === 'F32' ? [0x00, 0x00, 0xc0, 0x7f] : e.dtype === 'BF16' ? [0xc0, 0x7f] : [0x00, 0x7e];
  for (let k = 0; k < count; k++) {
    const at = (k * 7919) % e.values.length;
    e.values[at] = Number.NaN;
    e.bytes.set(nanBits, at * nanBits.length);
  }
}

// ----------------------------------------------------------------------------------------------
// tensor plans

/** One tensor holding a slice per expert, each slice produced by `slice(j)`. */
function perExpertSlices(name: string, dtype: Dtype, shape: number[], E: number, slice: (j: number) => Uint8Array): TensorPlan {
  return {
    name,
    dtype,
    shape,
    async produce(sink) {
      for (let j = 0; j < E; j++) await sink(slice(j));
    },
  };
}

function transposeF32(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = a[i * cols + j]!;
  return out;
}

function stackRows(a: Float32Array, b: Float32Array, cols: number, interleave: boolean): Float32Array {
  if (!interleave) {
    const out = new Float32Array(a.length + b.length);
    out.set(a);
    out.set(b, a.length);
    return out;
  }
  const rows = a.length / cols;
  const out = new Float32Array(a.length * 2);
  for (let r = 0; r < rows; r++) {
    out.set(a.subarray(r * cols, (r + 1) * cols), 2 * r * cols);
    out.set(b.subarray(r * cols, (r + 1) * cols), (2 * r + 1) * cols);
  }
  return out;
}

/** A fused tensor: per expert, the f32 matrix `make(j)` (already in storage orientation) encoded to a plain dtype. */
function fusedPlain(m: SyntheticModel, name: string, shape: number[], make: (j: number) => Float32Array): TensorPlan {
  const dtype = AUX_DTYPE(m.spec.dtype);
  return perExpertSlices(name, dtype, shape, m.spec.numExperts, (j) => encodePlain(make(j), dtype).bytes);
}

function expertPlans(m: SyntheticModel, layer: number): TensorPlan[] {
  const { def, spec } = m;
  const pre = `${def.layerPrefix}${layer}.`;
  const E = spec.numExperts;
  const H = spec.hidden;
  const I = spec.intermediate;
  const values = (p: Projection, j: number): Float32Array => m.encodedExpert(layer, p, j).values;
  const st = def.storage;
  switch (st.kind) {
    case 'per-expert': {
      const plans: TensorPlan[] = [];
      for (let j = 0; j < E; j++) {
        for (const p of PROJECTIONS) {
          const name = `${pre}${st.block}.${j}.${st.names[p]}.weight`;
          const shape = m.shapeOf(p);
          let cached: EncodedMatrix | null = null;
          const enc = (): EncodedMatrix => (cached ??= m.encodedExpert(layer, p, j));
          const dtype: Dtype = spec.dtype === 'FP8' ? 'F8_E4M3' : (spec.dtype as Dtype);
          plans.push({ name, dtype, shape, produce: async (sink) => sink(enc().bytes) });
          if (spec.dtype === 'FP8') {
            const sshape = [Math.ceil(shape[0] / 128), Math.ceil(shape[1] / 128)];
            plans.push({ name: `${name}_scale_inv`, dtype: 'F32', shape: sshape, produce: async (sink) => { await sink(enc().scales!.bytes); cached = null; } });
          }
        }
      }
      return plans;
    }
    case 'gpt-oss': {
      const biasGU = fusedPlain(m, `${pre}mlp.experts.gate_up_proj_bias`, [E, 2 * I], (j) => stackRows(m.bias(layer, 'gate', j), m.bias(layer, 'up', j), 1, true));
      const biasD = fusedPlain(m, `${pre}mlp.experts.down_proj_bias`, [E, H], (j) => m.bias(layer, 'down', j));
      if (spec.dtype === 'MXFP4') {
        // Blocks are written before scales (two tensors): while the blocks stream out, only each
        // expert's scale bytes (1/16 of the blocks) are kept for the scales tensor that follows.
        const mx = (key: 'gu' | 'd') => {
          const pending = new Map<number, Uint8Array>();
          const encode = (j: number): EncodedMatrix =>
            key === 'gu'
              ? encodeMatrix(stackRows(m.factory(layer, 'gate').expert(j), m.factory(layer, 'up').expert(j), H, true), 2 * I, H, 'MXFP4')
              : encodeMatrix(m.factory(layer, 'down').expert(j), H, I, 'MXFP4');
          return {
            blocks: (j: number): Uint8Array => {
              const e = encode(j);
              pending.set(j, e.scales!.bytes);
              return e.bytes;
            },
            scales: (j: number): Uint8Array => {
              const s = pending.get(j) ?? encode(j).scales!.bytes;
              pending.delete(j);
              return s;
            },
          };
        };
        const gu = mx('gu');
        const dn = mx('d');
        return [
          perExpertSlices(`${pre}mlp.experts.gate_up_proj_blocks`, 'U8', [E, 2 * I, H / 32, 16], E, gu.blocks),
          perExpertSlices(`${pre}mlp.experts.gate_up_proj_scales`, 'U8', [E, 2 * I, H / 32], E, gu.scales),
          biasGU,
          perExpertSlices(`${pre}mlp.experts.down_proj_blocks`, 'U8', [E, H, I / 32, 16], E, dn.blocks),
          perExpertSlices(`${pre}mlp.experts.down_proj_scales`, 'U8', [E, H, I / 32], E, dn.scales),
          biasD,
        ];
      }
      return [
        fusedPlain(m, `${pre}mlp.experts.gate_up_proj`, [E, H, 2 * I], (j) => transposeF32(stackRows(values('gate', j), values('up', j), H, true), 2 * I, H)),
        biasGU,
        fusedPlain(m, `${pre}mlp.experts.down_proj`, [E, I, H], (j) => transposeF32(values('down', j), H, I)),
        biasD,
      ];
    }
    case 'fused':
      return st.inputMajor
        ? [
            fusedPlain(m, `${pre}${st.block}.gate_up_proj`, [E, H, 2 * I], (j) => transposeF32(stackRows(values('gate', j), values('up', j), H, false), 2 * I, H)),
            fusedPlain(m, `${pre}${st.block}.down_proj`, [E, I, H], (j) => transposeF32(values('down', j), H, I)),
          ]
        : [
            fusedPlain(m, `${pre}${st.block}.gate_up_proj`, [E, 2 * I, H], (j) => stackRows(values('gate', j), values('up', j), H, false)),
            fusedPlain(m, `${pre}${st.block}.down_proj`, [E, H, I], (j) => values('down', j)),
          ];
    case 'input-linear':
      return [
        fusedPlain(m, `${pre}${st.block}.input_linear.weight`, [E, 2 * I, H], (j) => stackRows(values('gate', j), values('up', j), H, false)),
        fusedPlain(m, `${pre}${st.block}.output_linear.weight`, [E, H, I], (j) => values('down', j)),
      ];
    case 'dbrx':
      return [
        fusedPlain(m, `${pre}ffn.experts.mlp.w1`, [E * I, H], (j) => values('gate', j)),
        fusedPlain(m, `${pre}ffn.experts.mlp.v1`, [E * I, H], (j) => values('up', j)),
        fusedPlain(m, `${pre}ffn.experts.mlp.w2`, [E * I, H], (j) => transposeF32(values('down', j), H, I)), // stored transposed
      ];
  }
}

function ffnPlans(prefix: string, H: number, I: number, dtype: 'F32' | 'BF16' | 'F16', seed: number): TensorPlan[] {
  return [
    randomPlan(`${prefix}.gate_proj.weight`, [I, H], dtype, seed, 1 / Math.sqrt(H)),
    randomPlan(`${prefix}.up_proj.weight`, [I, H], dtype, seed, 1 / Math.sqrt(H)),
    randomPlan(`${prefix}.down_proj.weight`, [H, I], dtype, seed, 1 / Math.sqrt(I)),
  ];
}

function layerPlans(m: SyntheticModel, layer: number): TensorPlan[] {
  const { def, spec } = m;
  const pre = `${def.layerPrefix}${layer}.`;
  const aux = AUX_DTYPE(spec.dtype);
  const seed = spec.seed ?? 1234;
  const H = spec.hidden;
  const plans: TensorPlan[] = [];
  const moe = m.moeLayers.includes(layer);
  if (!spec.expertsOnly) {
    plans.push(onesPlan(`${pre}input_layernorm.weight`, H, aux));
    for (const p of ['q', 'k', 'v', 'o']) plans.push(randomPlan(`${pre}self_attn.${p}_proj.weight`, [H, H], aux, seed, 1 / Math.sqrt(H)));
  }
  if (!moe) return [...plans, ...ffnPlans(`${pre}${def.denseMlp ?? 'mlp'}`, H, spec.intermediate, aux, seed)];
  plans.push(randomPlan(`${pre}${def.router}`, [spec.numExperts, H], aux, seed, 1 / Math.sqrt(H)));
  if (spec.family === 'gpt_oss') plans.push(randomPlan(`${pre}mlp.router.bias`, [spec.numExperts], aux, seed, 0.1));
  if (spec.family === 'deepseek_v3') plans.push({ ...randomPlan(`${pre}mlp.gate.e_score_correction_bias`, [spec.numExperts], 'F32', seed, 0.1) });
  if (def.shared && !spec.expertsOnly) {
    plans.push(...ffnPlans(`${pre}${def.shared}`, H, spec.intermediate, aux, seed));
    if (spec.family === 'qwen2_moe') plans.push(randomPlan(`${pre}mlp.shared_expert_gate.weight`, [1, H], aux, seed, 1 / Math.sqrt(H)));
  }
  return [...plans, ...expertPlans(m, layer)];
}

function modelPlans(m: SyntheticModel): TensorPlan[] {
  const { spec, def } = m;
  const aux = AUX_DTYPE(spec.dtype);
  const seed = spec.seed ?? 1234;
  const top = def.layerPrefix.replace(/(layers|blocks)\.$/, '');
  const plans: TensorPlan[] = spec.expertsOnly ? [] : [randomPlan(`${top}embed_tokens.weight`, [64, spec.hidden], aux, seed, 1)];
  const total = spec.numLayers + (def.extraMoeLayers ?? 0);
  for (let l = 0; l < total; l++) plans.push(...layerPlans(m, l));
  if (!spec.expertsOnly) plans.push(onesPlan(`${top}norm.weight`, spec.hidden, aux), randomPlan('lm_head.weight', [64, spec.hidden], aux, seed, 1 / Math.sqrt(spec.hidden)));
  return plans;
}

function shard(plans: TensorPlan[], maxBytes: number | undefined): TensorPlan[][] {
  if (!maxBytes) return [plans];
  const shards: TensorPlan[][] = [[]];
  let size = 0;
  for (const p of plans) {
    const len = byteLengthOf(p.dtype, p.shape);
    if (size > 0 && size + len > maxBytes) {
      shards.push([]);
      size = 0;
    }
    shards[shards.length - 1]!.push(p);
    size += len;
  }
  return shards;
}

function validate(spec: SynthSpec): void {
  const bad = (problem: string): never => {
    throw new MoeInspectorError('usage', `synthetic spec: ${problem}`);
  };
  if (!(spec.family in FAMILIES)) bad(`unknown family "${spec.family}" (one of ${Object.keys(FAMILIES).join(', ')})`);
  for (const k of ['numLayers', 'numExperts', 'hidden', 'intermediate'] as const) {
    if (!Number.isInteger(spec[k]) || spec[k] < 1) bad(`${k} must be a positive integer, got ${spec[k]}`);
  }
  const { hidden: H, intermediate: I } = spec;
  if (spec.numExperts < 2) bad('an MoE needs at least 2 experts');
  if (spec.dtype === 'MXFP4' && (spec.family !== 'gpt_oss' || H % 32 !== 0 || I % 32 !== 0)) bad('MXFP4 is written for gpt_oss with hidden and intermediate sizes multiples of 32');
  if (spec.dtype === 'FP8' && !FP8_FAMILIES.has(spec.family)) bad(`FP8 block-scaled weights are written for ${[...FP8_FAMILIES].join(', ')}`);
  const structures = Array.isArray(spec.structure) ? (spec.structure as readonly Structure[]) : [spec.structure as Structure];
  for (const s of structures) {
    if (s.kind === 'native') continue;
    if (s.kind === 'recipe') {
      validateRecipe(s.recipe, spec.numExperts, spec.intermediate);
      continue;
    }
    if (s.kind === 'partial' && !(s.fraction >= 0 && s.fraction <= 1)) bad(`partial fraction must be in [0, 1], got ${s.fraction}`);
    for (const p of PROJECTIONS) {
      const max = Math.min(...new SyntheticModel({ ...spec, structure: s }).shapeOf(p));
      if (!Number.isInteger(s.ranks[p]) || s.ranks[p] < 1 || s.ranks[p] > max) bad(`${p} rank must be an integer in 1..${max}, got ${s.ranks[p]}`);
    }
  }
  if (spec.injectNaN && !['F32', 'BF16', 'F16'].includes(spec.dtype)) bad('injectNaN needs a plain float dtype (F32, BF16, F16)');
}

/** Per-expert layouts that take DeepSeek-V3-style FP8 (E4M3 + 128x128 weight_scale_inv). */
const FP8_FAMILIES = new Set<SynthFamily>(['deepseek_v2', 'deepseek_v3', 'kimi_k2', 'glm4_moe']);

/** Writes the checkpoint into `dir` (created; files written via temp names and renamed). */
export async function generateSyntheticCheckpoint(dir: string, spec: SynthSpec, opts: GenerateOptions = {}): Promise<GroundTruth> {
  validate(spec);
  const m = new SyntheticModel(spec);
  await mkdir(dir, { recursive: true });
  const shards = shard(modelPlans(m), spec.maxShardBytes);
  const names = shards.length === 1 ? ['model.safetensors'] : shards.map((_, i) => `model-${String(i + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.safetensors`);
  let totalBytes = 0;
  const weightMap: Record<string, string> = {};
  for (const [i, plans] of shards.entries()) {
    totalBytes += await writeSafetensors(join(dir, names[i]!), plans, { format: 'pt', generator: 'moe-inspector synth' });
    for (const p of plans) weightMap[p.name] = names[i]!;
  }
  if (shards.length > 1) {
    const size = shards.flat().reduce((a, p) => a + byteLengthOf(p.dtype, p.shape), 0);
    await writeAtomic(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: size }, weight_map: weightMap }, null, 2));
  }
  await writeAtomic(join(dir, 'config.json'), JSON.stringify(m.def.config(spec), null, 2));
  const truth: GroundTruth = {
    spec,
    moeLayers: m.moeLayers.filter((l) => l < spec.numLayers),
    layers: m.moeLayers.map((layer) => layerTruth(m, layer)),
    files: names,
    totalBytes,
    ...(opts.parentDir ? { parentDir: opts.parentDir } : {}),
  };
  if (opts.parentDir) await writeDenseParent(opts.parentDir, m);
  await writeAtomic(join(dir, 'synth-ground-truth.json'), JSON.stringify(truth, null, 2));
  return truth;
}

function layerTruth(m: SyntheticModel, layer: number): GroundTruth['layers'][number] {
  const structure = m.structureOf(layer);
  const rl = m.recipeLayer(layer);
  if (rl) {
    const recipe = rl.truth();
    const kinds: ExpertKind[] = recipe.inheritedShare.map((x) => (x > 0 ? 'derived' : 'native'));
    return { layer, structure, upcycledExperts: kinds.filter((k) => k === 'derived').length, singularValues: {}, expertKinds: kinds, expectedRank: {}, energyMargin95: {}, deltaFromMeanIsConstructed: false, recipe };
  }
  const kinds = expertKinds(structure, m.spec.numExperts);
  const sv = (p: Projection): number[] => m.factory(layer, p).singularValues;
  const upcycled = structure.kind !== 'native';
  const perProj = <T>(f: (p: Projection) => T): Partial<Record<Projection, T>> => (upcycled ? Object.fromEntries(PROJECTIONS.map((p) => [p, f(p)])) : {});
  return {
    layer,
    structure,
    upcycledExperts: upcycledCount(structure, m.spec.numExperts),
    singularValues: perProj(sv),
    expertKinds: kinds,
    expectedRank: perProj((p) => energyRanks(sv(p))),
    energyMargin95: perProj((p) => energyMargin95(sv(p))),
    deltaFromMeanIsConstructed: kinds.every((k) => k !== 'native'), // base-only experts add no delta: the pairs still sum to zero
  };
}
