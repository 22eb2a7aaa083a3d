/**
 * The JSON contracts. Scripts depend on these: add fields freely, never rename or remove one.
 * Documented in the README ("JSON contracts").
 */
import type { Projection } from '../layouts/types';

export type Verdict = 'upcycled' | 'native' | 'uncertain';
export type ExecutionProvider = 'cpu' | 'cuda';

export interface ProjectionAnalysis {
  readonly shape: readonly [number, number]; // [out, in]
  readonly max_rank: number; // min(out, in)
  readonly experts_analyzed: readonly number[] | number; // indices analysed (array) — see README
  /** Per analysed expert: smallest k with cumulative sigma^2 share >= threshold, keys "0.9", "0.95", "0.99". */
  readonly effective_rank: Readonly<Record<'0.9' | '0.95' | '0.99', readonly number[]>>;
  readonly effective_rank_summary: Readonly<Record<'0.9' | '0.95' | '0.99', { mean: number; min: number; max: number }>>;
  /** mean effective rank at 95% / max_rank. */
  readonly rank_ratio: number;
  /** Pairwise cosine of flattened raw expert weights: mean and population std over pairs i<j, full E x E matrix. */
  readonly cosine: { readonly mean: number; readonly std: number; readonly matrix: readonly (readonly number[])[] };
  /** Frobenius norm of each raw expert weight. */
  readonly expert_norms: readonly number[];
  /** Frobenius norm of each expert's delta from the mean expert. */
  readonly delta_norms: readonly number[];
  /** Per analysed expert, singular values of the delta, descending. */
  readonly singular_values: readonly (readonly number[])[];
  /** How singular_values was reduced: "full" or "downsampled:<n> (log-spaced indices in singular_value_index)". */
  readonly singular_values_sampling: string;
  readonly singular_value_index?: readonly number[];
  /** Singular values below this are below the method's resolution (Gram eigenvalues): plot them as noise. */
  readonly singular_value_floor: number;
}

export interface LayerAnalysis {
  readonly layer: number;
  readonly verdict: { readonly type: Verdict; readonly confidence: number; readonly reasons: readonly string[] };
  readonly projections: Readonly<Partial<Record<Projection, ProjectionAnalysis>>>;
  /** sum(E*m*n) / (sum(m*n) + sum(E*r95*(m+n))) over projections: base counted. Where upcycled, else null. */
  readonly estimated_overlay_ratio: number | null;
}

export interface AnalysisReport {
  readonly schema: 'moe-inspector/analysis@1';
  readonly model: {
    readonly source: string;
    readonly revision: string | null;
    readonly family: string;
    readonly num_experts: number;
    readonly moe_layers: readonly number[];
    readonly shared_experts: boolean;
  };
  readonly runtime: {
    readonly execution_provider: ExecutionProvider;
    readonly seconds: number;
    readonly bytes_read?: number;
    readonly checkpoint_bytes?: number;
    /** Bytes read from the checkpoint, local or hub, both passes counted (bytes_read: what a hub sent). */
    readonly checkpoint_bytes_read?: number;
    /** Seconds per analysed layer, in report order. */
    readonly layer_seconds?: readonly number[];
    /** Seconds by stage, over all layers (see AnalysisStages). */
    readonly stages?: AnalysisStages;
  };
  readonly options: { readonly sample_experts: number | null; readonly thresholds: VerdictThresholds };
  readonly verdict: { readonly type: Verdict; readonly confidence: number };
  readonly layers: readonly LayerAnalysis[];
}

/**
 * Where an analysis' time went, in seconds, summed over layers and projections. reading: reading and
 * decoding experts (both passes; pass two's reads overlap the previous expert's reduction);
 * base_and_norms: pass one's float64 sums; cosine: pass one's inner products; delta_gram: pass two's
 * Grams; stage_one: band reduction (panels and trailing updates); eigen_worker: bulge chasing and QL
 * on the eigen thread, which overlaps the main thread.
 */
export interface AnalysisStages {
  readonly reading: number;
  readonly base_and_norms: number;
  readonly cosine: number;
  readonly delta_gram: number;
  readonly stage_one: number;
  readonly eigen_worker: number;
}

export interface CompareReport {
  readonly schema: 'moe-inspector/compare@1';
  readonly models: readonly [AnalysisReport, AnalysisReport];
}

export interface VerdictThresholds {
  /** upcycled when gate rank_ratio < this ... */
  readonly upcycled_max_rank_ratio: number; // 0.05
  /** ... and mean cosine > this */
  readonly upcycled_min_cosine: number; // 0.25
  /** native when gate rank_ratio > this ... */
  readonly native_min_rank_ratio: number; // 0.5
  /** ... and mean cosine < this */
  readonly native_max_cosine: number; // 0.10
}

