/**
 * Eigenvalues of a symmetric tridiagonal matrix by implicit QL with Wilkinson shifts (eigenvalues
 * only, float64), O(n^2). The last stage of every symmetric eigenproblem in this module.
 */

/** Eigenvalues, descending, of the tridiagonal matrix with diagonal d and subdiagonal e (e[i] couples d[i], d[i+1]). Inputs are not modified. */
export function tridiagonalEigenvalues(diag: ArrayLike<number>, sub: ArrayLike<number>): Float64Array {
  const n = diag.length;
  const d = Float64Array.from(diag);
  const e = new Float64Array(n);
  for (let i = 0; i + 1 < n; i++) e[i] = sub[i]!;
  implicitQL(d, e);
  return d.sort((x, y) => y - x);
}

function pythag(a: number, b: number): number {
  // Math.hypot is exact but slow in V8; our values are far from overflow (they are Gram entries).
  return Math.sqrt(a * a + b * b);
}

/** Implicit QL on (d, e), e[i] coupling d[i] and d[i+1], e[n-1] = 0. Eigenvalues left in d (unsorted). */
function implicitQL(d: Float64Array, e: Float64Array): void {
  const n = d.length;
  for (let l = 0; l < n; l++) {
    let iter = 0;
    for (;;) {
      let m = l;
      for (; m < n - 1; m++) {
        const dd = Math.abs(d[m]!) + Math.abs(d[m + 1]!);
        if (Math.abs(e[m]!) <= Number.EPSILON * dd) break;
      }
      if (m === l) break;
      if (++iter > 60) throw new Error(`tridiagonal QL did not converge (n=${n}, eigenvalue ${l})`);
      let g = (d[l + 1]! - d[l]!) / (2 * e[l]!);
      let r = pythag(g, 1);
      g = d[m]! - d[l]! + e[l]! / (g + (g >= 0 ? r : -r));
      let s = 1;
      let c = 1;
      let p = 0;
      let i = m - 1;
      let underflow = false;
      for (; i >= l; i--) {
        const f = s * e[i]!;
        const b = c * e[i]!;
        r = pythag(f, g);
        e[i + 1] = r;
        if (r === 0) {
          // deflation inside the sweep: recover and restart this eigenvalue
          d[i + 1]! -= p;
          e[m] = 0;
          underflow = true;
          break;
        }
        s = f / r;
        c = g / r;
        g = d[i + 1]! - p;
        r = (d[i]! - g) * s + 2 * c * b;
        p = s * r;
        d[i + 1] = g + p;
        g = c * r - b;
      }
      if (underflow) continue;
      d[l]! -= p;
      e[l] = g;
      e[m] = 0;
    }
  }
}
