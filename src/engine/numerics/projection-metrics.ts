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
 * Memory does not grow with E: pass one streams blocks of rows of every expert (RowBlockSource, by
 * byte range) and accumulates the base in float64, the raw norms and the E x E inner products; pass
 * two reads each analysed expert again, alone (the next one is read while this one is reduced),
 * and computes its delta's norm and spectrum. In-memory experts go through the same two passes.
 */
import { isMoeInspectorError, MoeInspectorError } from '../errors';
import type { ExpertMatrix, RowBlockSource } from '../layouts/types';
import { transpose } from '../layouts/tensor-read';
import { ort, type ComputeBackend } from './backend';
import { throwIfCancelled } from './cancel';
import { sharedEigenPool } from './eigen-pool';
import { reduceDelta, scaled, unscaleEigenvalues, gramInputScale } from './gram-spectrum';
import { sharedSpectrumPool, spectrumThreadPlan, threadsFit, type SpectrumPool } from './spectrum-pool';
import { WasmAccumulator } from '../kernels/wasm-kernels';
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
  cosineMs: number; // pass one: the E x E inner products in ORT
  normsMs: number; // pass one: base and norm accumulation in JS; pass two: delta norms
  readMs: number; // waiting for reads and decoding (pass one; pass two's reads overlap the previous expert's reduction, only the wait counts)
  applyMs?: number; // stage one: the part of updateMs in deferred group applies
  deltaNormsMs?: number; // pass two: the delta norms (on the spectrum threads)
}

export function emptyTimings(): MetricsTimings {
  return { gramMs: 0, panelMs: 0, updateMs: 0, chaseMs: 0, qlMs: 0, cosineMs: 0, normsMs: 0, readMs: 0 };
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
  /**
   * Where the spectra run on the CPU provider: by default on the spectrum pool, one expert per
   * core, when the threads' copies fit THREADS_MEMORY_BUDGET, else here; 'threads' forces the pool,
   * 'here' this thread with ORT's own threads and the chase on the eigen pool (the path the CUDA
   * provider always takes, and the fallback when threads cannot start).
   */
  readonly spectraOn?: 'threads' | 'here';
}

/** One projection's experts as the two passes read them. */
export interface ExpertStream {
  readonly numExperts: number;
  /** [out, in] of one expert. */
  readonly rows: number;
  readonly cols: number;
  /** Pass one: blocks of rows of every expert. */
  readonly blocks: RowBlockSource;
  /** Pass two: one whole expert, [out, in] row-major. */
  readExpert(j: number): Promise<Float32Array>;
}

export interface StreamOptions extends MetricsOptions {
  /** Float32 bytes pass one may hold for one block of every expert (default 32 MiB); at least one row each. */
  readonly blockBytes?: number;
  /** Read every expert's stored bytes once, expert by expert, before pass one (a hub model's range cache then serves both passes). */
  readonly prefetch?: boolean;
  /** Pass one's progress: rows of every expert done, of `total`. */
  readonly onBlocks?: (rowsDone: number, total: number) => void;
  /** Prefetch progress: experts whose bytes were read, of `total`. */
  readonly onPrefetch?: (done: number, total: number) => void;
}

/** Columns of the flattened experts per ORT inner-product call: [E, chunk] float32 stays at 32 MiB. */
const GRAM_CHUNK_BYTES = 32 << 20;
const DEFAULT_BLOCK_BYTES = 32 << 20;

/** How many reduced experts may wait for the eigen pool: bounds memory (each is a band, n(2b+1) doubles). */
const MAX_WAITING = 4;

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

/** Pass one's results: the mean expert ([out, in]), every expert's Frobenius norm, and <W_i, W_j> for all pairs. */
export interface RawMoments {
  readonly base: Float32Array;
  readonly expertNorms: number[];
  /** E x E, row-major, float64 sums of float32 ORT products over column chunks. */
  readonly innerProducts: Float64Array;
}

/** Reads each expert's stored bytes once (two at a time), so both passes then read from a warm cache. */
async function prefetchAll(stream: ExpertStream, opts: StreamOptions): Promise<void> {
  let next = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    while (next < stream.numExperts) {
      throwIfCancelled(opts.signal);
      await stream.blocks.prefetch(next++);
      opts.onPrefetch?.(++done, stream.numExperts);
    }
  };
  await Promise.all([worker(), worker()]);
}

/**
 * Pass one over blocks of rows of every expert: base = (1/E) sum_j W_j (float64, summed in expert
 * order), ||W_j||^2 (float64), and the inner products, fed to ORT in the same [E, chunk] column
 * chunks of the flattened experts whatever the block size.
 */
