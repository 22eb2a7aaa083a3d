/**
 * The per-projection metrics of type detection, over all experts:
 *   base = mean of all E experts; delta_j = W_j - base
 *   singular values of delta_j = sqrt of the eigenvalues of its Gram on the smaller side (ORT MatMul,
 *   then the symmetric eigen-solver); effective rank at t = smallest k with cumulative s^2 share >= t
 *   cosine = inner products of the flattened RAW weights (ORT), normalised; mean / population std over i<j.
 */
import { MoeInspectorError } from '../errors';
import type { ExpertMatrix } from '../layouts/types';
import { ort, type ComputeBackend } from './backend';
import { sharedEigenPool } from './eigen-pool';
import { deltaGramGraph, rowGramGraph } from './graphs';
import type { ElemType } from './onnx/graph';

export const ENERGY_THRESHOLDS = ['0.9', '0.95', '0.99'] as const;
export type EnergyThreshold = (typeof ENERGY_THRESHOLDS)[number];

export interface ProjectionMetrics {
  readonly shape: [number, number];
  readonly maxRank: number;
  readonly expertsAnalyzed: number[];
  readonly singularValues: Float64Array[];
  readonly effectiveRank: Record<EnergyThreshold, number[]>;
  readonly cosine: { mean: number; std: number; matrix: number[][] };
  readonly expertNorms: number[];
  readonly deltaNorms: number[];
  readonly singularValueFloor: number;
}

export interface MetricsOptions {
  /** Expert indices whose delta spectra to compute (all by default). The base always uses every expert. */
  readonly analyze?: readonly number[];
  readonly signal?: AbortSignal;
  readonly onProgress?: (done: number, total: number) => void;
  /** Gram precision: float32 (default, fast) or float64 (reference checks). */
  readonly precision?: ElemType;
}

const EPS32 = 2 ** -23;

function checkCancelled(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new MoeInspectorError('cancelled', 'analysis cancelled');
}

export function meanExpert(experts: readonly ExpertMatrix[]): Float32Array {
  const n = experts[0]!.data.length;
  const acc = new Float64Array(n);
  for (const e of experts) for (let i = 0; i < n; i++) acc[i]! += e.data[i]!;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = acc[i]! / experts.length;
  return out;
}

function norm(x: Float32Array, minus?: Float32Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) {
    const v = minus ? x[i]! - minus[i]! : x[i]!;
    s += v * v;
  }
  return Math.sqrt(s);
}

/** Smallest k (1-based) whose cumulative share of sum(s^2) reaches t; 0 for an all-zero spectrum. */
export function effectiveRank(eigenvaluesDesc: ArrayLike<number>, t: number): number {
  let total = 0;
  for (let i = 0; i < eigenvaluesDesc.length; i++) total += Math.max(0, eigenvaluesDesc[i]!);
  if (total === 0) return 0;
  let cum = 0;
  for (let i = 0; i < eigenvaluesDesc.length; i++) {
    cum += Math.max(0, eigenvaluesDesc[i]!);
    if (cum / total >= t) return i + 1;
  }
  return eigenvaluesDesc.length;
}

