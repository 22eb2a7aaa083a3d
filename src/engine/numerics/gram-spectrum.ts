/**
 * Eigenvalues of a symmetric Gram matrix, split between the two places that can run them: stage one
 * (dense -> band, GEMM-heavy) on ONNX Runtime from the calling thread, the rest (bulge chasing,
 * tridiagonal QL) on the eigen pool's worker thread, so consecutive experts overlap.
 */
import { ort, type ComputeBackend } from './backend';
import { deltaGramBlockedGraph, deltaGramGemmGraph, gramBlockSizes } from './graphs';
import { denseToBand, type ReductionTimes } from './band-reduction';
import { solveEigenJob, type EigenJob } from './eigen-job';
import { sharedEigenPool } from './eigen-pool';
import type { ElemType } from './onnx/graph';
import { wasmDeltaSquares } from '../kernels/wasm-kernels';

/**
 * Scale invariance: a float32 Gram squares the entries, so a delta of Frobenius norm above ~2^60
 * overflows it (|G_ij| <= ||D||_F^2 < 2^128 is needed) and one below ~2^-60 sinks into float32's
 * subnormals. Outside [2^-SAFE_LOG2, 2^SAFE_LOG2] the delta is scaled by a power of two (exact: only
 * the exponent changes) to norm ~1 before the Gram, and the eigenvalues are scaled back by its square
 * after: the spectrum of c D is c times that of D, so the result is the one the unscaled matrix has.
 */
const SAFE_LOG2 = 40;

/** The power of two to multiply a matrix of Frobenius norm `norm` by before its Gram (1 when no scaling is needed). */
export function gramInputScale(norm: number): number {
  if (!(norm > 0) || !Number.isFinite(norm)) return 1;
  const e = Math.round(Math.log2(norm));
  return Math.abs(e) <= SAFE_LOG2 ? 1 : 2 ** -e;
}

/** x * scale as a new float32 array, or x itself when scale is 1. */
export function scaled(x: Float32Array, scale: number): Float32Array {
  if (scale === 1) return x;
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i]! * scale;
  return out;
}

/** Eigenvalues of the scaled Gram back to the unscaled matrix's (in place): lambda(D^T D) = lambda((cD)^T cD) / c^2. */
export function unscaleEigenvalues(ev: Float64Array, scale: number): Float64Array {
  if (scale === 1) return ev;
  const back = 1 / (scale * scale);
  for (let i = 0; i < ev.length; i++) ev[i]! *= back;
  return ev;
}

/** Below this size the one-stage JS solver beats a chain of session calls. */
const DENSE_MAX = 96;

/**
 * Band width of stage one for an n x n Gram. Wider bands mean fewer panels in stage one (each one
 * read of the trailing matrix in ORT, main thread) but proportionally more bulge chasing (~6 n^2 b
 * flops, wasm, eigen thread); the two run side by side. Measured before the wasm chase and deferred
 * updates (whole layer): OLMoE-shaped b=8 20.6 s, b=12 19.8 s, b=16 21.7 s; GPT-OSS-shaped b=16
 * 149 s, b=24 140 s. With deferred groups of 8 panels, stage one alone at n = 2880 (loaded
 * machine, interleaved): b=24 3.2-4.0 s, b=32 2.1-3.5 s, b=48 3.2-3.8 s, b=64 3.2-4.2 s.
 */
export function bandWidthFor(n: number): number {
  return n <= 1536 ? 12 : 32;
}

