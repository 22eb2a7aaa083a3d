import type { Dtype } from '../formats/dtype';

export const PROJECTIONS = ['gate', 'up', 'down'] as const;
export type Projection = (typeof PROJECTIONS)[number];

/** A decoder layer index as the checkpoint numbers it (not a count of tensors, not a position in a list). */
export type LayerIndex = number & { readonly __brand: 'LayerIndex' };
export const layerIndex = (n: number): LayerIndex => {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`layer index must be a non-negative integer, got ${n}`);
  return n as LayerIndex;
};

/** One expert's weight for one projection, decoded to float32, in linear [out, in] orientation, row-major. */
export interface ExpertMatrix {
  readonly rows: number; // out
  readonly cols: number; // in
  readonly data: Float32Array;
}

/**
 * Pass-one streaming access to one projection's experts: blocks of rows of the expert matrix as the
 * checkpoint stores it, so a block of every expert can be read by byte range at once without
 * holding any expert whole. Means and inner products are elementwise sums, so any fixed cut of the
 * elements serves them: layouts that store an expert transposed ([in, out]) are cut along their
 * stored rows, and `transposed` says so.
 */
export interface RowBlockSource {
  /** Rows and columns of the matrix the blocks cut: [out, in], or [in, out] when `transposed`. */
  readonly rows: number;
  readonly cols: number;
  readonly transposed: boolean;
  /** Rows [first, first + count) of expert j in that orientation, decoded exactly (biases apart). Rejects with 'non-finite' on NaN/Inf. */
  read(expert: number, first: number, count: number): Promise<Float32Array>;
  /** Reads (and drops) every stored byte expert j's blocks come from: warms a hub model's range cache with one request per part. */
  prefetch(expert: number): Promise<void>;
}

/** How the stored weights are encoded, for reports and byte accounting. */
export type WeightEncoding =
  | { readonly kind: 'plain'; readonly dtype: Dtype }
  | { readonly kind: 'mxfp4' } // U8 blocks of 32 E2M1 codes + U8 E8M0 scales (GPT-OSS)
  | { readonly kind: 'fp8-block'; readonly dtype: Dtype; readonly scaleDtype: Dtype; readonly block: readonly [number, number] };

/** The expert activation, so overlay verify can run the real expert function. */
export type ExpertActivation =
  | { readonly kind: 'swiglu' } // down(silu(gate x) * up x)
  | { readonly kind: 'gpt-oss'; readonly alpha: number; readonly limit: number } // clamped SwiGLU variant with +1 on up
  | { readonly kind: 'gelu-glu' }
  | { readonly kind: 'relu' } // down(relu(up x)): experts without a gate (switch_transformers, nllb_moe)
  | { readonly kind: 'relu2' } // down(relu(up x)^2): nemotron_h
  | { readonly kind: 'unknown'; readonly note: string };

export interface ProjectionLayout {
  /** [out, in] of one expert's matrix after decoding. */
  readonly shape: readonly [number, number];
  readonly encoding: WeightEncoding;
  /** Every tensor name read for this projection (weights, scales, biases), for byte accounting. */
  readonly tensors: readonly string[];
  readonly hasBias: boolean;
}

/**
 * The projections one layer's experts have. `up` and `down` always; `gate` only where the expert is a
 * gated (GLU) FFN: nemotron_h, switch_transformers and nllb_moe experts are up -> act -> down.
 */
export interface LayerProjections {
  readonly gate?: ProjectionLayout;
  readonly up: ProjectionLayout;
  readonly down: ProjectionLayout;
}

/** The projections present, in gate/up/down order. */
/** The first weight tensor a layer reads (its first projection's), e.g. to sample bytes of an expert. */
export function firstWeightTensor(layout: MoeLayerLayout): string | null {
  const p = projectionsOf(layout.projections)[0];
  return (p && layout.projections[p]?.tensors[0]) ?? null;
}

export function projectionsOf(p: LayerProjections | { readonly gate?: unknown }): Projection[] {
  return PROJECTIONS.filter((x) => x !== 'gate' || p.gate !== undefined);
}

/** A layer as reports name it: "5" in a single stack, "encoder.1" / "decoder.1", "vision.5". */
export function layerName(group: string | null, layer: number): string {
  return group === null ? String(layer) : `${group}.${layer}`;
}

/** A layer by name ("encoder.1") or by index (only where that index is unambiguous). */
export type LayerRef = LayerIndex | string;

export interface MoeLayerLayout {
  readonly layer: LayerIndex;
  /**
   * The layer group: null for a model's single stack (and the text experts of a vision-language MoE);
   * "encoder" / "decoder" for the two stacks of an encoder-decoder MoE; "vision" for the vision
   * experts of a vision-language MoE (ernie4_5_vl_moe), which share the layer index with the text ones.
   */
  readonly group: string | null;
  /** layerName(group, layer): unique within the model. */
  readonly name: string;
  readonly numExperts: number;
  readonly projections: LayerProjections;
  /** Router tensors (weight, bias, correction bias): never mixed into experts. */
  readonly routerTensors: readonly string[];
  /** Shared (always-on) expert tensors: reported, not part of the routed set. */
  readonly sharedExpertTensors: readonly string[];
}

/** A Mixture-of-Experts model as the analyses see it. Built from a Checkpoint by a family layout. */
export interface MoeModel {
  readonly family: string; // model_type, or 'detected:<pattern>' when inferred from names
  /** Routed experts per layer of the first layer group (each layout has its own numExperts). */
  readonly numExperts: number;
  readonly numLayers: number | null; // decoder layers in the config, when known (null for encoder-decoder models)
  readonly layers: readonly MoeLayerLayout[];
  readonly activation: ExpertActivation;
  /** Expert j's weight for a projection, exactly decoded, biases NOT folded in. Rejects with 'non-finite' on NaN/Inf. */
  readExpert(layer: LayerRef, projection: Projection, expert: number): Promise<ExpertMatrix>;
  /** Pass-one row-block access to a projection's experts (see RowBlockSource). */
  rowBlocks(layer: LayerRef, projection: Projection): RowBlockSource;
  /** Expert j's bias for a projection (length = out), or null when the family has none. */
  readExpertBias(layer: LayerRef, projection: Projection, expert: number): Promise<Float32Array | null>;
}
