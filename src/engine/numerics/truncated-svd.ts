/**
 * Top-r singular triplets of an expert delta (for overlay factors): block subspace iteration on the
 * Gram of the smaller side in ONNX Runtime, Rayleigh-Ritz in float64 (Jacobi), iterated until the
 * top r Ritz pairs' residuals reach the float32 resolution, then checked: the reported relative
 * error is computed from the factors themselves (||D - U S V^T||_F / ||D||_F), not inferred.
 */
import { MoeInspectorError } from '../errors';
import type { ExpertMatrix } from '../layouts/types';
import { ort, type ComputeBackend } from './backend';
import { deltaGramGemmGraph, matmulGraph } from './graphs';
import { jacobiEigen } from './small-symmetric';

export interface TruncatedSvd {
  /** Left singular vectors [out, r] row-major. */
  readonly u: Float32Array;
  /** Singular values, descending, length r. */
  readonly s: Float64Array;
  /** Right singular vectors [in, r] row-major. */
  readonly v: Float32Array;
  /** sum_{i<=r} s_i^2 / ||D||_F^2. */
  readonly energyKept: number;
  /** ||D - U diag(s) V^T||_F / ||D||_F, measured on the factors (0 for a zero delta). */
  readonly relativeError: number;
  /** Subspace iterations run (diagnostics). */
  readonly iterations: number;
}

/** Residual tolerance relative to the largest Ritz value: near float32 resolution of the Gram. */
const RESIDUAL_TOL = 2e-6;
const MAX_ITERATIONS = 300;

function gaussian(seed: number): () => number {
  let a = seed >>> 0;
  const u = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
}

/** Orthonormalises the columns of q [k, l] (row-major) in place: modified Gram-Schmidt twice, float64. Zero columns are replaced by fresh random ones. */
function orthonormalize(q: Float64Array, k: number, l: number, rand: () => number): void {
  const col = new Float64Array(k);
  for (let j = 0; j < l; j++) {
    for (let i = 0; i < k; i++) col[i] = q[i * l + j]!;
    for (let attempt = 0; ; attempt++) {
      const before = Math.sqrt(col.reduce((s, x) => s + x * x, 0));
      for (let pass = 0; pass < 2; pass++) {
        for (let c = 0; c < j; c++) {
          let d = 0;
          for (let i = 0; i < k; i++) d += q[i * l + c]! * col[i]!;
          for (let i = 0; i < k; i++) col[i]! -= d * q[i * l + c]!;
        }
      }
      const norm = Math.sqrt(col.reduce((s, x) => s + x * x, 0));
      if (norm > 1e-10 * before && norm > 0) {
        for (let i = 0; i < k; i++) q[i * l + j] = col[i]! / norm;
        break;
      }
      if (attempt > 5) throw new Error('subspace orthonormalisation failed');
      for (let i = 0; i < k; i++) col[i] = rand(); // dependent column: the Gram's range is exhausted here
    }
  }
}

function f32(data: Float64Array | Float32Array, dims: number[]): ort.Tensor {
  return new ort.Tensor('float32', data instanceof Float32Array ? data : Float32Array.from(data), dims);
}

export async function truncatedSvd(backend: ComputeBackend, delta: ExpertMatrix, rank: number): Promise<TruncatedSvd> {
  const { rows, cols, data } = delta;
  const k = Math.min(rows, cols);
  if (!Number.isInteger(rank) || rank < 0 || rank > k) throw new MoeInspectorError('usage', `truncated SVD rank must be an integer in 0..${k}, got ${rank}`);
  let total = 0;
  for (let i = 0; i < data.length; i++) total += data[i]! * data[i]!;
  if (rank === 0 || total === 0) {
    return { u: new Float32Array(rows * rank), s: new Float64Array(rank), v: new Float32Array(cols * rank), energyKept: total === 0 ? 1 : 0, relativeError: total === 0 ? 0 : 1, iterations: 0 };
  }
  const side = rows <= cols ? 'rows' : 'cols'; // Gram on the smaller side, k x k
  const zero = new Float32Array(rows * cols);
  const gram = (await backend.run(deltaGramGemmGraph('float32', side), { W: f32(data, [rows, cols]), base: f32(zero, [rows, cols]) }))['G']!;
  const { vectors: q, values, iterations } = await subspaceIteration(backend, gram, k, rank);
  // q [k, rank]: eigenvectors of the Gram = singular vectors of the smaller side.
  const D = f32(data, [rows, cols]);
  const Q = f32(q, [k, rank]);
  // The other side: B = D V (rows side = cols) or B = D^T U; column norms are the singular values.
  const B = side === 'cols'
    ? ((await backend.run(matmulGraph('float32', 2, 2), { A: D, B: Q }))['C']!.data as Float32Array)
    : ((await backend.run(transposedProductGraph(), { A: D, B: Q }))['C']!.data as Float32Array);
  const other = side === 'cols' ? rows : cols;
  const s = new Float64Array(rank);
  const unit = new Float32Array(other * rank);
  for (let j = 0; j < rank; j++) {
    let n2 = 0;
    for (let i = 0; i < other; i++) n2 += B[i * rank + j]! ** 2;
    s[j] = Math.sqrt(n2);
    for (let i = 0; i < other; i++) unit[i * rank + j] = s[j]! > 0 ? B[i * rank + j]! / s[j]! : 0;
  }
  void values;
  const small = Float32Array.from(q);
  const u = side === 'cols' ? unit : small;
  const v = side === 'cols' ? small : unit;
  const kept = s.reduce((a, x) => a + x * x, 0);
  return { u, s, v, energyKept: Math.min(1, kept / total), relativeError: await reconstructionError(backend, delta, u, s, v, rank, total), iterations };
}

