/**
 * The typed protocol between a caller (CLI, VS Code extension) and the compute worker process.
 * One module, imported by both sides; messages travel as JSON over the child's IPC channel.
 */
import type { AnalysisReport, CompareReport, ExecutionProvider, LayerAnalysis, OverlayReport, InfoReport, VerdictThresholds } from '../engine/report/schema';

export type DeviceChoice = 'auto' | ExecutionProvider;

/** Which layers: explicit decoder layer indices, 'first' (the first MoE layer) or 'all'. */
export type LayerSelection = { readonly kind: 'first' } | { readonly kind: 'all' } | { readonly kind: 'list'; readonly layers: readonly number[] };

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
}

export interface CompareJob extends ModelAccess {
  readonly kind: 'compare';
  readonly models: readonly [string, string];
  readonly layers: LayerSelection;
  readonly sampleExperts: number | null;
  readonly device: DeviceChoice;
  readonly thresholds?: VerdictThresholds;
}

export interface InfoJob extends ModelAccess {
  readonly kind: 'info';
  readonly model: string;
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
}

export type Job = AnalyzeJob | CompareJob | InfoJob | OverlayJob;

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
  readonly layersDone: number;
  readonly layersTotal: number;
  /** The decoder layer in flight (its checkpoint index), null between layers. */
  readonly layer: number | null;
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
  | { readonly kind: 'analyze'; readonly report: AnalysisReport }
  | { readonly kind: 'compare'; readonly report: CompareReport }
  | { readonly kind: 'info'; readonly report: InfoReport }
  | { readonly kind: 'overlay'; readonly report: OverlayReport };

export interface WireError {
  readonly code: string; // ErrorCode, or 'internal' / 'worker-crashed'
  readonly message: string;
}

/** Worker -> caller. */
export type FromWorker =
  | { readonly type: 'ready'; readonly pid: number }
  | { readonly type: 'progress'; readonly id: string; readonly progress: Progress }
  | { readonly type: 'partial'; readonly id: string; readonly modelIndex: number; readonly layer: LayerAnalysis }
  | { readonly type: 'result'; readonly id: string; readonly result: JobResult }
  | { readonly type: 'error'; readonly id: string; readonly error: WireError }
  | { readonly type: 'cancelled'; readonly id: string };
