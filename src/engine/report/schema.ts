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

/** How a layer was made, where the verdict says upcycled (README, "Verdict with recipe"). */
export type Recipe = 'copy' | 'permuted-copy' | 'split' | 'partial' | 'native' | 'uncertain';

export interface LayerVerdictReport {
  readonly type: Verdict;
  readonly confidence: number;
  readonly reasons: readonly string[];
  // --- added by provenance (optional, additive) ---
  readonly recipe?: Recipe;
  /** permuted-copy: estimated share of each expert's neurons re-initialised. */
  readonly reinit_share?: number | null;
  /** split without parent: groups of experts sharing neurons; partial: the upcycled experts. */
  readonly groups?: readonly (readonly number[])[];
  readonly upcycled_experts?: readonly number[];
  /** The numbers the verdict rests on, by name. */
  readonly evidence?: Readonly<Record<string, number | null>>;
  /** The seeds' rank + cosine rule alone (what `type` was before provenance). */
  readonly rank_cosine_rule?: { readonly type: Verdict; readonly confidence: number };
}

/** Neuron-matched similarity of one MoE layer (README, "Provenance: neuron matching"). */
export interface LayerProvenance {
  readonly method: {
    readonly neuron: 'gate+up+down' | 'up+down';
    /** Length of one neuron vector (parts x hidden). */
    readonly dim: number;
    readonly sketch_dim: number;
    readonly matching: 'mutual-best-on-sketch+exact-recheck';
    /** Per-neuron false-match probability under the null. */
    readonly alpha: number;
    /** Exact cosine a match must exceed: tau(dim, neurons, alpha). */
    readonly threshold: number;
    /** Shared neurons an expert pair needs to count as sharing (null: Binomial(neurons, alpha)). */
    readonly min_shared: number;
  };
  /** Intermediate neurons per expert. */
  readonly neurons: number;
  /**
   * The experts the pair matrices cover, in their row order; absent: all E (the pair pass pairs at
   * most 64 evenly spaced experts by default, --pair-experts). Groups and unshared_experts name experts.
   */
  readonly pair_experts?: readonly number[];
  /** E x E (P x P over pair_experts): share of expert a's neurons matched one-to-one in expert b above the threshold (diagonal 1). */
  readonly shared_share: readonly (readonly number[])[];
  /** E x E: mean exact cosine of the accepted matches (null where none). */
  readonly matched_cosine: readonly (readonly (number | null)[])[];
  /** E x E: Kendall tau between the neuron order in a and in b over the accepted matches (1: identity order). */
  readonly kendall_tau: readonly (readonly (number | null)[])[];
  /** E x E: share of accepted matches at the same position (i -> i). */
  readonly identity_share: readonly (readonly (number | null)[])[];
  /** Connected components (size >= 2) of the graph whose edges are expert pairs with >= min_shared shared neurons. */
  readonly groups: readonly (readonly number[])[];
  /** Experts sharing neurons with no other expert. */
  readonly unshared_experts: readonly number[];
  /** Shares over all pairs; matched cosine, Kendall tau and identity share averaged over the pairs that share neurons. */
  readonly summary: {
    readonly pairs: number;
    readonly pairs_sharing: number;
    readonly median_pair_share: number;
    readonly mean_pair_share: number;
    readonly mean_matched_cosine: number | null;
    readonly mean_kendall_tau: number | null;
    readonly mean_identity_share: number | null;
  };
  readonly parent?: ParentProvenance;
  /** Storage-rounding noise per projection and the singular-value edge it reaches in a delta. */
  readonly noise: Readonly<Partial<Record<Projection, { readonly encoding: string; readonly sigma: number | null; readonly edge: number | null }>>>;
  /** Expert matrices read (re-reads included when the held-neuron budget is smaller than the layer). */
  readonly expert_reads: number;
  readonly seconds: number;
}

