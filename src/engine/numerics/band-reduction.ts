/**
 * Stage one of the two-stage symmetric reduction: dense symmetric -> band (lower bandwidth b), the
 * blocked Householder scheme of LAPACK's sy2sb. Each panel of b columns is QR-factorised in
 * float64 in JS (O(p b^2), small), and the two-sided trailing update Q^T A Q, where all the O(n^3)
 * work is, runs as matrix-matrix products in ONNX Runtime (graphs.ts, bandStepGraph).
 */
import { ort, type ComputeBackend } from './backend';
import { throwIfCancelled } from './cancel';
import { BandMatrix } from './band-tridiagonal';
import { APPLY_BLOCKS, bandStepGraph, deferredApplyGraph, deferredPanelGraph, gramBlockSizes } from './graphs';
import { reflect } from './householder';
import { wasmPanelQR } from '../kernels/wasm-kernels';
import type { ElemType } from './onnx/graph';

type Real = Float32Array | Float64Array;

/** The panel's reflectors in compact WY form, Q = H_0 ... H_{k-1} = I - V T V^T, and its R factor. */
interface PanelQR {
  readonly rows: number;
  readonly k: number;
  readonly v: Float64Array; // [rows, k] row-major, unit lower trapezoidal
  readonly t: Float64Array; // [k, k] upper triangular
  readonly r: Float64Array; // [k, b] row-major, upper trapezoidal
  readonly identity: boolean; // every tau was 0: Q = I, no update needed
}

/** The factorisation kernel: QR of the column-major panel pc [rows, b] in place (v below the diagonal, R on and above), returning tau and T. */
export type PanelKernel = (pc: Float64Array, rows: number, b: number) => { tau: Float64Array; t: Float64Array };

/** Householder QR of the row-major panel [rows, b] (copied to float64 column-major first); the kernel is wasm SIMD unless told otherwise. */
export function panelQR(panel: ArrayLike<number>, rows: number, b: number, kernel: PanelKernel = wasmPanelQR): PanelQR {
  const pc = new Float64Array(rows * b);
  for (let i = 0; i < rows; i++) for (let j = 0; j < b; j++) pc[j * rows + i] = panel[i * b + j]!;
  const k = Math.min(rows, b);
  const { tau, t } = kernel(pc, rows, b);
  const vOut = new Float64Array(rows * k);
  for (let j = 0; j < k; j++) {
    vOut[j * k + j] = 1;
    for (let i = j + 1; i < rows; i++) vOut[i * k + j] = pc[j * rows + i]!;
  }
  const r = new Float64Array(k * b);
  for (let i = 0; i < k; i++) for (let j = i; j < b; j++) r[i * b + j] = pc[j * rows + i]!;
  return { rows, k, v: vOut, t, r, identity: tau.every((x) => x === 0) };
}

/** The JavaScript reference of the panel kernel (the wasm one, wasm/kernels.as.ts, is tested against it). */
export const jsPanelQR: PanelKernel = (pc, rows, b) => {
  const k = Math.min(rows, b);
  const tau = new Float64Array(k);
  const v = new Float64Array(rows);
  for (let j = 0; j < k; j++) {
    const col = j * rows;
    const len = rows - j;
    tau[j] = reflect(pc, col + j, 1, len, v);
    pc.set(v.subarray(1, len), col + j + 1); // keep v below the diagonal, R on and above it
    if (tau[j] === 0) continue;
    for (let c = j + 1; c < b; c++) {
      const cc = c * rows + j;
      let s = pc[cc]!;
      for (let i = 1; i < len; i++) s += v[i]! * pc[cc + i]!;
      s *= tau[j]!;
      pc[cc]! -= s;
      for (let i = 1; i < len; i++) pc[cc + i]! -= s * v[i]!;
    }
  }
  return { tau, t: triangularFactor(pc, rows, k, tau) };
};

