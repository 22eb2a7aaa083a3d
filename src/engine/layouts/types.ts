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
  | { readonly kind: 'unknown'; readonly note: string };

export interface ProjectionLayout {
  /** [out, in] of one expert's matrix after decoding. */
  readonly shape: readonly [number, number];
  readonly encoding: WeightEncoding;
  /** Every tensor name read for this projection (weights, scales, biases), for byte accounting. */
  readonly tensors: readonly string[];
  readonly hasBias: boolean;
}

export interface MoeLayerLayout {
  readonly layer: LayerIndex;
  readonly numExperts: number;
  readonly projections: Readonly<Record<Projection, ProjectionLayout>>;
  /** Router tensors (weight, bias, correction bias): never mixed into experts. */
  readonly routerTensors: readonly string[];
  /** Shared (always-on) expert tensors: reported, not part of the routed set. */
  readonly sharedExpertTensors: readonly string[];
}

/** A Mixture-of-Experts model as the analyses see it. Built from a Checkpoint by a family layout. */
export interface MoeModel {
  readonly family: string; // model_type, or 'detected:<pattern>' when inferred from names
  readonly numExperts: number;
  readonly numLayers: number | null; // decoder layers in the config, when known
  readonly layers: readonly MoeLayerLayout[];
  readonly activation: ExpertActivation;
  /** Expert j's weight for a projection, exactly decoded, biases NOT folded in. Rejects with 'non-finite' on NaN/Inf. */
  readExpert(layer: LayerIndex, projection: Projection, expert: number): Promise<ExpertMatrix>;
  /** Pass-one row-block access to a projection's experts (see RowBlockSource). */
  rowBlocks(layer: LayerIndex, projection: Projection): RowBlockSource;
  /** Expert j's bias for a projection (length = out), or null when the family has none. */
  readExpertBias(layer: LayerIndex, projection: Projection, expert: number): Promise<Float32Array | null>;
}