export interface ParentProvenance {
  readonly source: string;
  readonly layer: number;
  /** Neurons of the parent FFN. */
  readonly neurons: number;
  /** tau for expert-vs-parent matching (candidates: the parent's neurons). */
  readonly threshold: number;
  /** Per expert: share of its neurons matched in the parent. */
  readonly expert_share: readonly number[];
  readonly expert_matched_cosine: readonly (number | null)[];
  readonly expert_kendall_tau: readonly (number | null)[];
  /** Per expert: share of consecutive matched neurons whose parent neurons are consecutive (contiguous blocks). */
  readonly expert_contiguity: readonly (number | null)[];
  /** Share of parent neurons matched by at least one expert. */
  readonly coverage: number;
  /** Mean number of experts using each covered parent neuron (1: disjoint, split; ~E: copy). */
  readonly multiplicity: number | null;
  /** Share of covered parent neurons used by exactly one expert. */
  readonly disjoint_share: number | null;
  /** Experts whose share in the parent is significant (>= min_shared neurons). */
  readonly experts_from_parent: readonly number[];
}

export interface LayerAnalysis {
  readonly layer: number;
  /** The layer group: null in a single stack; "encoder" / "decoder"; "vision" (the vision experts of a VL MoE). */
  readonly group: string | null;
  /** "5", or "encoder.1" / "decoder.1" / "vision.5": unique within the model, what --layers accepts. */
  readonly name: string;
  readonly verdict: LayerVerdictReport;
  readonly projections: Readonly<Partial<Record<Projection, ProjectionAnalysis>>>;
  /** sum(E*m*n) / (sum(m*n) + sum(E*r95*(m+n))) over projections: base counted. Where upcycled, else null. */
  readonly estimated_overlay_ratio: number | null;
  // --- added by provenance (optional, additive) ---
  readonly provenance?: LayerProvenance;
  /** Per projection: singular values of each delta above the storage-noise edge (quantisation-robust rank). */
  readonly signal_rank?: Readonly<Partial<Record<Projection, { readonly edge: number | null; readonly per_expert: readonly number[]; readonly mean: number; readonly ratio: number }>>>;
}

/**
 * Where a run stands. `running`: a run is writing the file, or died without a trace (a crash, a kill);
 * `interrupted`: the run stopped (Ctrl-C, cancel, an error) after saving what it finished;
 * `complete`: every planned layer is done; `partial`: merged from parts that do not cover the plan.
 * Everything but `complete` can be continued with `--resume`.
 */
export type RunState = 'running' | 'interrupted' | 'complete' | 'partial';

export interface RunStatus {
  readonly state: RunState;
  /** The layers this run (or shard) set out to do, in model order. */
  readonly layers_planned: readonly (number | string)[];
  /** The layers whose results are in the report, in model order. */
  readonly layers_done: readonly (number | string)[];
}

/** Which program wrote a report: a resume or merge refuses to mix versions. */
export interface ProgramInfo {
  readonly name: string;
  readonly version: string;
}

/** One shard report that went into a merged report. */
export interface MergedPart {
  readonly file: string;
  readonly layers: readonly (number | string)[];
  readonly shard: { readonly index: number; readonly count: number } | null;
  readonly execution_provider: ExecutionProvider;
  readonly seconds: number;
}

