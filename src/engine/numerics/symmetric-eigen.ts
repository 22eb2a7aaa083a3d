/**
 * Eigenvalues of a real symmetric matrix, the operator ONNX lacks: Householder reduction to
 * tridiagonal form, then implicit QL with Wilkinson shifts (eigenvalues only), in float64.
 *
 * The reduction works on the lower triangle, row-major, and fuses each step's rank-2 update with the
 * next step's symmetric matrix-vector product, so every step streams the active triangle through
 * memory once (the work is memory-bound: this halves the traffic of the textbook two passes).
 */

/** Eigenvalues of the n x n symmetric matrix `a` (row-major; only the lower triangle is read; `a` is overwritten). */
export function symmetricEigenvalues(a: Float64Array, n: number): Float64Array {
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  tridiagonalize(a, n, d, e);
  tridiagonalQL(d, e);
  return d.sort((x, y) => y - x);
}

/** One Householder step's data: H = I - u u^T / h reflects row i's entries 0..i-1 onto entry i-1. */
interface Reflector {
  readonly i: number;
  readonly h: number;
}

/**
 * Computes the reflector for row i from its (already updated) entries 0..i-1 into u; sets e[i].
 * Returns null when no reflection is needed (the row is already reduced).
 */
function makeReflector(a: Float64Array, n: number, i: number, u: Float64Array, e: Float64Array): Reflector | null {
  const l = i - 1;
  const row = i * n;
  let scale = 0;
  for (let k = 0; k <= l; k++) scale += Math.abs(a[row + k]!);
  if (l === 0 || scale === 0) {
    e[i] = a[row + l]!;
    return null;
  }
  let sigma = 0;
  for (let k = 0; k <= l; k++) {
    const v = a[row + k]! / scale;
    u[k] = v;
    sigma += v * v;
  }
  const f = u[l]!;
  const g = f >= 0 ? -Math.sqrt(sigma) : Math.sqrt(sigma);
  e[i] = scale * g;
  u[l] = f - g;
  return { i, h: sigma - f * g };
}

/** p = A u over rows/cols 0..l (lower triangle, row-wise): the stand-alone symmetric product. */
function symv(a: Float64Array, n: number, l: number, u: Float64Array, p: Float64Array): void {
  p.fill(0, 0, l + 1);
  for (let j = 0; j <= l; j++) symvRow(a, j * n, j, u, p);
}

function symvRow(a: Float64Array, rj: number, j: number, u: Float64Array, p: Float64Array): void {
  const uj = u[j]!;
  let acc = 0;
  for (let k = 0; k < j; k++) {
    const ajk = a[rj + k]!;
    acc += ajk * u[k]!;
    p[k]! += ajk * uj;
  }
  p[j]! += acc + a[rj + j]! * uj;
}

/** Turns p = A u into q = p/h - (u^T p / 2h^2) u, so that the update is A -= u q^T + q u^T. */
function toUpdateVector(r: Reflector, u: Float64Array, p: Float64Array): void {
  const l = r.i - 1;
  let kf = 0;
  for (let j = 0; j <= l; j++) {
    p[j]! /= r.h;
    kf += u[j]! * p[j]!;
  }
  const hh = kf / (r.h + r.h);
  for (let j = 0; j <= l; j++) p[j]! -= hh * u[j]!;
}

function updateRow(a: Float64Array, rj: number, j: number, u: Float64Array, q: Float64Array): void {
  const uj = u[j]!;
  const qj = q[j]!;
  for (let k = 0; k <= j; k++) a[rj + k]! -= uj * q[k]! + qj * u[k]!;
}

/**
 * Reduces to tridiagonal T = Q^T A Q: diagonal d, subdiagonal e[1..n-1] (e[0] = 0), from the last
 * row up. Each step's rank-2 update of rows 0..l-1 is fused with the next step's symmetric product
 * (the next reflector only needs row l, which is updated first).
 */
export function tridiagonalize(a: Float64Array, n: number, d: Float64Array, e: Float64Array): void {
  let u = new Float64Array(n);
  let q = new Float64Array(n);
  let u2 = new Float64Array(n);
  let p2 = new Float64Array(n);
  let current = n > 1 ? makeReflector(a, n, n - 1, u, e) : null;
  let havePFor = -1; // the step whose p (in q) is already computed by a fused pass
  for (let i = n - 1; i >= 1; i--) {
    const l = i - 1;
    if (current === null) {
      d[i] = a[i * n + i]!;
      current = l >= 1 ? makeReflector(a, n, l, u, e) : null;
      continue;
    }
    if (havePFor !== i) symv(a, n, l, u, q);
    toUpdateVector(current, u, q);
    updateRow(a, l * n, l, u, q); // row l first: the next reflector is built from it
    const next = l >= 1 ? makeReflector(a, n, l, u2, e) : null;
    if (next !== null) p2.fill(0, 0, l);
    for (let j = 0; j < l; j++) {
      updateRow(a, j * n, j, u, q);
      if (next !== null) symvRow(a, j * n, j, u2, p2);
    }
    d[i] = a[i * n + i]!;
    havePFor = next !== null ? l : -1;
    [u, u2] = [u2, u];
    [q, p2] = [p2, q];
    current = next;
  }
  d[0] = a[0]!;
  e[0] = 0;
}

/** Implicit QL with Wilkinson shifts on (d, e); e[i] couples d[i-1] and d[i]. Eigenvalues left in d. */
export function tridiagonalQL(d: Float64Array, e: Float64Array): void {
  const n = d.length;
  for (let i = 1; i < n; i++) e[i - 1] = e[i]!;
  e[n - 1] = 0;
  for (let l = 0; l < n; l++) {
    let iter = 0;
    for (;;) {
      let m = l;
      for (; m < n - 1; m++) {
        const dd = Math.abs(d[m]!) + Math.abs(d[m + 1]!);
        if (Math.abs(e[m]!) <= Number.EPSILON * dd) break;
      }
      if (m === l) break;
      if (++iter > 60) throw new Error('tridiagonal QL did not converge');
      let g = (d[l + 1]! - d[l]!) / (2 * e[l]!);
      let r = Math.hypot(g, 1);
      g = d[m]! - d[l]! + e[l]! / (g + (g >= 0 ? Math.abs(r) : -Math.abs(r)));
      let s = 1;
      let c = 1;
      let pp = 0;
      let i = m - 1;
      for (; i >= l; i--) {
        const f = s * e[i]!;
        const b = c * e[i]!;
        r = Math.hypot(f, g);
        e[i + 1] = r;
        if (r === 0) {
          d[i + 1]! -= pp;
          e[m] = 0;
          break;
        }
        s = f / r;
        c = g / r;
        g = d[i + 1]! - pp;
        r = (d[i]! - g) * s + 2 * c * b;
        pp = s * r;
        d[i + 1] = g + pp;
        g = c * r - b;
      }
      if (r === 0 && i >= l) continue;
      d[l]! -= pp;
      e[l] = g;
      e[m] = 0;
    }
  }
}