export async function rawMoments(backend: ComputeBackend, stream: ExpertStream, opts: StreamOptions = {}): Promise<RawMoments> {
  const E = stream.numExperts;
  const { rows, cols, transposed } = stream.blocks;
  const n = rows * cols;
  const t = opts.timings;
  if (opts.prefetch) {
    const t0 = performance.now();
    await prefetchAll(stream, opts);
    if (t) t.readMs += performance.now() - t0;
  }
  const chunk = Math.max(1, Math.min(n, Math.floor(GRAM_CHUNK_BYTES / (4 * E))));
  const rowsPerBlock = Math.max(1, Math.min(rows, Math.floor((opts.blockBytes ?? DEFAULT_BLOCK_BYTES) / (4 * E * cols))));
  const acc = WasmAccumulator.fits(n) ? new WasmAccumulator(n) : jsAccumulator(n);
  const norm2 = new Float64Array(E);
  const gram = new Float64Array(E * E);
  const x = new Float32Array(E * chunk);
  const chunkSq = new Float64Array(E); // each expert's sum of squares inside the chunk being filled
  let filled = 0;
  const addGram = async (view: Float32Array, c: number): Promise<void> => {
    const t0 = performance.now();
    // One power-of-two scale for every expert of this chunk (cosines are scale-free; the norms are not
    // known before pass one ends, so the scale is the chunk's): keeps the float32 products finite and normal.
    const scale = gramInputScale(Math.sqrt(Math.max(...chunkSq)));
    chunkSq.fill(0);
    const out = await backend.run(rowGramGraph('float32'), { X: new ort.Tensor('float32', scaled(view, scale), [E, c]) });
    const g = out['G']!.data as Float32Array;
    for (let i = 0; i < E * E; i++) gram[i]! += g[i]! / (scale * scale);
    if (t) t.cosineMs += performance.now() - t0;
  };
  for (let r0 = 0; r0 < rows; r0 += rowsPerBlock) {
    throwIfCancelled(opts.signal);
    const count = Math.min(rowsPerBlock, rows - r0);
    const len = count * cols;
    let t0 = performance.now();
    const blocks = await Promise.all(Array.from({ length: E }, (_, j) => stream.blocks.read(j, r0, count)));
    if (t) t.readMs += performance.now() - t0;
    for (const [j, b] of blocks.entries()) {
      if (b.length !== len) throw new MoeInspectorError('layout', `expert ${j}: rows ${r0}..${r0 + count - 1} decoded to ${b.length} values, expected ${count}x${cols}`);
    }
    const off = r0 * cols;
    // The block in segments that end where an inner-product chunk fills: each segment's sums of
    // squares (from the accumulation) add up to the expert's norm and to the chunk's row norms.
    for (let pos = 0; pos < len; ) {
      const take = Math.min(chunk - filled, len - pos);
      t0 = performance.now();
      for (let j = 0; j < E; j++) {
        const segment = blocks[j]!.subarray(pos, pos + take);
        const sq = acc.add(off + pos, segment);
        norm2[j]! += sq;
        chunkSq[j]! += sq;
        x.set(segment, j * chunk + filled);
      }
      if (t) t.normsMs += performance.now() - t0;
      filled += take;
      pos += take;
      if (filled === chunk) {
        await addGram(x, chunk);
        filled = 0;
      }
    }
    opts.onBlocks?.(r0 + count, rows);
  }
  if (filled > 0) {
    const last = new Float32Array(E * filled);
    for (let j = 0; j < E; j++) last.set(x.subarray(j * chunk, j * chunk + filled), j * filled);
    await addGram(last, filled);
  }
  const sums = acc.sums();
  const mean = new Float32Array(n);
  for (let i = 0; i < n; i++) mean[i] = sums[i]! / E;
  return {
    base: transposed ? transpose(mean, rows, cols) : mean,
    expertNorms: Array.from(norm2, Math.sqrt),
    innerProducts: gram,
  };
}

/** The JavaScript stand-in for WasmAccumulator (values past its 2^28 limit). */
function jsAccumulator(n: number): Pick<WasmAccumulator, 'add' | 'sums'> {
  const acc = new Float64Array(n);
  return {
    add: (offset, x) => {
      let s = 0;
      for (let i = 0; i < x.length; i++) {
        const v = x[i]!;
        acc[offset + i]! += v;
        s += v * v;
      }
      return s;
    },
    sums: () => acc,
  };
}