/** T of the compact WY form (LAPACK larft, forward, columnwise): T[0:j, j] = -tau_j T[0:j, 0:j] V[:, 0:j]^T v_j. */
function triangularFactor(pc: Float64Array, rows: number, k: number, tau: Float64Array): Float64Array {
  const t = new Float64Array(k * k);
  const z = new Float64Array(k);
  for (let j = 0; j < k; j++) {
    t[j * k + j] = tau[j]!;
    if (tau[j] === 0) continue;
    // z_i = v_i . v_j over rows >= j (v_j is zero above row j, one at row j)
    for (let i = 0; i < j; i++) {
      const ci = i * rows;
      const cj = j * rows;
      let s = pc[ci + j]!;
      for (let r = j + 1; r < rows; r++) s += pc[ci + r]! * pc[cj + r]!;
      z[i] = s;
    }
    for (let i = 0; i < j; i++) {
      let s = 0;
      for (let l = i; l < j; l++) s += t[i * k + l]! * z[l]!;
      t[i * k + j] = -tau[j]! * s;
    }
  }
  return t;
}

/** Lower triangle of the row-major block [size, size] (leading dimension ld) into the band at offset (o, o). */
function storeDiagonalBlock(band: BandMatrix, block: ArrayLike<number>, ld: number, size: number, o: number): void {
  for (let j = 0; j < size; j++) for (let i = j; i < size; i++) band.set(o + i, o + j, block[i * ld + j]!);
}

/** R (upper trapezoidal [k, b]) sits below the diagonal block: A(o+b+i, o+j) = R[i, j]. */
function storePanelR(band: BandMatrix, qr: PanelQR, b: number, o: number): void {
  for (let i = 0; i < qr.k; i++) for (let j = i; j < b; j++) band.set(o + b + i, o + j, qr.r[i * b + j]!);
}

/** Q^T A Q for a small trailing block, in JS float64 (the last step, p <= b: not worth a session call). */
function smallTwoSidedUpdate(a: Float64Array, p: number, qr: PanelQR): void {
  const { k, v, t } = qr;
  const vt = new Float64Array(p * k);
  for (let i = 0; i < p; i++) for (let j = 0; j < k; j++) {
    let s = 0;
    for (let l = 0; l <= j; l++) s += v[i * k + l]! * t[l * k + j]!;
    vt[i * k + j] = s;
  }
  const x = new Float64Array(p * k);
  for (let i = 0; i < p; i++) for (let j = 0; j < k; j++) {
    let s = 0;
    for (let l = 0; l < p; l++) s += a[i * p + l]! * vt[l * k + j]!;
    x[i * k + j] = s;
  }
  const m = new Float64Array(k * k);
  for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) {
    let s = 0;
    for (let l = 0; l < p; l++) s += vt[l * k + i]! * x[l * k + j]!;
    m[i * k + j] = s;
  }
  for (let i = 0; i < p; i++) for (let j = 0; j < k; j++) {
    let s = 0;
    for (let l = 0; l < k; l++) s += v[i * k + l]! * m[l * k + j]!;
    x[i * k + j]! -= 0.5 * s; // x is now W
  }
  for (let i = 0; i < p; i++) for (let j = 0; j < p; j++) {
    let s = 0;
    for (let l = 0; l < k; l++) s += x[i * k + l]! * v[j * k + l]! + v[i * k + l]! * x[j * k + l]!;
    a[i * p + j]! -= s;
  }
}

function tensor(type: ElemType, data: Float64Array, dims: number[]): ort.Tensor {
  return type === 'float32' ? new ort.Tensor('float32', Float32Array.from(data), dims) : new ort.Tensor('float64', data, dims);
}

/** Time spent per part, for the bench (milliseconds, accumulated). */
export interface ReductionTimes {
  panelMs: number;
  updateMs: number;
  /** The part of updateMs spent in deferred group updates (the rank-2K applies). */
  applyMs?: number;
}

/** Panels per deferred group (K = GROUP * b columns of V and W accumulate before one trailing update). */
export const GROUP = 8;

/**
 * Reduces the symmetric n x n matrix `a` (row-major, full, both triangles) to a band matrix with the
 * same eigenvalues. `a` is not modified. Updates run in `type` precision in ORT; panels in float64.
 * While the trailing matrix is large, panels go in groups whose trailing updates are deferred and
 * applied once per group (deferredGroup); the last few panels take one full update each.
 */