export const DEFAULT_THRESHOLDS: VerdictThresholds = {
  upcycled_max_rank_ratio: 0.05,
  upcycled_min_cosine: 0.25,
  native_min_rank_ratio: 0.5,
  native_max_cosine: 0.1,
};

export interface OverlayProjectionReport {
  readonly rank: number;
  readonly original_bytes: number;
  readonly overlay_bytes: number;
  readonly relative_error: readonly number[];
  readonly energy_kept: readonly number[];
  readonly output_error: { readonly mean: number; readonly max: number } | null;
  // --- added by the overlay module (optional, additive) ---
  /** [out, in] of one expert's matrix. */
  readonly shape?: readonly [number, number];
  /** How the checkpoint stores these weights ("mxfp4", "plain:BF16", "fp8-block:F8_E4M3"). */
  readonly encoding?: string;
  /** 'spectrum': errors from the truncated spectrum (compute); 'reconstruction': measured on rebuilt experts (verify). */
  readonly error_source?: 'spectrum' | 'reconstruction';
  /** Output error with only this projection reconstructed, on the --inputs activations. */
  readonly output_error_inputs_file?: { readonly mean: number; readonly max: number } | null;
}

/** Relative output error of the whole expert function over a token batch. */
export interface OverlayOutputError {
  readonly mean: number;
  readonly max: number;
  readonly per_expert: readonly number[];
}

export interface OverlayReport {
  readonly schema: 'moe-inspector/overlay@1';
  readonly model: { readonly source: string; readonly revision: string | null; readonly family: string };
  readonly mode: 'compute' | 'verify' | 'estimate';
  readonly layers: readonly {
    readonly layer: number;
    readonly projections: Readonly<Partial<Record<Projection, OverlayProjectionReport>>>;
    // --- added by the overlay module (optional, additive) ---
    readonly ranks?: Readonly<Record<Projection, number>>;
    readonly original_bytes?: number;
    readonly overlay_bytes?: number;
    readonly ratio?: number;
    /** All three projections reconstructed, per input set (verify). */
    readonly expert_output_error?: { readonly seeded?: OverlayOutputError; readonly inputs_file?: OverlayOutputError } | null;
    readonly output_error_note?: string | null;
  }[];
  readonly totals: {
    readonly original_bytes: number;
    readonly overlay_bytes: number;
    readonly ratio: number;
    /** 'whole-model': every tensor (estimate); 'expert-weights': routed expert weights of the listed layers (compute, verify). */
    readonly scope?: 'whole-model' | 'expert-weights';
  };
  // --- added by the overlay module (optional, additive) ---
  readonly options?: {
    readonly rank_rule: { readonly kind: string; readonly [k: string]: unknown };
    readonly overlay_dtype: 'F32' | 'F16' | 'BF16';
    readonly seed?: number;
    readonly tokens?: number;
    readonly inputs_file?: string | null;
    readonly max_error?: number;
    readonly fast?: boolean;
    readonly overlay_dir?: string | null;
  };
  /** Estimate: bytes the overlay keeps as they are, by kind (same on both sides). */
  readonly non_expert_bytes?: Readonly<Record<string, number>>;
  /** Routed expert weight bytes, original vs overlay, whole model (estimate). */
  readonly expert_bytes?: { readonly original: number; readonly overlay: number };
  /** false when the overlay would not be smaller than the stored experts (ratio <= 1): no compression figure is claimed. */
  readonly compressible?: boolean;
  readonly note?: string;
  /** Verify's pass/fail. */
  readonly verification?: {
    readonly criterion: 'output_error' | 'weight_error';
    readonly max_error: number;
    readonly worst: number;
    readonly passed: boolean;
  };
  /** Compute --save: where the overlay went. */
  readonly saved?: { readonly dir: string; readonly files: readonly string[] };
  readonly runtime?: { readonly execution_provider: ExecutionProvider; readonly seconds: number };
}

export interface InfoReport {
  readonly schema: 'moe-inspector/info@1';
  readonly source: string;
  readonly revision: string | null;
  readonly family: string;
  readonly num_experts: number;
  readonly num_layers: number | null;
  readonly moe_layers: readonly number[];
  readonly projections: Readonly<Record<Projection, { readonly shape: readonly [number, number]; readonly encoding: string }>>;
  readonly shared_experts: { readonly present: boolean; readonly tensors: number };
  readonly dtypes: Readonly<Record<string, { readonly tensors: number; readonly bytes: number }>>;
  readonly parameters: { readonly total: number; readonly routed_experts: number; readonly other: number };
  readonly files: readonly { readonly name: string; readonly bytes: number }[];
  readonly total_bytes: number;
  /** Present when no MoE layout could be resolved (e.g. code 'not-moe'); the MoE fields are then empty. */
  readonly moe_error?: { readonly code: string; readonly message: string };
}