function cosineOf(gram: Float64Array, norms: readonly number[]): ProjectionMetrics['cosine'] {
  const E = norms.length;
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
 * Pass two: each chosen expert read again, alone (the next read overlaps this one's reduction), its
 * delta norm, and its delta spectrum (eigenvalues of the Gram, descending): Gram and stage one in
 * ORT here, the rest on the eigen pool. Each delta is scaled by a power of two when its norm is
 * outside float32's safe range for a Gram (gramInputScale), and its eigenvalues are scaled back.
 */
async function deltaSpectra(backend: ComputeBackend, stream: ExpertStream, base: Float32Array, indices: readonly number[], opts: MetricsOptions): Promise<{ eig: Float64Array[]; deltaNorms: number[] }> {
  // Large matrices (DeepSeek-V3's 2048 x 7168) run here: side by side their copies would break the
  // memory bound, and there the spectrum threads were not faster (measured: 8 experts 11.7 s vs 12.3 s).
  const fits = threadsFit(stream.rows, stream.cols, spectrumThreadPlan().threads);
  const pool = backend.executionProvider === 'cpu' && opts.spectraOn !== 'here' && (fits || opts.spectraOn === 'threads') ? await sharedSpectrumPool() : null;
  return pool ? deltaSpectraOnPool(pool, stream, base, indices, opts) : deltaSpectraHere(backend, stream, base, indices, opts);
}

/** Pass two's reads: expert j, whole, checked against the stream's shape; the next read starts while the caller works. */
function expertReader(stream: ExpertStream): (j: number) => Promise<Float32Array> {
  return (j) => {
    const p = stream.readExpert(j).then((w) => {
      if (w.length !== stream.rows * stream.cols) throw new MoeInspectorError('layout', `expert ${j} decoded to ${w.length} values, expected ${stream.rows}x${stream.cols}`);
      return w;
    });
    p.catch(() => undefined); // awaited by the caller; a read abandoned by a cancel must not surface as unhandled
    return p;
  };
}

/**
 * Pass two on the spectrum pool: the base goes to every thread once, each expert is read here and
 * solved whole on the next free thread. At most threads + 1 experts are in flight (memory), so a
 * thread that finishes finds the next expert already read.
 */
async function deltaSpectraOnPool(pool: SpectrumPool, stream: ExpertStream, base: Float32Array, indices: readonly number[], opts: MetricsOptions): Promise<{ eig: Float64Array[]; deltaNorms: number[] }> {
  const type = opts.precision ?? 'float32';
  const timings = opts.timings;
  const read = expertReader(stream);
  const session = pool.withBase(base, stream.rows, stream.cols);
  const eig: Float64Array[] = new Array(indices.length);
  const deltaNorms: number[] = new Array(indices.length);
  const inFlight = new Set<Promise<void>>();
  let done = 0;
  try {
    let next = indices.length > 0 ? read(indices[0]!) : null;
    for (let pos = 0; pos < indices.length; pos++) {
      throwIfCancelled(opts.signal);
      const j = indices[pos]!;
      const t0 = performance.now();
      const w = await next!;
      if (timings) timings.readMs += performance.now() - t0;
      next = pos + 1 < indices.length ? read(indices[pos + 1]!) : null;
      while (inFlight.size > pool.threads) await Promise.race(inFlight);
      throwIfCancelled(opts.signal);
      const p = session.solve(w, type, opts.band).then(
        (r) => {
          eig[pos] = r.ev;
          deltaNorms[pos] = r.deltaNorm;
          if (timings) {
            for (const k of ['gramMs', 'panelMs', 'updateMs', 'chaseMs', 'qlMs'] as const) timings[k] += r.times[k];
            timings.applyMs = (timings.applyMs ?? 0) + (r.times.applyMs ?? 0);
            timings.deltaNormsMs = (timings.deltaNormsMs ?? 0) + r.times.normsMs;
          }
          opts.onProgress?.(++done, indices.length);
        },
        (e: unknown) => {
          throw solverFailure(opts.label, j, e);
        },
      );
      const tracked = p.finally(() => inFlight.delete(tracked));
      tracked.catch(() => undefined); // the failure surfaces through the waits below
      inFlight.add(tracked);
    }
    await Promise.all(inFlight);
  } finally {
    session.drop();
  }
  throwIfCancelled(opts.signal);
  return { eig, deltaNorms };
}

/** Pass two on this thread: Gram and stage one in ORT here, the chase and the tridiagonal eigenvalues on the eigen pool. */
async function deltaSpectraHere(backend: ComputeBackend, stream: ExpertStream, base: Float32Array, indices: readonly number[], opts: MetricsOptions): Promise<{ eig: Float64Array[]; deltaNorms: number[] }> {
  const { rows, cols } = stream;
  const type = opts.precision ?? 'float32';
  const toTensor = (x: Float32Array) => (type === 'float32' ? new ort.Tensor('float32', x, [rows, cols]) : new ort.Tensor('float64', Float64Array.from(x), [rows, cols]));
  const baseT = toTensor(base);
  const pool = sharedEigenPool();
  const timings = opts.timings;
  const results: Promise<Float64Array>[] = [];
  const deltaNorms: number[] = [];
  const waiting = new Set<Promise<unknown>>();
  let done = 0;
  const read = expertReader(stream);
  let next = indices.length > 0 ? read(indices[0]!) : null;
  for (let pos = 0; pos < indices.length; pos++) {
    throwIfCancelled(opts.signal);
    // Only the wait counts as reading: the read itself overlapped the previous expert's reduction.
    const t0 = performance.now();
    const j = indices[pos]!;
    const w = await next!;
    if (timings) timings.readMs += performance.now() - t0;
    next = pos + 1 < indices.length ? read(indices[pos + 1]!) : null;
    while (waiting.size >= MAX_WAITING) await Promise.race(waiting);
    let reduced: Awaited<ReturnType<typeof reduceDelta>>;
    try {
      reduced = await reduceDelta(backend, w, base, rows, cols, { type, band: opts.band, times: timings ?? emptyTimings(), signal: opts.signal, baseTensor: baseT });
    } catch (e) {
      throw solverFailure(opts.label, j, e);
    }
    const { deltaNorm, scale, job } = reduced;
    deltaNorms.push(deltaNorm);
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
  const eig = await Promise.all(results);
  throwIfCancelled(opts.signal);
  return { eig, deltaNorms };
}

function checkExperts(experts: readonly ExpertMatrix[]): void {
  if (experts.length < 2) throw new MoeInspectorError('usage', `projection metrics need at least 2 experts, got ${experts.length}`);
  const { rows, cols } = experts[0]!;
  for (const [j, e] of experts.entries()) {
    if (e.rows !== rows || e.cols !== cols || e.data.length !== rows * cols) {
      throw new MoeInspectorError('layout', `expert ${j} is ${e.rows}x${e.cols} (${e.data.length} values), expert 0 is ${rows}x${cols}`);
    }
  }
}

function checkIndices(indices: readonly number[], numExperts: number): void {
  for (const j of indices) {
    if (!Number.isInteger(j) || j < 0 || j >= numExperts) throw new MoeInspectorError('usage', `expert index ${j} to analyse is outside 0..${numExperts - 1}`);
  }
}

/** Experts already in memory as a stream (tests, the spectra bench): the same two passes. */
export function inMemoryStream(experts: readonly ExpertMatrix[]): ExpertStream {
  checkExperts(experts);
  const { rows, cols } = experts[0]!;
  return {
    numExperts: experts.length,
    rows,
    cols,
    blocks: { rows, cols, transposed: false, read: async (j, first, count) => experts[j]!.data.subarray(first * cols, (first + count) * cols), prefetch: async () => undefined },
    readExpert: async (j) => experts[j]!.data,
  };
}

export async function projectionMetrics(backend: ComputeBackend, experts: readonly ExpertMatrix[], opts: MetricsOptions = {}): Promise<ProjectionMetrics> {
  return streamingProjectionMetrics(backend, inMemoryStream(experts), opts);
}

/** The metrics of one projection in two passes over the checkpoint (see the module comment). */
export async function streamingProjectionMetrics(backend: ComputeBackend, stream: ExpertStream, opts: StreamOptions = {}): Promise<ProjectionMetrics> {
  if (stream.numExperts < 2) throw new MoeInspectorError('usage', `projection metrics need at least 2 experts, got ${stream.numExperts}`);
  const indices = opts.analyze ?? Array.from({ length: stream.numExperts }, (_, j) => j);
  checkIndices(indices, stream.numExperts);
  throwIfCancelled(opts.signal);
  const { rows, cols } = stream;
  const moments = await rawMoments(backend, stream, opts);
  const cosine = cosineOf(moments.innerProducts, moments.expertNorms);
  const { eig, deltaNorms } = await deltaSpectra(backend, stream, moments.base, indices, opts);
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
    expertNorms: moments.expertNorms,
    deltaNorms,
    singularValueFloor: singularValueFloor(sigmaMax, Math.max(rows, cols), opts.precision ?? 'float32'),
    executionProvider: backend.executionProvider,
  };
}