export async function denseToBand(
  backend: ComputeBackend,
  a: Real,
  n: number,
  b: number,
  type: ElemType,
  opts: { times?: ReductionTimes; signal?: AbortSignal; deferred?: boolean; group?: number } = {},
): Promise<BandMatrix> {
  const band = new BandMatrix(n, b);
  const group = opts.group ?? GROUP;
  let o = 0; // offset of the matrix still to reduce, a0 [size, size]
  let a0 = a;
  if (opts.deferred !== false) {
    while (n - o >= (group + 4) * b) {
      a0 = await deferredGroup(backend, type, b, group, a0, n - o, o, band, opts);
      o += group * b;
    }
  }
  await panelByPanel(backend, type, b, a0, n - o, o, band, opts);
  return band;
}

/** Stage one one panel at a time, each with its full two-sided trailing update: the matrix a [n, n] at offset o of the band. */
async function panelByPanel(backend: ComputeBackend, type: ElemType, b: number, a: Real, n: number, o: number, band: BandMatrix, opts: { times?: ReductionTimes; signal?: AbortSignal }): Promise<void> {
  const { times, signal } = opts;
  if (n <= b + 1) {
    storeDiagonalBlock(band, a, n, n, o);
    return;
  }
  const graph = bandStepGraph(type, b);
  // Split the input into the first diagonal block, the panel below it and the trailing matrix.
  let p = n; // size of the matrix still to reduce, at offset n - p
  let panel: ArrayLike<number> = cut(a, n, b, n - b, 0, b);
  let trail: Real = cut(a, n, b, n - b, b, n - b) as Real;
  storeDiagonalBlock(band, a, n, b, o);
  for (;;) {
    throwIfCancelled(signal);
    const off = o + n - p;
    const q = p - b; // rows of the panel = size of the trailing matrix
    let t0 = performance.now();
    const qr = panelQR(panel, q, b);
    storePanelR(band, qr, b, off);
    if (times) times.panelMs += performance.now() - t0;
    if (q <= b) {
      // last step: the trailing matrix is one diagonal block
      const last = Float64Array.from(trail);
      if (!qr.identity) smallTwoSidedUpdate(last, q, qr);
      storeDiagonalBlock(band, last, q, q, off + b);
      return;
    }
    t0 = performance.now();
    const out = qr.identity
      ? { diag: cut(trail, q, 0, b, 0, b), panel: cut(trail, q, b, q - b, 0, b), trail: cut(trail, q, b, q - b, b, q - b) }
      : await runStep(backend, graph, type, trail, q, qr);
    if (times) times.updateMs += performance.now() - t0;
    storeDiagonalBlock(band, out.diag, b, b, off + b);
    panel = out.panel;
    trail = out.trail as Real;
    p = q;
  }
}

const int64 = (...x: number[]) => new ort.Tensor('int64', BigInt64Array.from(x, BigInt), [x.length]);

/**
 * `group` panels of the matrix a0 [P, P] (at offset o of the band) with their trailing updates
 * deferred: each panel costs one ORT call that reads a0 once and returns narrow outputs (its W and
 * the next panel's updated columns, graphs.ts deferredPanelGraph); the group's rank-2K update is
 * applied once at the end. Returns the trailing matrix [P - K, P - K] for what follows.
 * L = [Vacc Wacc] and R = [Wacc Vacc] ([P, 2K]) are filled here, panel by panel.
 */
