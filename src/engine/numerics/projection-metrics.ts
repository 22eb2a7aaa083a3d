/**
 * The per-projection metrics of type detection, over all E experts of one projection:
 *   base = mean of all E experts (float64 accumulation); delta_j = W_j - base
 *   singular values of delta_j = sqrt(max(eig, 0)) of its Gram on the smaller side (D D^T or D^T D,
 *     min(out, in) square; ORT), eigenvalues by the two-stage symmetric solver
 *   effective rank at t = smallest k in 1..maxRank with sum_{i<=k} s_i^2 / sum s_i^2 >= t
 *     (energies from clipped eigenvalues; an all-zero delta has rank 0)
 *   cosine = <W_i, W_j> / (|W_i| |W_j|) over the flattened RAW weights, all experts; mean and
 *     population std over the pairs i < j
 *   norms: Frobenius.
 */
import { isMoeInspectorError, MoeInspectorError } from '../errors';
import type { ExpertMatrix } from '../layouts/types';
import { ort, type ComputeBackend } from './backend';
import { throwIfCancelled } from './cancel';
import { sharedEigenPool } from './eigen-pool';
import type { EigenJob } from './eigen-job';
import { deltaGram, gramInputScale, reduceGram, scaled, unscaleEigenvalues } from './gram-spectrum';
import { rowGramGraph } from './graphs';
import type { ElemType } from './onnx/graph';
import type { ExecutionProvider } from '../report/schema';

export const ENERGY_THRESHOLDS = ['0.9', '0.95', '0.99'] as const;
export type EnergyThreshold = (typeof ENERGY_THRESHOLDS)[number];

export interface ProjectionMetrics {
  readonly shape: [number, number];
  readonly maxRank: number;
  readonly expertsAnalyzed: number[];
  /** Per analysed expert, descending, length maxRank. */
  readonly singularValues: Float64Array[];
  readonly effectiveRank: Record<EnergyThreshold, number[]>;
  readonly cosine: { mean: number; std: number; matrix: number[][] };
  /** Frobenius norms of every expert's raw weight. */
  readonly expertNorms: number[];
  /** Frobenius norms of the analysed experts' deltas. */
  readonly deltaNorms: number[];
  /** Singular values below this are at the solver's noise level (see singularValueFloor()). */
  readonly singularValueFloor: number;
  /** Which ONNX Runtime execution provider ran the matrix products. */
  readonly executionProvider: ExecutionProvider;
}

/** Where the time went, in milliseconds (accumulated; the worker parts overlap the main thread). */
export interface MetricsTimings {
  gramMs: number;
  panelMs: number; // stage one: panel QR in JS
  updateMs: number; // stage one: trailing updates in ORT
  chaseMs: number; // stage two: bulge chasing (worker thread)
  qlMs: number; // tridiagonal QL (worker thread)
  cosineMs: number;
  normsMs: number;
}

export function emptyTimings(): MetricsTimings {
  return { gramMs: 0, panelMs: 0, updateMs: 0, chaseMs: 0, qlMs: 0, cosineMs: 0, normsMs: 0 };
}

export interface MetricsOptions {
  /** Expert indices whose delta spectra to compute (all by default). The base always uses every expert. */
  readonly analyze?: readonly number[];
  readonly signal?: AbortSignal;
  readonly onProgress?: (done: number, total: number) => void;
  /** Gram and stage-one precision: float32 (default, fast) or float64 (reference checks). */
  readonly precision?: ElemType;
  /** Stage-one band width (tuning and tests of the banded path). */
  readonly band?: number;
  readonly timings?: MetricsTimings;
  /** Names the projection in solver errors (e.g. "layer 3 gate"); the expert index is added. */
  readonly label?: string;
}

/** How many reduced experts may wait for the eigen pool: bounds memory (each is a band, n(2b+1) doubles). */
const MAX_WAITING = 4;

export function meanExpert(experts: readonly ExpertMatrix[]): Float32Array {
  const n = experts[0]!.data.length;
  const acc = new Float64Array(n);
  for (const e of experts) {
    const d = e.data;
    for (let i = 0; i < n; i++) acc[i]! += d[i]!;
  }
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = acc[i]! / experts.length;
  return out;
}

function frobenius(x: Float32Array, minus?: Float32Array): number {
  let s = 0;
  if (minus) {
    for (let i = 0; i < x.length; i++) {
      const v = x[i]! - minus[i]!;
      s += v * v;
    }
  } else for (let i = 0; i < x.length; i++) s += x[i]! * x[i]!;
  return Math.sqrt(s);
}

