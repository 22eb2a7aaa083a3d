/**
 * Eigenvalues of a symmetric Gram matrix, split between the two places that can run them: stage one
 * (dense -> band, GEMM-heavy) on ONNX Runtime from the calling thread, the rest (bulge chasing,
 * tridiagonal QL) on the eigen pool's worker thread, so consecutive experts overlap.
 */
import type { ComputeBackend } from './backend';
import { denseToBand, type ReductionTimes } from './band-reduction';
import type { EigenJob } from './eigen-job';
import { sharedEigenPool } from './eigen-pool';
import type { ElemType } from './onnx/graph';

/** Below this size the one-stage JS solver beats a chain of session calls. */
const DENSE_MAX = 96;

/**
 * Band width of stage one. Wider bands mean fewer (memory-bound) trailing updates in ORT but
 * proportionally more bulge-chasing work in JS (~6 n^2 b flops); 16 balances them on 2 cores
 * (measured at n = 1024..2880: b = 32 made the JS stage the bottleneck).
 */
export const DEFAULT_BAND = 16;

/** Runs stage one (when the matrix is large) and returns the job that finishes the eigenvalues. */
export async function reduceGram(
  backend: ComputeBackend,
  gram: Float32Array | Float64Array,
  n: number,
  type: ElemType,
  opts: { band?: number; times?: ReductionTimes; signal?: AbortSignal } = {},
): Promise<EigenJob> {
  if (n <= DENSE_MAX) return { kind: 'dense', n, a: Float64Array.from(gram) };
  const b = opts.band ?? DEFAULT_BAND;
  const band = await denseToBand(backend, gram, n, b, type, { times: opts.times, signal: opts.signal });
  return { kind: 'band', n, b, a: band.a };
}

/** Eigenvalues, descending, of the symmetric Gram matrix [n, n] (full, row-major): stage one in ORT, the rest on the shared eigen pool. */
export async function gramEigenvalues(
  backend: ComputeBackend,
  gram: Float32Array | Float64Array,
  n: number,
  opts: { precision?: ElemType; signal?: AbortSignal } = {},
): Promise<Float64Array> {
  const type = opts.precision ?? (gram instanceof Float64Array ? 'float64' : 'float32');
  const job = await reduceGram(backend, gram, n, type, { signal: opts.signal });
  return (await sharedEigenPool().solve(job)).ev;
}