export interface AnalysisReport {
  readonly schema: 'moe-inspector/analysis@1';
  readonly model: {
    readonly source: string;
    readonly revision: string | null;
    readonly family: string;
    readonly num_experts: number;
    readonly moe_layers: readonly number[];
    /** Names of the MoE layers (see LayerAnalysis.name), in moe_layers' order. */
    readonly moe_layer_names: readonly string[];
    readonly shared_experts: boolean;
    /** sha256 of the checkpoint's config, shard headers and sizes (plus a sample of expert bytes where there is no revision). */
    readonly fingerprint?: string;
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
    /** Every provider that computed a layer of this report (resumed and merged runs may use several). */
    readonly execution_providers?: readonly ExecutionProvider[];
  };
  readonly options: {
    readonly sample_experts: number | null;
    readonly thresholds: VerdictThresholds;
    // --- added with resumable and sharded runs (optional, additive) ---
    readonly full_spectra?: boolean;
    /** The layer selection as given: "first", "all" or the list. */
    readonly layers?: 'first' | 'all' | readonly (number | string)[];
    /** --shard i/N (i 0-based), or null. */
    readonly shard?: { readonly index: number; readonly count: number } | null;
    // --- added by provenance (optional, additive) ---
    /** The dense parent given with --parent, or null. */
    readonly parent?: string | null;
    /** Whether the neuron-matching pass ran (--no-provenance: false). */
    readonly provenance?: boolean;
    /** Sketch dimension of neuron matching (--sketch-dim), where the pass ran. */
    readonly sketch_dim?: number;
    /** --pair-experts where given: the most experts matched pair by pair, or "all". */
    readonly pair_experts?: number | 'all';
  };
  readonly verdict: { readonly type: Verdict; readonly confidence: number; readonly recipe?: Recipe };
  readonly layers: readonly LayerAnalysis[];
  // --- added with resumable and sharded runs (optional, additive) ---
  readonly status?: RunStatus;
  readonly program?: ProgramInfo;
  /** Present on the output of `moe-inspect merge`: the parts it was made of. */
  readonly merged_from?: readonly MergedPart[];
}

/** `moe-inspect provenance`: neuron-matched provenance of every selected layer alone. */
export interface ProvenanceReport {
  readonly schema: 'moe-inspector/provenance@1';
  readonly model: { readonly source: string; readonly revision: string | null; readonly family: string; readonly num_experts: number; readonly moe_layers: readonly number[]; readonly moe_layer_names?: readonly string[] };
  readonly parent: { readonly source: string; readonly revision: string | null } | null;
  /** `name` as in LayerAnalysis: "5", or "encoder.1" in models with layer groups. */
  readonly layers: readonly (LayerProvenance & { readonly layer: number; readonly name?: string; readonly verdict: LayerVerdictReport })[];
  readonly runtime: { readonly execution_provider: ExecutionProvider; readonly seconds: number };
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
  readonly model: { readonly source: string; readonly revision: string | null; readonly family: string; readonly fingerprint?: string };
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
  readonly runtime?: { readonly execution_provider: ExecutionProvider; readonly seconds: number; readonly execution_providers?: readonly ExecutionProvider[] };
  /** estimate: where the run stands (see AnalysisReport.status). */
  readonly status?: RunStatus;
  readonly program?: ProgramInfo;
}

export interface InfoReport {
  readonly schema: 'moe-inspector/info@1';
  readonly source: string;
  readonly revision: string | null;
  readonly family: string;
  readonly num_experts: number;
  readonly num_layers: number | null;
  readonly moe_layers: readonly number[];
  /** Names of the MoE layers, in moe_layers' order: "5", or "encoder.1" / "decoder.1" / "vision.5" in grouped models. */
  readonly moe_layer_names: readonly string[];
  /** Per layer group (group null: the single stack or the text experts). */
  readonly layer_groups: readonly InfoLayerGroup[];
  /** Of the first MoE layer; `gate` is absent for experts without a gate projection. */
  readonly projections: InfoProjections;
  readonly shared_experts: { readonly present: boolean; readonly tensors: number };
  readonly dtypes: Readonly<Record<string, { readonly tensors: number; readonly bytes: number }>>;
  readonly parameters: { readonly total: number; readonly routed_experts: number; readonly other: number };
  readonly files: readonly { readonly name: string; readonly bytes: number }[];
  readonly total_bytes: number;
  /**
   * Only with `info --headers-only` (without it such a model is an error, exit 1): why no MoE layout
   * could be resolved (code 'not-moe' or 'layout', and the message `analyze` gives); the MoE fields are then empty.
   */
  readonly moe_error?: { readonly code: string; readonly message: string };
}

export type InfoProjections = Readonly<Partial<Record<Projection, { readonly shape: readonly [number, number]; readonly encoding: string }>>>;

export interface InfoLayerGroup {
  readonly group: string | null;
  readonly num_experts: number;
  readonly moe_layers: readonly number[];
  readonly projections: InfoProjections;
}