/** C = A^T B for A [m, n], B [m, r]. */
function transposedProductGraph() {
  return {
    key: 'matmul.transA.float32',
    inputs: [
      { name: 'A', type: 'float32' as const, dims: ['m', 'n'] },
      { name: 'B', type: 'float32' as const, dims: ['m', 'r'] },
    ],
    outputs: [{ name: 'C', type: 'float32' as const, dims: ['n', 'r'] }],
    nodes: [{ op: 'Gemm', inputs: ['A', 'B'], outputs: ['C'], attrs: [{ name: 'transA', int: 1 }] }],
  };
}

/** ||D - U diag(s) V^T||_F / ||D||_F: the product in ORT, the difference accumulated in float64. */
async function reconstructionError(backend: ComputeBackend, delta: ExpertMatrix, u: Float32Array, s: Float64Array, v: Float32Array, r: number, total: number): Promise<number> {
  const { rows, cols, data } = delta;
  const us = new Float32Array(rows * r);
  for (let i = 0; i < rows; i++) for (let j = 0; j < r; j++) us[i * r + j] = u[i * r + j]! * s[j]!;
  const vt = new Float32Array(r * cols);
  for (let i = 0; i < cols; i++) for (let j = 0; j < r; j++) vt[j * cols + i] = v[i * r + j]!;
  const approx = (await backend.run(matmulGraph('float32', 2, 2), { A: f32(us, [rows, r]), B: f32(vt, [r, cols]) }))['C']!.data as Float32Array;
  let err = 0;
  for (let i = 0; i < data.length; i++) err += (data[i]! - approx[i]!) ** 2;
  return Math.sqrt(err / total);
}

/**
 * Top-r eigenpairs of the symmetric PSD matrix G [k, k] (an ORT tensor) by block subspace iteration
 * with a guard band of extra vectors (convergence rate (lambda_{l+1}/lambda_r) per iteration).
 */
async function subspaceIteration(backend: ComputeBackend, gram: ort.Tensor, k: number, r: number): Promise<{ vectors: Float64Array; values: Float64Array; iterations: number }> {
  const l = Math.min(k, r + Math.max(8, Math.ceil(r / 2)));
  const rand = gaussian(12345 + k + r);
  let q: Float64Array = Float64Array.from({ length: k * l }, rand);
  orthonormalize(q, k, l, rand);
  const product = matmulGraph('float32', 2, 2);
  for (let it = 1; ; it++) {
    const z = Float64Array.from((await backend.run(product, { A: gram, B: f32(q, [k, l]) }))['C']!.data as Float32Array);
    // Rayleigh-Ritz: H = Q^T G Q = Q^T Z (float64), its eigenvectors rotate Q and Z.
    const h = new Float64Array(l * l);
    for (let i = 0; i < k; i++) for (let a = 0; a < l; a++) {
      const qa = q[i * l + a]!;
      for (let b = 0; b < l; b++) h[a * l + b]! += qa * z[i * l + b]!;
    }
    for (let a = 0; a < l; a++) for (let b = 0; b < a; b++) h[a * l + b] = h[b * l + a] = 0.5 * (h[a * l + b]! + h[b * l + a]!);
    const { values, vectors } = jacobiEigen(h, l);
    const qr = rotateBasis(q, vectors, k, l);
    const zr = rotateBasis(z, vectors, k, l);
    // residual of the top r Ritz pairs: || G q_i - theta_i q_i ||
    let worst = 0;
    for (let j = 0; j < r; j++) {
      let res = 0;
      for (let i = 0; i < k; i++) res += (zr[i * l + j]! - values[j]! * qr[i * l + j]!) ** 2;
      worst = Math.max(worst, Math.sqrt(res));
    }
    const scale = Math.max(values[0]!, Number.MIN_VALUE);
    if (worst <= RESIDUAL_TOL * scale || it >= MAX_ITERATIONS || l === k) {
      const vectorsR = new Float64Array(k * r);
      for (let i = 0; i < k; i++) for (let j = 0; j < r; j++) vectorsR[i * r + j] = qr[i * l + j]!;
      return { vectors: vectorsR, values: values.slice(0, r), iterations: it };
    }
    q = zr; // next basis: G applied to the Ritz vectors, re-orthonormalised
    orthonormalize(q, k, l, rand);
  }
}

function rotateBasis(x: Float64Array, vectors: Float64Array, k: number, l: number): Float64Array {
  const out = new Float64Array(k * l);
  for (let i = 0; i < k; i++) for (let a = 0; a < l; a++) {
    const xa = x[i * l + a]!;
    if (xa === 0) continue;
    for (let b = 0; b < l; b++) out[i * l + b]! += xa * vectors[a * l + b]!;
  }
  return out;
}
