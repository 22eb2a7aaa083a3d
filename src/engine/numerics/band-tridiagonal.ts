/**
 * Stage two of the two-stage symmetric reduction: a symmetric band matrix (lower bandwidth b) to
 * tridiagonal form by Householder bulge chasing (Lang's scheme, as in LAPACK's sb2st), float64,
 * eigenvalues only (the reflectors are applied and dropped). This is the JavaScript reference: the
 * solver runs the same algorithm in WebAssembly SIMD (wasm/kernels.as.ts, tested against this).
 *
 * Sweep c annihilates column c below the subdiagonal with one reflector. Applying it from the right
 * to the b rows below fills a triangle outside the band (the bulge); only the bulge's FIRST column
 * is annihilated by the next reflector, which is then chased down the same way. The rest of each
 * bulge lies exactly where sweep c+1 works next and is annihilated there, so no entry ever lies
 * more than 2b below the diagonal: the storage holds 2b subdiagonals.
 *
 * Cost ~6 n^2 b flops on a compact buffer of n(2b+1) doubles (cache-resident for our sizes): this
 * replaces the memory-bound O(n^3) matrix-vector work of a one-stage reduction.
 */
import { reflect } from './householder';

/** Lower band storage with room for the bulge: A(i, j) for 0 <= i - j <= 2b lives at a[j*2b + i]. */
export class BandMatrix {
  readonly stride: number;
  readonly a: Float64Array;

  constructor(
    readonly n: number,
    readonly b: number,
    a?: Float64Array,
  ) {
    this.stride = Math.max(1, 2 * b);
    const size = BandMatrix.size(n, b);
    if (a !== undefined && a.length !== size) throw new RangeError(`band buffer has ${a.length} values, n=${n} b=${b} needs ${size}`);
    this.a = a ?? new Float64Array(size);
  }

  /** Values needed: column j spans a[j*(2b+1) .. j*(2b+1)+2b]. */
  static size(n: number, b: number): number {
    return n * (Math.max(1, 2 * b) + 1);
  }

  get(i: number, j: number): number {
    return this.a[j * this.stride + i]!;
  }

  set(i: number, j: number, v: number): void {
    this.a[j * this.stride + i] = v;
  }
}

/** H A H on the symmetric diagonal block rows/cols r..r+len-1 (lower triangle stored). */
function twoSided(a: Float64Array, s: number, r: number, len: number, v: Float64Array, tau: number, w: Float64Array): void {
  // w = tau * A v, from the lower triangle: column j contributes A(i,j) v_j for i >= j and A(i,j) v_i to row j.
  for (let k = 0; k < len; k++) w[k] = 0;
  for (let j = 0; j < len; j++) {
    const col = (r + j) * s + r; // A(r+i, r+j) at col + i
    const vj = v[j]!;
    let acc = a[col + j]! * vj;
    for (let i = j + 1; i < len; i++) {
      const aij = a[col + i]!;
      w[i]! += aij * vj;
      acc += aij * v[i]!;
    }
    w[j]! += acc;
  }
  let vw = 0;
  for (let k = 0; k < len; k++) {
    w[k]! *= tau;
    vw += v[k]! * w[k]!;
  }
  const alpha = -0.5 * tau * vw;
  for (let k = 0; k < len; k++) w[k]! += alpha * v[k]!;
  // A -= v w^T + w v^T, lower triangle
  for (let j = 0; j < len; j++) {
    const col = (r + j) * s + r;
    const vj = v[j]!;
    const wj = w[j]!;
    for (let i = j; i < len; i++) a[col + i]! -= v[i]! * wj + w[i]! * vj;
  }
}

/** Rows r0..r0+m-1, columns c0..c0+len-1 times H from the right. */
function fromRight(a: Float64Array, s: number, r0: number, m: number, c0: number, len: number, v: Float64Array, tau: number, t: Float64Array): void {
  // t_i = sum_j A(r0+i, c0+j) v_j, accumulated column by column (columns are contiguous).
  for (let i = 0; i < m; i++) t[i] = 0;
  for (let j = 0; j < len; j++) {
    const col = (c0 + j) * s + r0;
    const vj = v[j]!;
    for (let i = 0; i < m; i++) t[i]! += a[col + i]! * vj;
  }
  for (let i = 0; i < m; i++) t[i]! *= tau;
  for (let j = 0; j < len; j++) {
    const col = (c0 + j) * s + r0;
    const vj = v[j]!;
    for (let i = 0; i < m; i++) a[col + i]! -= t[i]! * vj;
  }
}

/** H from the left on rows r0..r0+m-1, columns c0..c0+cols-1. */
function fromLeft(a: Float64Array, s: number, r0: number, m: number, c0: number, cols: number, v: Float64Array, tau: number): void {
  for (let j = 0; j < cols; j++) {
    const col = (c0 + j) * s + r0;
    let dot = 0;
    for (let i = 0; i < m; i++) dot += v[i]! * a[col + i]!;
    dot *= tau;
    for (let i = 0; i < m; i++) a[col + i]! -= dot * v[i]!;
  }
}

/** Reduces the band matrix (overwritten) to tridiagonal form: diagonal d[0..n-1], subdiagonal e[0..n-2]. */
export function bandToTridiagonal(band: BandMatrix): { d: Float64Array; e: Float64Array } {
  const { n, b, a, stride: s } = band;
  const v = new Float64Array(b + 1);
  const w = new Float64Array(b + 1);
  if (b > 1) {
    for (let c = 0; c + 2 < n; c++) {
      let r = c + 1;
      let len = Math.min(b, n - r);
      let tau = reflect(a, c * s + r, 1, len, v);
      for (;;) {
        if (tau !== 0) twoSided(a, s, r, len, v, tau, w);
        const below = r + len;
        const m = Math.min(b, n - below);
        if (m <= 0) break;
        if (tau !== 0) fromRight(a, s, below, m, r, len, v, tau, w);
        if (m < 2) break; // a single row below: its entry stays inside the band, no bulge
        // annihilate the bulge's first column (column r, rows below+1..), then chase that reflector
        tau = reflect(a, r * s + below, 1, m, v);
        if (tau !== 0) fromLeft(a, s, below, m, r + 1, len - 1, v, tau);
        r = below;
        len = m;
      }
    }
  }
  const d = new Float64Array(n);
  const e = new Float64Array(Math.max(0, n - 1));
  for (let i = 0; i < n; i++) d[i] = a[i * s + i]!;
  for (let i = 0; i + 1 < n; i++) e[i] = a[i * s + i + 1]!;
  return { d, e };
}
