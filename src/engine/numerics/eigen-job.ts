/** The JS part of one symmetric eigenvalue problem, as a plain message a worker thread can take. */
import { symmetricEigenvalues } from './symmetric-eigen';
import { tridiagonalEigenvalues } from './tridiagonal-eigen';
import { wasmBandToTridiagonal } from '../kernels/wasm-kernels';

export type EigenJob =
  /** A dense symmetric matrix (lower triangle read), small enough for the one-stage solver. */
  | { readonly kind: 'dense'; readonly n: number; readonly a: Float64Array }
  /** A band matrix from stage one (BandMatrix storage): bulge chasing, then tridiagonal QL. */
  | { readonly kind: 'band'; readonly n: number; readonly b: number; readonly a: Float64Array };

export interface EigenResult {
  /** Eigenvalues, descending. */
  readonly ev: Float64Array;
  /** Milliseconds in bulge chasing (or the whole dense solve) and in tridiagonal QL, for the bench. */
  readonly chaseMs: number;
  readonly qlMs: number;
}

/** Solves the job; its buffer is overwritten. */
export function solveEigenJob(job: EigenJob): EigenResult {
  const t0 = performance.now();
  if (job.kind === 'dense') return { ev: symmetricEigenvalues(job.a, job.n), chaseMs: performance.now() - t0, qlMs: 0 };
  const { d, e } = wasmBandToTridiagonal(job.n, job.b, job.a);
  const t1 = performance.now();
  const ev = tridiagonalEigenvalues(d, e);
  return { ev, chaseMs: t1 - t0, qlMs: performance.now() - t1 };
}