/** Runs stage one (when the matrix is large) and returns the job that finishes the eigenvalues. */
export async function reduceGram(
  backend: ComputeBackend,
  gram: Float32Array | Float64Array,
  n: number,
  type: ElemType,
  opts: { band?: number; times?: ReductionTimes; signal?: AbortSignal } = {},
): Promise<EigenJob> {
  if (n <= DENSE_MAX) return { kind: 'dense', n, a: Float64Array.from(gram) };
  const b = opts.band ?? bandWidthFor(n);
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

/** Below this Gram size one Gemm is as fast as the blocked graph (and blocks would be tiny). */
const BLOCKED_GRAM_MIN = 256;

/**
 * The Gram of D = W - base on its smaller side (D D^T for rows <= cols, else D^T D), k = min(rows, cols):
 * its eigenvalues are the squared singular values of D. Large Grams are computed from lower blocks
 * only (deltaGramBlockedGraph); W and base are tensors [rows, cols] of the same type.
 */
export async function deltaGram(backend: ComputeBackend, W: ort.Tensor, base: ort.Tensor, rows: number, cols: number): Promise<Float32Array | Float64Array> {
  const type = W.type as ElemType;
  const side = rows <= cols ? 'rows' : 'cols';
  const k = Math.min(rows, cols);
  if (k < BLOCKED_GRAM_MIN) return (await backend.run(deltaGramGemmGraph(type, side), { W, base }))['G']!.data as Float32Array | Float64Array;
  const split = new ort.Tensor('int64', BigInt64Array.from(gramBlockSizes(k), BigInt), [gramBlockSizes(k).length]);
  return (await backend.run(deltaGramBlockedGraph(type, side), { W, base, split }))['G']!.data as Float32Array | Float64Array;
}

/**
 * Singular values, descending (length min(rows, cols)), of one matrix [rows, cols]: scaled when its
 * norm needs it, Gram on the smaller side (lower blocks), stage one here, the rest on the eigen
 * pool; s = sqrt(max(0, lambda)). The per-matrix entry point for callers without a mean to subtract
 * (the overlay's deltas).
 */
export async function singularValues(backend: ComputeBackend, data: Float32Array, rows: number, cols: number, opts: { signal?: AbortSignal } = {}): Promise<Float64Array> {
  let sq = 0;
  for (let i = 0; i < data.length; i++) sq += data[i]! * data[i]!;
  const scale = gramInputScale(Math.sqrt(sq));
  const zero = new ort.Tensor('float32', new Float32Array(rows * cols), [rows, cols]);
  const gram = await deltaGram(backend, new ort.Tensor('float32', scaled(data, scale), [rows, cols]), zero, rows, cols);
  const job = await reduceGram(backend, gram, Math.min(rows, cols), 'float32', { signal: opts.signal });
  const ev = unscaleEigenvalues((await sharedEigenPool().solve(job)).ev, scale);
  return ev.map((x) => Math.sqrt(Math.max(0, x)));
}

/** Milliseconds per stage of one delta spectrum (accumulated by callers). */
export interface SpectrumTimes {
  gramMs: number;
  panelMs: number;
  updateMs: number;
  applyMs?: number;
  chaseMs: number;
  qlMs: number;
  normsMs: number;
}

export function emptySpectrumTimes(): SpectrumTimes {
  return { gramMs: 0, panelMs: 0, updateMs: 0, chaseMs: 0, qlMs: 0, normsMs: 0 };
}

/** One expert's delta: its Frobenius norm and the eigenvalues (descending, of the unscaled delta) of its Gram. */
export interface DeltaSpectrum {
  readonly deltaNorm: number;
  readonly ev: Float64Array;
}

/** ||w - base||_F in float64 (wasm SIMD: 12 ms vs 16-26 ms for the JS loop at 2880 x 2880). */
export function deltaFrobenius(w: Float32Array, base: Float32Array): number {
  return Math.sqrt(wasmDeltaSquares(w, base));
}

/** The stage times reduceDelta adds to (MetricsTimings and SpectrumTimes both carry them). */
type ReduceTimes = Pick<SpectrumTimes, 'normsMs' | 'gramMs' | 'panelMs' | 'updateMs' | 'applyMs'>;

/**
 * Norm, Gram and stage one of w - base on `backend`: the delta's norm, the power-of-two scale its
 * Gram was taken at (float32 only; its eigenvalues are to be unscaled), and the job that finishes the
 * eigenvalues (chase and tridiagonal). `baseTensor`, when given, is base as a [rows, cols] tensor of
 * `type` (callers that reduce many experts against one base build it once).
 */
export async function reduceDelta(
  backend: ComputeBackend,
  w: Float32Array,
  base: Float32Array,
  rows: number,
  cols: number,
  opts: { type: ElemType; band?: number; times: ReduceTimes; signal?: AbortSignal; baseTensor?: ort.Tensor },
): Promise<{ deltaNorm: number; scale: number; job: EigenJob }> {
  const { type, times } = opts;
  let t0 = performance.now();
  const deltaNorm = deltaFrobenius(w, base);
  const scale = type === 'float32' ? gramInputScale(deltaNorm) : 1;
  times.normsMs += performance.now() - t0;
  const toTensor = (x: Float32Array) => (type === 'float32' ? new ort.Tensor('float32', x, [rows, cols]) : new ort.Tensor('float64', Float64Array.from(x), [rows, cols]));
  t0 = performance.now();
  const baseT = scale === 1 && opts.baseTensor ? opts.baseTensor : toTensor(scaled(base, scale));
  const gram = await deltaGram(backend, toTensor(scaled(w, scale)), baseT, rows, cols);
  times.gramMs += performance.now() - t0;
  const job = await reduceGram(backend, gram, Math.min(rows, cols), type, { band: opts.band, times, signal: opts.signal });
  return { deltaNorm, scale, job };
}

/**
 * The delta spectrum of one expert with every stage on this thread: reduceDelta, then the chase
 * and the tridiagonal eigenvalues inline. What a spectrum-pool thread runs per expert (each thread
 * owns a one-thread CPU backend).
 */
export async function deltaSpectrumHere(
  backend: ComputeBackend,
  w: Float32Array,
  base: Float32Array,
  rows: number,
  cols: number,
  opts: { type: ElemType; band?: number; times: SpectrumTimes },
): Promise<DeltaSpectrum> {
  const { deltaNorm, scale, job } = await reduceDelta(backend, w, base, rows, cols, opts);
  const r = solveEigenJob(job);
  opts.times.chaseMs += r.chaseMs;
  opts.times.qlMs += r.qlMs;
  if (!r.ev.every(Number.isFinite)) throw new Error('eigenvalues are not finite');
  return { deltaNorm, ev: unscaleEigenvalues(r.ev, scale) };
}
