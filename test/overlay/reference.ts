/**
 * The overlay tests' independent float64 references: a full SVD by one-sided Jacobi (slow, exact),
 * a DeltaSolver built on it, an expert-function forward pass and a safetensors header reader.
 */
import { readFileSync } from 'node:fs';
import type { DeltaSolver } from '../../src/engine/overlay/delta-solver';
import type { ExpertActivation, ExpertMatrix } from '../../src/engine/layouts/types';

/** A = U diag(s) V^T, s descending: U [m, k], V [n, k] row-major, k = min(m, n). */
export function jacobiSvd(a: ArrayLike<number>, m: number, n: number): { u: Float64Array; s: Float64Array; v: Float64Array; k: number } {
  const transposed = m < n;
  const rows = transposed ? n : m;
  const cols = transposed ? m : n;
  const c: Float64Array[] = Array.from({ length: cols }, (_, j) => Float64Array.from({ length: rows }, (_, i) => (transposed ? a[j * n + i]! : a[i * n + j]!)));
  const w: Float64Array[] = Array.from({ length: cols }, (_, j) => Float64Array.from({ length: cols }, (_, i) => (i === j ? 1 : 0)));
  for (let sweep = 0; sweep < 80; sweep++) {
    let off = 0;
    for (let p = 0; p < cols - 1; p++) {
      for (let q = p + 1; q < cols; q++) {
        const cp = c[p]!;
        const cq = c[q]!;
        let alpha = 0;
        let beta = 0;
        let gamma = 0;
        for (let i = 0; i < rows; i++) {
          alpha += cp[i]! * cp[i]!;
          beta += cq[i]! * cq[i]!;
          gamma += cp[i]! * cq[i]!;
        }
        if (gamma === 0 || Math.abs(gamma) <= 1e-15 * Math.sqrt(alpha * beta)) continue;
        off = Math.max(off, Math.abs(gamma) / Math.sqrt(alpha * beta));
        const zeta = (beta - alpha) / (2 * gamma);
        const t = Math.sign(zeta || 1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
        const cs = 1 / Math.sqrt(1 + t * t);
        const sn = cs * t;
        for (const [x, y] of [[cp, cq], [w[p]!, w[q]!]] as const) {
          for (let i = 0; i < x.length; i++) {
            const a0 = x[i]!;
            const b0 = y[i]!;
            x[i] = cs * a0 - sn * b0;
            y[i] = sn * a0 + cs * b0;
          }
        }
      }
    }
    if (off < 1e-15) break;
  }
  const order = c.map((v, j) => ({ j, s: Math.hypot(...v) })).sort((x, y) => y.s - x.s);
  const k = cols;
  const s = Float64Array.from(order, (o) => o.s);
  const left = new Float64Array(rows * k); // normalised columns
  const right = new Float64Array(cols * k); // rotation columns
  order.forEach((o, kk) => {
    for (let i = 0; i < rows; i++) left[i * k + kk] = o.s === 0 ? 0 : c[o.j]![i]! / o.s;
    for (let i = 0; i < cols; i++) right[i * k + kk] = w[o.j]![i]!;
  });
  // A^T = left diag(s) right^T  =>  A = right diag(s) left^T.
  return transposed ? { u: right, s, v: left, k } : { u: left, s, v: right, k };
}

/** The exact solver: Jacobi SVD in float64, factors rounded to float32 only at the end. */
export const exactSolver: DeltaSolver = {
  async spectrum(delta: ExpertMatrix) {
    return jacobiSvd(delta.data, delta.rows, delta.cols).s;
  },
  async factors(delta: ExpertMatrix, rank: number) {
    const { u, s, v, k } = jacobiSvd(delta.data, delta.rows, delta.cols);
    const us = new Float32Array(delta.rows * rank);
    const vt = new Float32Array(rank * delta.cols);
    for (let i = 0; i < delta.rows; i++) for (let r = 0; r < rank; r++) us[i * rank + r] = u[i * k + r]! * s[r]!;
    for (let r = 0; r < rank; r++) for (let c = 0; c < delta.cols; c++) vt[r * delta.cols + c] = v[c * k + r]!;
    return { us, vt, s: s.slice(0, rank) };
  },
};

export interface F64Expert {
  readonly gate: { w: ArrayLike<number>; b: ArrayLike<number> | null };
  readonly up: { w: ArrayLike<number>; b: ArrayLike<number> | null };
  readonly down: { w: ArrayLike<number>; b: ArrayLike<number> | null };
  readonly H: number;
  readonly I: number;
}

/** y = down(act(gate x, up x)) for each token row of x [T, H], in float64 (written from the formulas, not the engine). */
export function expertForwardF64(e: F64Expert, x: ArrayLike<number>, T: number, act: ExpertActivation): Float64Array {
  const { H, I } = e;
  const y = new Float64Array(T * H);
  const h = new Float64Array(I);
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < I; i++) {
      let g = e.gate.b ? e.gate.b[i]! : 0;
      let u = e.up.b ? e.up.b[i]! : 0;
      for (let k = 0; k < H; k++) {
        g += e.gate.w[i * H + k]! * x[t * H + k]!;
        u += e.up.w[i * H + k]! * x[t * H + k]!;
      }
      if (act.kind === 'gpt-oss') {
        const gc = Math.min(g, act.limit);
        const uc = Math.max(-act.limit, Math.min(u, act.limit));
        h[i] = (uc + 1) * gc / (1 + Math.exp(-act.alpha * gc));
      } else {
        h[i] = (g / (1 + Math.exp(-g))) * u;
      }
    }
    for (let o = 0; o < H; o++) {
      let acc = e.down.b ? e.down.b[o]! : 0;
      for (let i = 0; i < I; i++) acc += e.down.w[o * I + i]! * h[i]!;
      y[t * H + o] = acc;
    }
  }
  return y;
}

export function relErr(y: ArrayLike<number>, yHat: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < y.length; i++) {
    num += (y[i]! - yHat[i]!) ** 2;
    den += y[i]! ** 2;
  }
  return Math.sqrt(num / den);
}

/** Tensor name -> {dtype, shape, bytes}, parsed straight from the file's header (not through the engine). */
export function headerOf(path: string): Map<string, { dtype: string; shape: number[]; bytes: number }> {
  const buf = readFileSync(path);
  const n = Number(buf.readBigUInt64LE(0));
  const json = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const out = new Map<string, { dtype: string; shape: number[]; bytes: number }>();
  for (const [k, v] of Object.entries(json)) if (k !== '__metadata__') out.set(k, { dtype: v.dtype, shape: v.shape, bytes: v.data_offsets[1] - v.data_offsets[0] });
  return out;
}