/** Smallest k (1-based) whose cumulative share of the clipped eigenvalue sum reaches t; 0 for an all-zero spectrum. */
export function effectiveRank(eigenvaluesDesc: ArrayLike<number>, t: number): number {
  let total = 0;
  for (let i = 0; i < eigenvaluesDesc.length; i++) total += Math.max(0, eigenvaluesDesc[i]!);
  if (total === 0) return 0;
  let cum = 0;
  for (let i = 0; i < eigenvaluesDesc.length; i++) {
    cum += Math.max(0, eigenvaluesDesc[i]!);
    if (cum >= t * total) return i + 1;
  }
  return eigenvaluesDesc.length; // rounding can leave cum a hair below total
}

/**
 * The resolution of Gram-derived singular values: sigma_max * sqrt(eps * sqrt(k)), k the inner
 * (summed) dimension of the Gram, eps that of its precision (2^-23 for float32). Rounding in the
 * Gram and in the reduction perturbs the eigenvalues of D^T D by about eps * sqrt(k) * sigma_max^2
 * (random-walk accumulation), so |s_computed - s_true| stays below this value and singular values
 * under it are noise. Measured on constructed spectra (600x400, 1024x1024, float32): the worst
 * error was 1.4e-4..2.1e-4 sigma_max, 8-12x under the floor; test/numerics checks the bound.
 */
export function singularValueFloor(sigmaMax: number, inner: number, precision: ElemType): number {
  const eps = precision === 'float64' ? 2 ** -52 : 2 ** -23;
  return sigmaMax * Math.sqrt(eps * Math.sqrt(inner));
}

async function cosineMatrix(backend: ComputeBackend, experts: readonly ExpertMatrix[], norms: number[], signal?: AbortSignal): Promise<ProjectionMetrics['cosine']> {
  const E = experts.length;
  const n = experts[0]!.data.length;
  // Inner products accumulated over column chunks: float32 inside a chunk (ORT), float64 across chunks.
  const chunk = Math.max(1, Math.min(n, Math.floor((32 << 20) / (4 * E))));
  const gram = new Float64Array(E * E);
  const x = new Float32Array(E * chunk);
  // Same scale for every expert (cosines are scale-free): keeps the float32 inner products finite and normal.
  const scale = gramInputScale(Math.max(...norms));
  for (let c0 = 0; c0 < n; c0 += chunk) {
    throwIfCancelled(signal);
    const c = Math.min(chunk, n - c0);
    const view = c === chunk ? x : new Float32Array(E * c);
    for (let j = 0; j < E; j++) {
      const src = experts[j]!.data.subarray(c0, c0 + c);
      if (scale === 1) view.set(src, j * c);
      else for (let i = 0; i < c; i++) view[j * c + i] = src[i]! * scale;
    }
    const out = await backend.run(rowGramGraph('float32'), { X: new ort.Tensor('float32', view, [E, c]) });
    const g = out['G']!.data as Float32Array;
    for (let i = 0; i < E * E; i++) gram[i]! += g[i]! / (scale * scale);
  }
  const matrix: number[][] = [];
  const pairs: number[] = [];
  for (let i = 0; i < E; i++) {
    const row: number[] = [];
    for (let j = 0; j < E; j++) {
      const d = norms[i]! * norms[j]!;
      const cos = i === j ? 1 : d === 0 ? 0 : gram[i * E + j]! / d;
      row.push(cos);
      if (j > i) pairs.push(cos);
    }
    matrix.push(row);
  }
  const mean = pairs.reduce((a, b) => a + b, 0) / Math.max(1, pairs.length);
  const std = Math.sqrt(pairs.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, pairs.length));
  return { mean, std, matrix };
}

/** A solver failure as the one error a user sees: which layer/projection (the caller's label) and which expert. */
function solverFailure(label: string | undefined, expert: number, e: unknown): unknown {
  if (isMoeInspectorError(e)) return e; // cancellation and the like pass through
  const where = label ? `${label}, expert ${expert}` : `expert ${expert}`;
  return new MoeInspectorError('numerics', `${where}: the eigenvalue solver failed (${(e as Error).message ?? e})`);
}

/**
 * Delta spectra (eigenvalues of the Gram, descending) for the chosen experts: Gram and stage one in
 * ORT here, the rest on the pool. Each delta is scaled by a power of two when its norm is outside
 * float32's safe range for a Gram (gramInputScale), and its eigenvalues are scaled back.
 */
