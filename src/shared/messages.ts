/**
 * The typed protocol between a caller (CLI, VS Code extension) and the compute worker process.
 * One module, imported by both sides; messages travel as JSON over the child's IPC channel.
 */
import type { AnalysisReport, CompareReport, ExecutionProvider, LayerAnalysis, OverlayReport, InfoReport, ProvenanceReport, VerdictThresholds } from '../engine/report/schema';
import type { LayerSummary, ReportSummary } from './report-summary';

export type DeviceChoice = 'auto' | ExecutionProvider;

/**
 * Which layers: explicit layer indices (in every layer group), 'first' (the first MoE layer) or 'all'.
 * `names` adds layers of a group by name: "encoder.1", or "encoder.*" for the whole group.
 */
export type LayerSelection =
  | { readonly kind: 'first' }
  | { readonly kind: 'all' }
  | { readonly kind: 'list'; readonly layers: readonly number[]; readonly names?: readonly string[] };

/** Shard i of N (i 0-based): every N-th of the selected MoE layers, starting at the i-th. */
export interface Shard {
  readonly index: number;
  readonly count: number;
}

/**
 * Where a job writes its report as it goes (after every layer, atomically), and whether it continues
 * the run that file holds. A run identity (model, options, program version) must match to continue.
 */
export interface RunOutput {
  readonly path: string;
  readonly resume: boolean;
}

/**
 * Where the worker keeps a job's full results instead of sending them (VS Code: the extension's
 * storage). With it the caller gets summaries only ('partial-stored', result kind 'stored'): the
 * full layers and reports are files in `dir` (see src/worker/report-store.ts for the names).
 */
export interface ReportStoreTarget {
  readonly dir: string;
}

/** How a job may reach the model's bytes (every job opens at least one model). */
export interface ModelAccess {
  /** Hub only: fetch a whole file when the server ignores HTTP Range (refused by default). */
  readonly allowFullDownload?: boolean;
}

export interface AnalyzeJob extends ModelAccess {
  readonly kind: 'analyze';
  readonly model: string;
  readonly layers: LayerSelection;
  readonly sampleExperts: number | null;
  readonly device: DeviceChoice;
  readonly thresholds?: VerdictThresholds;
  /** Keep every singular value in the report instead of 256 log-spaced ones. */
  readonly fullSpectra?: boolean;
  /** Analyse only this shard of the selected layers. */
  readonly shard?: Shard;
  /** Write the report after every layer; continue a run from it. */
  readonly output?: RunOutput;
  readonly store?: ReportStoreTarget;
  /** The dense parent to match expert neurons against (path or hub id). */
  readonly parent?: string;
  /** Run the neuron-matching provenance pass (default true). */
  readonly provenance?: boolean;
  /** Sketch dimension of neuron matching (default 256, smaller for very large layers). */
  readonly sketchDim?: number;
  /** Experts matched pair by pair (default 64, evenly spaced; 'all': every pair). */
  readonly pairExperts?: number | 'all';
}

export interface ProvenanceJob extends ModelAccess {
  readonly kind: 'provenance';
  readonly model: string;
  readonly parent?: string;
  readonly layers: LayerSelection;
  readonly device: DeviceChoice;
  readonly sketchDim?: number;
  readonly pairExperts?: number | 'all';
}

export interface CompareJob extends ModelAccess {
  readonly kind: 'compare';
  readonly models: readonly [string, string];
  readonly layers: LayerSelection;
  readonly sampleExperts: number | null;
  readonly device: DeviceChoice;
  readonly thresholds?: VerdictThresholds;
  readonly store?: ReportStoreTarget;
  readonly provenance?: boolean;
}

export interface InfoJob extends ModelAccess {
  readonly kind: 'info';
  readonly model: string;
  /** Report the headers (dtypes, parameters, files) even when no MoE layout resolves, with the reason; otherwise that is an error. */
  readonly headersOnly?: boolean;
}

export type OverlayRanks =
  | { readonly kind: 'fixed'; readonly gate: number; readonly up: number; readonly down: number }
  | { readonly kind: 'energy'; readonly energy: number }
  | { readonly kind: 'target-ratio'; readonly ratio: number };

