/** The messages between the spectrum pool (spectrum-pool.ts) and its threads (spectrum-thread.ts). */
import type { ElemType } from './onnx/graph';
import type { SpectrumTimes } from './gram-spectrum';

export type ToSpectrumThread =
  /** A projection's mean expert [rows, cols], kept by the thread until dropped. */
  | { readonly kind: 'base'; readonly baseId: number; readonly base: Float32Array; readonly rows: number; readonly cols: number }
  | { readonly kind: 'drop'; readonly baseId: number }
  /** One expert [rows, cols] of that projection: its delta's norm and spectrum. */
  | { readonly kind: 'solve'; readonly id: number; readonly baseId: number; readonly w: Float32Array; readonly type: ElemType; readonly band?: number };

export type FromSpectrumThread =
  | { readonly kind: 'ready' }
  | { readonly kind: 'failed-to-start'; readonly error: string }
  | { readonly kind: 'solved'; readonly id: number; readonly deltaNorm: number; readonly ev: Float64Array; readonly times: SpectrumTimes }
  | { readonly kind: 'error'; readonly id: number; readonly error: string };

/** Spectrum threads read these from workerData. */
export interface SpectrumThreadData {
  /** ONNX Runtime intra-op threads of the thread's own CPU backend. */
  readonly ortThreads: number;
}