async function cosineMatrix(backend: ComputeBackend, experts: readonly ExpertMatrix[], norms: number[], signal?: AbortSignal): Promise<ProjectionMetrics['cosine']> {
  const E = experts.length;
  const n = experts[0]!.data.length;
  const chunk = Math.max(1, Math.min(n, Math.floor((64 << 20) / (4 * E)))); // ~64 MB per call
  const gram = new Float64Array(E * E);
  const x = new Float32Array(E * chunk);
  for (let c0 = 0; c0 < n; c0 += chunk) {
    checkCancelled(signal);
    const c = Math.min(chunk, n - c0);
    const view = c === chunk ? x : new Float32Array(E * c);
    for (let j = 0; j < E; j++) view.set(experts[j]!.data.subarray(c0, c0 + c), j * c);
    const out = await backend.run(rowGramGraph('float32'), { X: new ort.Tensor('float32', view, [E, c]) });
    const g = out['G']!.data as Float32Array;
    for (let i = 0; i < E * E; i++) gram[i]! += g[i]!;
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

/** Delta spectra (eigenvalues of the Gram, descending) for the chosen experts; Grams in ORT, eigenproblems on the pool. */
async function deltaSpectra(backend: ComputeBackend, experts: readonly ExpertMatrix[], base: Float32Array, indices: readonly number[], opts: MetricsOptions): Promise<Float64Array[]> {
  const { rows, cols } = experts[0]!;
  const side = rows <= cols ? 'rows' : 'cols';
  const k = Math.min(rows, cols);
  const type = opts.precision ?? 'float32';
  const graph = deltaGramGraph(type, side);
  const baseT = type === 'float32' ? new ort.Tensor('float32', base, [rows, cols]) : new ort.Tensor('float64', Float64Array.from(base), [rows, cols]);
  const pool = sharedEigenPool();
  const results: Promise<Float64Array>[] = [];
  let done = 0;
  const inFlight = new Set<Promise<unknown>>();
  for (const j of indices) {
    checkCancelled(opts.signal);
    // Bound memory: at most a few Gram matrices wait for the eigen-solver at once.
    while (inFlight.size >= 3) await Promise.race(inFlight);
    const w = experts[j]!.data;
    const feed = type === 'float32' ? new ort.Tensor('float32', w, [1, rows, cols]) : new ort.Tensor('float64', Float64Array.from(w), [1, rows, cols]);
    const out = await backend.run(graph, { W: feed, base: baseT });
    const g = Float64Array.from(out['G']!.data as Float32Array | Float64Array);
    const p = pool.eigenvalues(g, k).then((ev) => {
      opts.onProgress?.(++done, indices.length);
      return ev;
    });
    const tracked = p.finally(() => inFlight.delete(tracked));
    inFlight.add(tracked);
    results.push(p);
  }
  const spectra = await Promise.all(results);
  checkCancelled(opts.signal);
  return spectra;
}

export async function projectionMetrics(backend: ComputeBackend, experts: readonly ExpertMatrix[], opts: MetricsOptions = {}): Promise<ProjectionMetrics> {
  if (experts.length < 2) throw new MoeInspectorError('usage', `need at least 2 experts, got ${experts.length}`);
  const { rows, cols } = experts[0]!;
  for (const [j, e] of experts.entries()) {
    if (e.rows !== rows || e.cols !== cols) throw new MoeInspectorError('layout', `expert ${j} is ${e.rows}x${e.cols}, expert 0 is ${rows}x${cols}`);
  }
  const indices = opts.analyze ?? experts.map((_, j) => j);
  const base = meanExpert(experts);
  const expertNorms = experts.map((e) => norm(e.data));
  const deltaNorms = indices.map((j) => norm(experts[j]!.data, base));
  const cosine = await cosineMatrix(backend, experts, expertNorms, opts.signal);
  const eig = await deltaSpectra(backend, experts, base, indices, opts);
  const singularValues = eig.map((ev) => ev.map((x) => Math.sqrt(Math.max(0, x))));
  const ranks = Object.fromEntries(ENERGY_THRESHOLDS.map((t) => [t, eig.map((ev) => effectiveRank(ev, Number(t)))])) as Record<EnergyThreshold, number[]>;
  const sigmaMax = Math.max(0, ...singularValues.map((s) => s[0] ?? 0));
  const inner = Math.max(rows, cols);
  return {
    shape: [rows, cols],
    maxRank: Math.min(rows, cols),
    expertsAnalyzed: [...indices],
    singularValues,
    effectiveRank: ranks,
    cosine,
    expertNorms,
    deltaNorms,
    // Gram eigenvalues carry absolute error ~ eps * sqrt(inner) * sigma_max^2 (f32 accumulation):
    // singular values below sqrt of that are noise. Conservative against the measured ~3e-4 sigma_max.
    singularValueFloor: sigmaMax * Math.sqrt((opts.precision === 'float64' ? 2 ** -52 : EPS32) * Math.sqrt(inner)),
  };
}