export interface OverlayJob extends ModelAccess {
  readonly kind: 'overlay';
  readonly mode: 'compute' | 'verify' | 'estimate';
  readonly model: string;
  readonly layers: LayerSelection;
  readonly ranks: OverlayRanks;
  readonly device: DeviceChoice;
  readonly saveDir?: string;
  readonly overlayDir?: string;
  readonly inputsFile?: string;
  readonly maxError?: number;
  readonly overlayDtype?: 'F32' | 'F16' | 'BF16';
  readonly fast?: boolean;
  readonly seed?: number;
  /** estimate only: write the report after every layer; continue a run from it. */
  readonly output?: RunOutput;
}

/** How often a caller wants progress: a job may send thousands of steps per second (one per expert read). */
export interface JobPacing {
  /** At most one 'progress' message per this many ms (others are dropped); absent: every step. */
  readonly progressEveryMs?: number;
}

export type Job = (AnalyzeJob | CompareJob | InfoJob | OverlayJob | ProvenanceJob) & JobPacing;

/** Caller -> worker. */
export type ToWorker =
  | { readonly type: 'request'; readonly id: string; readonly job: Job }
  | { readonly type: 'cancel'; readonly id: string };

export interface Progress {
  readonly stage: string; // e.g. "base", "spectra", "layer-done", "fetching"
  readonly done: number;
  readonly total: number;
  readonly message: string;
  readonly bytesFetched?: number;
  readonly bytesNeeded?: number;
  /** Where a long run (analyze, overlay) stands; shown by formatProgress (progress-format.ts). */
  readonly run?: RunProgress;
}

/** A long run's position: layers done, the layer in flight and its experts, bytes read, time left. */
export interface RunProgress {
  /** The model's short name where a job runs several (compare); the line then starts with it. */
  readonly model?: string;
  readonly layersDone: number;
  readonly layersTotal: number;
  /** The decoder layer in flight: its checkpoint index, or its name ("encoder.1") in models with layer groups; null between layers. */
  readonly layer: number | string | null;
  /** What the layer in flight is doing, e.g. "up: spectra" or "gate: base and cosines". */
  readonly step: string;
  /** Experts finished in the step in flight, of `expertsTotal`. */
  readonly expertsDone: number;
  readonly expertsTotal: number;
  /** Bytes of the checkpoint read so far in this run (a second pass's re-reads counted). */
  readonly bytesRead: number;
  /** Seconds left, from the time taken so far per unit of work; null until there is a basis. */
  readonly etaSeconds: number | null;
}

export type JobResult =
  | {
      readonly kind: 'analyze';
      readonly report: AnalysisReport;
      /**
       * The report's layers were sent as 'partial' messages and are left out of `report.layers` here:
       * a whole-model report can exceed what one message (one JSON string) holds. Set for jobs with
       * `output` only; the caller puts them back in the order of `report.status.layers_done`.
       */
      readonly layersSent?: true;
    }
  | { readonly kind: 'compare'; readonly report: CompareReport }
  | { readonly kind: 'info'; readonly report: InfoReport }
  | { readonly kind: 'overlay'; readonly report: OverlayReport }
  | { readonly kind: 'provenance'; readonly report: ProvenanceReport }
  /** An analyze/compare job with `store`: one summary and one full-report file per model. */
  | { readonly kind: 'stored'; readonly job: 'analyze' | 'compare'; readonly reports: readonly ReportSummary[]; readonly files: readonly string[] };

export interface WireError {
  readonly code: string; // ErrorCode, or 'internal' / 'worker-crashed'
  readonly message: string;
}

/** Worker -> caller. */
export type FromWorker =
  | { readonly type: 'ready'; readonly pid: number }
  | { readonly type: 'progress'; readonly id: string; readonly progress: Progress }
  | { readonly type: 'partial'; readonly id: string; readonly modelIndex: number; readonly layer: LayerAnalysis }
  /** A finished layer of a job with `store`: its summary here, the full layer in `file`. */
  | { readonly type: 'partial-stored'; readonly id: string; readonly modelIndex: number; readonly layer: LayerSummary; readonly file: string }
  | { readonly type: 'result'; readonly id: string; readonly result: JobResult }
  | { readonly type: 'error'; readonly id: string; readonly error: WireError }
  | { readonly type: 'cancelled'; readonly id: string };