async function deferredGroup(backend: ComputeBackend, type: ElemType, b: number, group: number, a0: Real, P: number, o: number, band: BandMatrix, opts: { times?: ReductionTimes; signal?: AbortSignal }): Promise<Real> {
  const { times, signal } = opts;
  const K = group * b;
  const K2 = 2 * K;
  const alloc = (len: number): Real => (type === 'float32' ? new Float32Array(len) : new Float64Array(len));
  const asTensor = (x: Real, dims: number[]) => (x instanceof Float32Array ? new ort.Tensor('float32', x, dims) : new ort.Tensor('float64', x, dims));
  const lacc = alloc(P * K2);
  const racc = alloc(P * K2);
  const vi = alloc(P * b);
  const A = asTensor(a0, [P, P]);
  const graph = deferredPanelGraph(type, b);
  let cols: Real = cut(a0, P, 0, P, 0, b); // the current panel's columns, all rows [P, b]
  for (let i = 0; i < group; i++) {
    throwIfCancelled(signal);
    const c = i * b;
    const q = P - c - b; // panel rows (>= 4b here: the group only runs on large matrices)
    let t0 = performance.now();
    storeDiagonalBlock(band, cols.subarray(c * b), b, b, o + c);
    const qr = panelQR(cols.subarray((c + b) * b), q, b);
    storePanelR(band, qr, b, o + c);
    vi.fill(0);
    vi.set(qr.v.subarray(0, q * b), (c + b) * b);
    if (times) times.panelMs += performance.now() - t0;
    t0 = performance.now();
    const out = await backend.run(graph, { A, L: asTensor(lacc, [P, K2]), R: asTensor(racc, [P, K2]), Vi: asTensor(vi, [P, b]), Ti: tensor(type, qr.t, [b, b]), s: int64(c + b), e: int64(c + 2 * b) });
    const wi = out['Wi']!.data as Real;
    // Rows above the panel's reflectors never matter (only the trailing block is kept): zero, not garbage.
    for (let r = c + b; r < P; r++) {
      const row = r * K2;
      for (let j = 0; j < b; j++) {
        const v = vi[r * b + j]!;
        const w = wi[r * b + j]!;
        lacc[row + c + j] = v;
        lacc[row + K + c + j] = w;
        racc[row + c + j] = w;
        racc[row + K + c + j] = v;
      }
    }
    cols = out['C']!.data as Real;
    if (times) times.updateMs += performance.now() - t0;
  }
  const t0 = performance.now();
  const feeds: Record<string, ort.Tensor> = { A, L: asTensor(lacc, [P, K2]), R: asTensor(racc, [P, K2]) };
  applyBounds(K, P).forEach((x, i) => (feeds[`at${i}`] = int64(x)));
  const out = await backend.run(deferredApplyGraph(type), feeds);
  if (times) {
    times.updateMs += performance.now() - t0;
    times.applyMs = (times.applyMs ?? 0) + performance.now() - t0;
  }
  return out['trail']!.data as Real;
}

/** Boundaries of the apply's row blocks in A0: k, then near-equal parts of P - k (multiples of 16 where possible), P. */
function applyBounds(k: number, P: number): number[] {
  const sizes = gramBlockSizes(P - k, APPLY_BLOCKS);
  const out = [k];
  for (const s of sizes) out.push(out[out.length - 1]! + s);
  return out;
}

async function runStep(backend: ComputeBackend, graph: ReturnType<typeof bandStepGraph>, type: ElemType, trail: Real, q: number, qr: PanelQR): Promise<{ diag: Real; panel: Real; trail: Real }> {
  const A = type === 'float32' ? new ort.Tensor('float32', trail as Float32Array, [q, q]) : new ort.Tensor('float64', trail as Float64Array, [q, q]);
  const out = await backend.run(graph, { A, V: tensor(type, qr.v, [q, qr.k]), T: tensor(type, qr.t, [qr.k, qr.k]) });
  return { diag: out['diag']!.data as Real, panel: out['panel']!.data as Real, trail: out['trail']!.data as Real };
}

/** Rows r0..r0+rows-1, columns c0..c0+cols-1 of the row-major matrix (leading dimension ld), as a new contiguous array. */
function cut(a: Real, ld: number, r0: number, rows: number, c0: number, cols: number): Real {
  const out = a instanceof Float32Array ? new Float32Array(rows * cols) : new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) out.set(a.subarray((r0 + i) * ld + c0, (r0 + i) * ld + c0 + cols), i * cols);
  return out;
}
