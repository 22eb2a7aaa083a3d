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
import { FAMILIES, type FamilyDef, type SynthFamily, type SynthStack } from './families';
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
  /** The MoE layers' indices, in the reader's order (per group: single stack / encoder / decoder / vision). */
  readonly moeLayers: number[];
  /** Their names as reports give them: "3", "encoder.1", "vision.2". */
  readonly moeLayerNames: string[];
  readonly layers: {
    readonly layer: number;
    readonly group: string | null;
    readonly name: string;
    /** The projections the experts have (no gate for nemotron_h, switch_transformers, nllb_moe). */
    readonly projections: Projection[];
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

/** One MoE layer of one group as the generator writes it (and the reader must find it). */
export interface SynthUnit {
  readonly group: string | null;
  readonly layer: number;
  readonly name: string;
  /** Past num_hidden_layers (an MTP module the reader skips). */
  readonly extra: boolean;
}

/** The reader's group order: single stack / text first, then encoder, decoder, vision. */
const GROUP_RANK = (g: string | null): number => (g === null ? 0 : g === 'encoder' ? 1 : g === 'decoder' ? 2 : 3);

/** Builds, on demand, the matrices of one spec: the single source of truth for writing and for tests. */
export class SyntheticModel {
  readonly def: FamilyDef;
  readonly units: SynthUnit[];
  readonly projections: readonly Projection[];
  private readonly factories = new Map<string, ExpertSource>();
  private readonly recipeLayers = new Map<string, RecipeLayer>();
  private readonly seed: number;

  constructor(readonly spec: SynthSpec) {
    this.def = FAMILIES[spec.family];
    this.seed = spec.seed ?? 1234;
    this.projections = this.def.projections ?? PROJECTIONS;
    const units: SynthUnit[] = [];
    for (const stack of this.stacks()) {
      const total = spec.numLayers + (stack.group === null ? (this.def.extraMoeLayers ?? 0) : 0);
      for (let l = 0; l < total; l++) {
        if (l < spec.numLayers && !this.def.isMoeLayer(l, spec)) continue;
        units.push({ group: stack.group, layer: l, name: stack.group === null ? String(l) : `${stack.group}.${l}`, extra: l >= spec.numLayers });
        if (this.def.visionIntermediate && l < spec.numLayers) units.push({ group: 'vision', layer: l, name: `vision.${l}`, extra: false });
      }
    }
    this.units = units.sort((a, b) => GROUP_RANK(a.group) - GROUP_RANK(b.group) || a.layer - b.layer);
  }

  /** The layer stacks: the family's encoder and decoder, or its one stack. */
  stacks(): readonly (Omit<SynthStack, 'group'> & { readonly group: 'encoder' | 'decoder' | null })[] {
    const st = this.def.storage;
    const block = 'block' in st ? st.block : '';
    return this.def.stacks ?? [{ group: null, layerPrefix: this.def.layerPrefix, block, router: this.def.router, denseMlp: this.def.denseMlp ?? 'mlp' }];
  }

  /** The MoE layers of a group (null: single stack or text experts), MTP layers included. */
  moeLayersOf(group: string | null): number[] {
    return this.units.filter((u) => u.group === group).map((u) => u.layer);
  }

  structureOf(layer: number, group: string | null = null): Structure {
    const s = this.spec.structure;
    if (!Array.isArray(s)) return s as Structure;
    const i = this.moeLayersOf(group).indexOf(layer);
    return (s as readonly Structure[])[Math.min(i, s.length - 1)]!;
  }

  intermediateOf(group: string | null): number {
    return group === 'vision' && this.def.visionIntermediate ? this.def.visionIntermediate(this.spec) : this.spec.intermediate;
  }

  shapeOf(p: Projection, group: string | null = null): [number, number] {
    const I = this.intermediateOf(group);
    return p === 'down' ? [this.spec.hidden, I] : [I, this.spec.hidden];
  }

  factory(layer: number, p: Projection, group: string | null = null): ExpertSource {
    const unit = `${group === null ? '' : `${group}.`}L${layer}.`;
    const key = `${unit}${p}`;
    let f = this.factories.get(key);
    // Files are written layer by layer: keeping only one layer's bases and factors bounds memory
    // for many-layer, GPT-OSS-sized specs (out-of-order reads just recompute, deterministically).
    if (!f && [...this.factories.keys()].some((k) => !k.startsWith(unit))) this.factories.clear();
    if (!f) {
      const [out, inp] = this.shapeOf(p, group);
      const rl = this.recipeLayer(layer, group);
      f = rl ? { expert: (j) => rl.expert(p, j), singularValues: [] } : new ExpertFactory(this.seed, key, out, inp, this.structureOf(layer, group), this.spec.numExperts, p);
      this.factories.set(key, f);
    }
    return f;
  }

  /** The recipe builder of a layer (its dense parent FFN and neuron maps), or null for the other structures. */
  recipeLayer(layer: number, group: string | null = null): RecipeLayer | null {
    const s = this.structureOf(layer, group);
    if (s.kind !== 'recipe') return null;
    // The seed key of the ungrouped layer is unchanged ("L5"), so recipe models generated before groups stay identical.
    const key = `${group === null ? '' : `${group}.`}L${layer}`;
    let rl = this.recipeLayers.get(key);
    if (!rl) {
      this.recipeLayers.clear(); // one layer's parent at a time, like the factories
      rl = new RecipeLayer(s.recipe, this.seed, key, this.spec.numExperts, this.spec.hidden, this.intermediateOf(group));
      this.recipeLayers.set(key, rl);
    }
    return rl;
  }

  /** Expert j of a projection as stored: the bytes and the exact values a correct reader returns. */
  encodedExpert(layer: number, p: Projection, j: number, group: string | null = null): EncodedMatrix {
    const [out, inp] = this.shapeOf(p, group);
    const w = this.factory(layer, p, group).expert(j);
    const nan = this.spec.injectNaN;
    const e = encodeMatrix(w, out, inp, this.spec.dtype);
    if (nan && nan.layer === layer && nan.projection === p && nan.expert === j && group === this.units[0]!.group) poison(e, nan.count);
    return e;
  }

  /** Per-expert bias (gpt_oss, nllb_moe): N(0, 1) per output row, large enough that folding it into W would change every metric. */
  bias(layer: number, p: Projection, j: number, group: string | null = null): Float32Array {
    const b = new Float32Array(this.shapeOf(p, group)[0]);
    fillGaussian(b, hashKey(this.seed, `${group === null ? '' : `${group}.`}L${layer}.${p}.bias${j}`));
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

type Stack = ReturnType<SyntheticModel['stacks']>[number];

/** One tensor per expert and projection (plus FP8 scales and biases), experts numbered from `first`. */
function perExpertPlans(m: SyntheticModel, pre: string, layer: number, group: string | null, first: number): TensorPlan[] {
  const st = m.def.storage;
  if (st.kind !== 'per-expert') return [];
  const { spec } = m;
  const plans: TensorPlan[] = [];
  for (let j = 0; j < spec.numExperts; j++) {
    for (const p of m.projections) {
      const name = `${pre}${st.label ?? ''}${first + j}.${st.names[p]}.weight`;
      const shape = m.shapeOf(p, group);
      let cached: EncodedMatrix | null = null;
      const enc = (): EncodedMatrix => (cached ??= m.encodedExpert(layer, p, j, group));
      const dtype: Dtype = spec.dtype === 'FP8' ? 'F8_E4M3' : (spec.dtype as Dtype);
      plans.push({ name, dtype, shape, produce: async (sink) => sink(enc().bytes) });
      if (spec.dtype === 'FP8') {
        const sshape = [Math.ceil(shape[0] / 128), Math.ceil(shape[1] / 128)];
        plans.push({ name: `${name}_scale_inv`, dtype: 'F32', shape: sshape, produce: async (sink) => { await sink(enc().scales!.bytes); cached = null; } });
      }
      if (st.biases) {
        const dt = AUX_DTYPE(spec.dtype);
        plans.push({ name: name.replace(/\.weight$/, '.bias'), dtype: dt, shape: [shape[0]], produce: async (sink) => sink(encodePlain(m.bias(layer, p, j, group), dt).bytes) });
      }
    }
  }
  return plans;
}

function expertPlans(m: SyntheticModel, stack: Stack, layer: number): TensorPlan[] {
  const { spec } = m;
  const pre = `${stack.layerPrefix}${layer}.`;
  const E = spec.numExperts;
  const H = spec.hidden;
  const I = spec.intermediate;
  const values = (p: Projection, j: number): Float32Array => m.encodedExpert(layer, p, j, stack.group).values;
  const st = m.def.storage;
  switch (st.kind) {
    case 'per-expert': {
      const text = perExpertPlans(m, `${pre}${stack.block}.`, layer, stack.group, 0);
      // Vision experts follow the text experts in the same numbering (ernie4_5_vl_moe).
      const vision = m.def.visionIntermediate && layer < spec.numLayers ? perExpertPlans(m, `${pre}${stack.block}.`, layer, 'vision', E) : [];
      return [...text, ...vision];
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
    case 'fused': {
      const text = fusedPlans(m, `${pre}${st.block}`, st.inputMajor, layer, stack.group);
      // Vision experts in their own block (transformers' Ernie4_5_VLMoeMoeBlock: text_moe / vision_moe).
      const vision = m.def.visionBlock && layer < spec.numLayers ? fusedPlans(m, `${pre}${m.def.visionBlock}`, st.inputMajor, layer, 'vision') : [];
      return [...text, ...vision];
    }
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
    case 'stacked':
      // nn.Linear orientation, experts stacked along dim 0 (step3p7's original checkpoints; NemotronHExperts without a gate).
      return m.projections.map((p) => fusedPlain(m, `${pre}${st.block}.${p}_proj${st.suffix}`, p === 'down' ? [E, H, I] : [E, I, H], (j) => values(p, j)));
    case 'grouped-gemm':
      // Input-major x @ W[j] (aria): fc1 columns [0, I) are the silu'd gate, [I, 2I) the up multiplier.
      return [
        fusedPlain(m, `${pre}${st.block}.fc1.weight`, [E, H, 2 * I], (j) => transposeF32(stackRows(values('gate', j), values('up', j), H, false), 2 * I, H)),
        fusedPlain(m, `${pre}${st.block}.fc2.weight`, [E, I, H], (j) => transposeF32(values('down', j), H, I)),
      ];
  }
}

/** Fused gate_up_proj + down_proj of one expert group: input-major [E, H, 2I] / [E, I, H] or output-major [E, 2I, H] / [E, H, I], gate rows first. */
function fusedPlans(m: SyntheticModel, block: string, inputMajor: boolean, layer: number, group: string | null): TensorPlan[] {
  const E = m.spec.numExperts;
  const H = m.spec.hidden;
  const I = m.intermediateOf(group);
  const values = (p: Projection, j: number): Float32Array => m.encodedExpert(layer, p, j, group).values;
  return inputMajor
    ? [
        fusedPlain(m, `${block}.gate_up_proj`, [E, H, 2 * I], (j) => transposeF32(stackRows(values('gate', j), values('up', j), H, false), 2 * I, H)),
        fusedPlain(m, `${block}.down_proj`, [E, I, H], (j) => transposeF32(values('down', j), H, I)),
      ]
    : [
        fusedPlain(m, `${block}.gate_up_proj`, [E, 2 * I, H], (j) => stackRows(values('gate', j), values('up', j), H, false)),
        fusedPlain(m, `${block}.down_proj`, [E, H, I], (j) => values('down', j)),
      ];
}

/** A dense FFN (non-MoE layers, shared experts) with the family's projection names. */
function ffnPlans(m: SyntheticModel, prefix: string, H: number, I: number, dtype: 'F32' | 'BF16' | 'F16', seed: number): TensorPlan[] {
  const st = m.def.storage;
  const names = st.kind === 'per-expert' ? st.names : { gate: 'gate_proj', up: 'up_proj', down: 'down_proj' };
  return m.projections.map((p) =>
    p === 'down' ? randomPlan(`${prefix}.${names.down}.weight`, [H, I], dtype, seed, 1 / Math.sqrt(I)) : randomPlan(`${prefix}.${names[p]}.weight`, [I, H], dtype, seed, 1 / Math.sqrt(H)),
  );
}

function layerPlans(m: SyntheticModel, stack: Stack, layer: number): TensorPlan[] {
  const { def, spec } = m;
  const pre = `${stack.layerPrefix}${layer}.`;
  const aux = AUX_DTYPE(spec.dtype);
  const seed = spec.seed ?? 1234;
  const H = spec.hidden;
  const plans: TensorPlan[] = [];
  const moe = m.units.some((u) => u.group === stack.group && u.layer === layer);
  if (!spec.expertsOnly) {
    plans.push(onesPlan(`${pre}input_layernorm.weight`, H, aux));
    for (const p of ['q', 'k', 'v', 'o']) plans.push(randomPlan(`${pre}self_attn.${p}_proj.weight`, [H, H], aux, seed, 1 / Math.sqrt(H)));
  }
  if (!moe) return [...plans, ...ffnPlans(m, `${pre}${stack.denseMlp}`, H, spec.intermediate, aux, seed)];
  plans.push(randomPlan(`${pre}${stack.router}`, [spec.numExperts, H], aux, seed, 1 / Math.sqrt(H)));
  if (spec.family === 'gpt_oss') plans.push(randomPlan(`${pre}mlp.router.bias`, [spec.numExperts], aux, seed, 0.1));
  if (spec.family === 'deepseek_v3' || spec.family === 'nemotron_h') plans.push({ ...randomPlan(`${pre}${stack.router.replace(/weight$/, 'e_score_correction_bias')}`, [spec.numExperts], 'F32', seed, 0.1) });
  // ERNIE-4.5-VL keeps a second router for the vision experts (gate.weight_1, or vision_moe.gate.weight).
  if (def.visionIntermediate) plans.push(randomPlan(`${pre}${def.visionRouter ?? `${stack.router}_1`}`, [spec.numExperts, H], aux, seed, 1 / Math.sqrt(H)));
  if (def.shared && !spec.expertsOnly) {
    plans.push(...ffnPlans(m, `${pre}${def.shared}`, H, spec.intermediate, aux, seed));
    if (spec.family === 'qwen2_moe') plans.push(randomPlan(`${pre}mlp.shared_expert_gate.weight`, [1, H], aux, seed, 1 / Math.sqrt(H)));
  }
  return [...plans, ...expertPlans(m, stack, layer)];
}

function modelPlans(m: SyntheticModel): TensorPlan[] {
  const { spec, def } = m;
  const aux = AUX_DTYPE(spec.dtype);
  const seed = spec.seed ?? 1234;
  const top = def.layerPrefix.replace(/(layers|blocks|block)\.$/, '');
  const plans: TensorPlan[] = spec.expertsOnly ? [] : [randomPlan(`${top}embed_tokens.weight`, [64, spec.hidden], aux, seed, 1)];
  for (const stack of m.stacks()) {
    const total = spec.numLayers + (stack.group === null ? (def.extraMoeLayers ?? 0) : 0);
    for (let l = 0; l < total; l++) plans.push(...layerPlans(m, stack, l));
  }
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
    const m = new SyntheticModel({ ...spec, structure: s });
    for (const p of m.projections) {
      for (const group of new Set(m.units.map((u) => u.group))) {
        const max = Math.min(...m.shapeOf(p, group));
        if (!Number.isInteger(s.ranks[p]) || s.ranks[p] < 1 || s.ranks[p] > max) bad(`${p} rank must be an integer in 1..${max}${group === null ? '' : ` (${group} experts)`}, got ${s.ranks[p]}`);
      }
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
  const decoderUnits = m.units.filter((u) => !u.extra);
  const truth: GroundTruth = {
    spec,
    moeLayers: decoderUnits.map((u) => u.layer),
    moeLayerNames: decoderUnits.map((u) => u.name),
    layers: m.units.map((u) => layerTruth(m, u)),
    files: names,
    totalBytes,
    ...(opts.parentDir ? { parentDir: opts.parentDir } : {}),
  };
  if (opts.parentDir) await writeDenseParent(opts.parentDir, m);
  await writeAtomic(join(dir, 'synth-ground-truth.json'), JSON.stringify(truth, null, 2));
  return truth;
}

function layerTruth(m: SyntheticModel, unit: SynthUnit): GroundTruth['layers'][number] {
  const { layer, group } = unit;
  const structure = m.structureOf(layer, group);
  const rl = m.recipeLayer(layer, group);
  if (rl) {
    const recipe = rl.truth();
    const kinds: ExpertKind[] = recipe.inheritedShare.map((x) => (x > 0 ? 'derived' : 'native'));
    const ids = { layer, group, name: unit.name, projections: [...m.projections] };
    return { ...ids, structure, upcycledExperts: kinds.filter((k) => k === 'derived').length, singularValues: {}, expertKinds: kinds, expectedRank: {}, energyMargin95: {}, deltaFromMeanIsConstructed: false, recipe };
  }
  const kinds = expertKinds(structure, m.spec.numExperts);
  const sv = (p: Projection): number[] => m.factory(layer, p, group).singularValues;
  const upcycled = structure.kind !== 'native';
  const perProj = <T>(f: (p: Projection) => T): Partial<Record<Projection, T>> => (upcycled ? Object.fromEntries(m.projections.map((p) => [p, f(p)])) : {});
  return {
    layer,
    group,
    name: unit.name,
    projections: [...m.projections],
    structure,
    upcycledExperts: upcycledCount(structure, m.spec.numExperts),
    singularValues: perProj(sv),
    expertKinds: kinds,
    expectedRank: perProj((p) => energyRanks(sv(p))),
    energyMargin95: perProj((p) => energyMargin95(sv(p))),
    deltaFromMeanIsConstructed: kinds.every((k) => k !== 'native'), // base-only experts add no delta: the pairs still sum to zero
  };
}