async function deltaSpectra(backend: ComputeBackend, experts: readonly ExpertMatrix[], base: Float32Array, indices: readonly number[], deltaNorms: readonly number[], opts: MetricsOptions): Promise<Float64Array[]> {
  const { rows, cols } = experts[0]!;
  const k = Math.min(rows, cols);
  const type = opts.precision ?? 'float32';
  const toTensor = (x: Float32Array) => (type === 'float32' ? new ort.Tensor('float32', x, [rows, cols]) : new ort.Tensor('float64', Float64Array.from(x), [rows, cols]));
  const baseT = toTensor(base);
  const pool = sharedEigenPool();
  const timings = opts.timings;
  const results: Promise<Float64Array>[] = [];
  const waiting = new Set<Promise<unknown>>();
  let done = 0;
  for (const [i, j] of indices.entries()) {
    throwIfCancelled(opts.signal);
    while (waiting.size >= MAX_WAITING) await Promise.race(waiting);
    const t0 = performance.now();
    const scale = type === 'float32' ? gramInputScale(deltaNorms[i]!) : 1;
    let job: EigenJob;
    try {
      const gram = await deltaGram(backend, toTensor(scaled(experts[j]!.data, scale)), scale === 1 ? baseT : toTensor(scaled(base, scale)), rows, cols);
      if (timings) timings.gramMs += performance.now() - t0;
      job = await reduceGram(backend, gram, k, type, { band: opts.band, times: timings, signal: opts.signal });
    } catch (e) {
      throw solverFailure(opts.label, j, e);
    }
    const p = pool.solve(job).then(
      (r) => {
        if (timings) {
          timings.chaseMs += r.chaseMs;
          timings.qlMs += r.qlMs;
        }
        if (!r.ev.every(Number.isFinite)) throw new Error('eigenvalues are not finite');
        opts.onProgress?.(++done, indices.length);
        return unscaleEigenvalues(r.ev, scale);
      },
    ).catch((e: unknown) => {
      throw solverFailure(opts.label, j, e);
    });
    const tracked = p.finally(() => waiting.delete(tracked));
    tracked.catch(() => undefined); // failures surface through Promise.all below
    waiting.add(tracked);
    results.push(p);
  }
  const spectra = await Promise.all(results);
  throwIfCancelled(opts.signal);
  return spectra;
}

function checkExperts(experts: readonly ExpertMatrix[], indices: readonly number[]): void {
  if (experts.length < 2) throw new MoeInspectorError('usage', `projection metrics need at least 2 experts, got ${experts.length}`);
  const { rows, cols } = experts[0]!;
  for (const [j, e] of experts.entries()) {
    if (e.rows !== rows || e.cols !== cols || e.data.length !== rows * cols) {
      throw new MoeInspectorError('layout', `expert ${j} is ${e.rows}x${e.cols} (${e.data.length} values), expert 0 is ${rows}x${cols}`);
    }
  }
  for (const j of indices) {
    if (!Number.isInteger(j) || j < 0 || j >= experts.length) throw new MoeInspectorError('usage', `expert index ${j} to analyse is outside 0..${experts.length - 1}`);
  }
}

export async function projectionMetrics(backend: ComputeBackend, experts: readonly ExpertMatrix[], opts: MetricsOptions = {}): Promise<ProjectionMetrics> {
  const indices = opts.analyze ?? experts.map((_, j) => j);
  checkExperts(experts, indices);
  throwIfCancelled(opts.signal);
  const { rows, cols } = experts[0]!;
  const timings = opts.timings;
  let t0 = performance.now();
  const base = meanExpert(experts);
  const expertNorms = experts.map((e) => frobenius(e.data));
  const deltaNorms = indices.map((j) => frobenius(experts[j]!.data, base));
  if (timings) timings.normsMs += performance.now() - t0;
  t0 = performance.now();
  const cosine = await cosineMatrix(backend, experts, expertNorms, opts.signal);
  if (timings) timings.cosineMs += performance.now() - t0;
  const eig = await deltaSpectra(backend, experts, base, indices, deltaNorms, opts);
  const singularValues = eig.map((ev) => ev.map((x) => Math.sqrt(Math.max(0, x))));
  const effective = Object.fromEntries(ENERGY_THRESHOLDS.map((t) => [t, eig.map((ev) => effectiveRank(ev, Number(t)))])) as Record<EnergyThreshold, number[]>;
  const sigmaMax = Math.max(0, ...singularValues.map((s) => s[0] ?? 0));
  return {
    shape: [rows, cols],
    maxRank: Math.min(rows, cols),
    expertsAnalyzed: [...indices],
    singularValues,
    effectiveRank: effective,
    cosine,
    expertNorms,
    deltaNorms,
    singularValueFloor: singularValueFloor(sigmaMax, Math.max(rows, cols), opts.precision ?? 'float32'),
    executionProvider: backend.executionProvider,
  };
}
