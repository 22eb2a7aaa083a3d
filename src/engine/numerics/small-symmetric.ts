/**
 * Eigen-decomposition of a SMALL symmetric matrix with eigenvectors: cyclic Jacobi in float64.
 * Used for Rayleigh-Ritz projections (size = subspace width, at most a few hundred), where its
 * O(l^3) per sweep is negligible and its accuracy (relative, orthogonal to working precision) is the point.
 */

/** Eigenvalues descending and the matching eigenvectors as columns of vectors [l, l] row-major. `a` (row-major, full) is overwritten. */
export function jacobiEigen(a: Float64Array, l: number): { values: Float64Array; vectors: Float64Array } {
  const v = new Float64Array(l * l);
  for (let i = 0; i < l; i++) v[i * l + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    let diag = 0;
    for (let i = 0; i < l; i++) {
      diag += a[i * l + i]! ** 2;
      for (let j = i + 1; j < l; j++) off += a[i * l + j]! ** 2;
    }
    if (off <= 1e-30 * diag || off === 0) break;
    for (let p = 0; p < l - 1; p++) for (let q = p + 1; q < l; q++) rotate(a, v, l, p, q);
  }
  const order = Array.from({ length: l }, (_, i) => i).sort((x, y) => a[y * l + y]! - a[x * l + x]!);
  const values = Float64Array.from(order, (i) => a[i * l + i]!);
  const vectors = new Float64Array(l * l);
  for (let c = 0; c < l; c++) for (let r = 0; r < l; r++) vectors[r * l + c] = v[r * l + order[c]!]!;
  return { values, vectors };
}

/** One Jacobi rotation zeroing a[p][q] (Golub & Van Loan, sym.schur2), applied to a and accumulated into v. */
function rotate(a: Float64Array, v: Float64Array, l: number, p: number, q: number): void {
  const apq = a[p * l + q]!;
  if (apq === 0) return;
  const app = a[p * l + p]!;
  const aqq = a[q * l + q]!;
  const tau = (aqq - app) / (2 * apq);
  const t = (tau >= 0 ? 1 : -1) / (Math.abs(tau) + Math.sqrt(1 + tau * tau));
  const c = 1 / Math.sqrt(1 + t * t);
  const s = t * c;
  for (let k = 0; k < l; k++) {
    const akp = a[k * l + p]!;
    const akq = a[k * l + q]!;
    a[k * l + p] = c * akp - s * akq;
    a[k * l + q] = s * akp + c * akq;
  }
  for (let k = 0; k < l; k++) {
    const apk = a[p * l + k]!;
    const aqk = a[q * l + k]!;
    a[p * l + k] = c * apk - s * aqk;
    a[q * l + k] = s * apk + c * aqk;
  }
  for (let k = 0; k < l; k++) {
    const vkp = v[k * l + p]!;
    const vkq = v[k * l + q]!;
    v[k * l + p] = c * vkp - s * vkq;
    v[k * l + q] = s * vkp + c * vkq;
  }
}
