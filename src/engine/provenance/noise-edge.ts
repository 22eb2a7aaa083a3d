/**
 * The rank test made robust to quantisation: how large the singular values of pure storage-rounding
 * noise get, from the checkpoint's own storage precision (README, "Rank above the storage noise").
 *
 * Rounding to nearest errs uniformly over the rounding interval of the stored value, width w, so
 * the per-element error variance is w^2 / 12:
 *   plain floats with p significand bits: w = ulp = 2^(floor(log2|x|) - p + 1)
 *     (BF16 p = 8, F16 p = 11, F32 p = 24; the "|x| u / sqrt(3)" rule of thumb with u = 2^-p);
 *   FP8 E4M3 with block scales s: w = s * ulp_E4M3(x / s), s = the tile's max |x| / 448;
 *   MXFP4: per 32-value block with scale 2^e (e = floor(log2 max|x|) - 2), w = 2^e times the
 *     E2M1 rounding interval of the code (0.5 for |code| <= 1.5, 0.75 at 2, 1 at 3, 1.5 at 4, 3 at 6).
 * sigma^2 = the mean of w^2/12 over an expert's elements. The delta W_j - mean_k W_k carries that
 * noise times (1 - 1/E) in variance. A random m x n matrix of iid elements with standard deviation
 * sigma has its largest singular value at sigma (sqrt(m) + sqrt(n)) (the Marchenko-Pastur /
 * Bai-Yin edge), so singular values of a delta above
 *     edge = sigma sqrt(1 - 1/E) (sqrt(m) + sqrt(n))
 * are signal, not storage noise; `signalRank` counts those above edge * (1 + EDGE_MARGIN).
 */
import type { WeightEncoding } from '../layouts/types';

/** Finite-size fluctuation of the edge (Tracy-Widom scale ~ n^(-2/3)) and non-uniform rounding: 10% head room. */
export const EDGE_MARGIN = 0.1;

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** floor(log2 |x|) for a nonzero finite float32 (subnormals: -127, close enough for a variance). */
function exponentOf(x: number): number {
  f32[0] = x;
  return ((u32[0]! >>> 23) & 0xff) - 127;
}

function plainBits(dtype: string): number | null {
  return dtype === 'BF16' ? 8 : dtype === 'F16' ? 11 : dtype === 'F32' ? 24 : dtype === 'F64' ? 53 : null;
}

/** Mean per-element rounding variance of one stored matrix [rows, cols] (decoded values), or null for an unknown encoding. */
export function roundingVariance(data: Float32Array, rows: number, cols: number, enc: WeightEncoding): number | null {
  if (enc.kind === 'plain') {
    const p = plainBits(enc.dtype);
    if (p === null) return null;
    let s = 0;
    for (let i = 0; i < data.length; i++) {
      const x = data[i]!;
      if (x === 0) continue; // exact zeros: the rounding interval is below the smallest normal, negligible
      const ulp = 2 ** (exponentOf(x) - p + 1);
      s += ulp * ulp;
    }
    return s / 12 / data.length;
  }
  if (enc.kind === 'fp8-block') return fp8BlockVariance(data, rows, cols, enc.block);
  return mxfp4Variance(data, rows, cols);
}

function fp8BlockVariance(data: Float32Array, rows: number, cols: number, block: readonly [number, number]): number {
  const [br, bc] = block;
  let s = 0;
  for (let r0 = 0; r0 < rows; r0 += br) {
    for (let c0 = 0; c0 < cols; c0 += bc) {
      const r1 = Math.min(rows, r0 + br);
      const c1 = Math.min(cols, c0 + bc);
      let max = 0;
      for (let r = r0; r < r1; r++) for (let c = c0; c < c1; c++) max = Math.max(max, Math.abs(data[r * cols + c]!));
      if (max === 0) continue;
      const scale = max / 448;
      for (let r = r0; r < r1; r++) {
        for (let c = c0; c < c1; c++) {
          const q = Math.abs(data[r * cols + c]!) / scale;
          // E4M3: 3 mantissa bits; subnormal spacing 2^-9 below 2^-6
          const ulp = q < 2 ** -6 ? 2 ** -9 : 2 ** (exponentOf(q) - 3);
          const w = ulp * scale;
          s += w * w;
        }
      }
    }
  }
  return s / 12 / data.length;
}

/** E2M1 rounding interval width of each code magnitude (midpoints to the neighbours; 6 rounds [5, 8)). */
function e2m1Interval(code: number): number {
  if (code <= 1.5) return 0.5;
  if (code === 2) return 0.75;
  if (code === 3) return 1;
  if (code === 4) return 1.5;
  return 3;
}

function mxfp4Variance(data: Float32Array, rows: number, cols: number): number {
  let s = 0;
  for (let r = 0; r < rows; r++) {
    for (let c0 = 0; c0 < cols; c0 += 32) {
      const c1 = Math.min(cols, c0 + 32);
      let max = 0;
      for (let c = c0; c < c1; c++) max = Math.max(max, Math.abs(data[r * cols + c]!));
      if (max === 0) continue;
      const scale = 2 ** (exponentOf(max) - 2);
      for (let c = c0; c < c1; c++) {
        const w = e2m1Interval(Math.abs(data[r * cols + c]!) / scale) * scale;
        s += w * w;
      }
    }
  }
  return s / 12 / data.length;
}

/** The largest singular value storage noise reaches in one expert's delta from the mean. */
export function noiseEdge(sigma: number, rows: number, cols: number, numExperts: number): number {
  return sigma * Math.sqrt(Math.max(0, 1 - 1 / numExperts)) * (Math.sqrt(rows) + Math.sqrt(cols));
}

/** Singular values (descending; possibly downsampled, positions in `index`) above edge * (1 + EDGE_MARGIN). */
export function signalRank(singularValues: readonly number[], edge: number, index?: readonly number[]): number {
  const bar = edge * (1 + EDGE_MARGIN);
  let last = -1;
  for (let k = 0; k < singularValues.length; k++) if (singularValues[k]! > bar) last = k;
  if (last < 0) return 0;
  // downsampled spectra: every value up to the last sampled position above the bar is above it too
  return index ? index[last]! + 1 : last + 1;
}
