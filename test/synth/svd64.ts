/** A slow, exact float64 reference: singular values by one-sided Jacobi (Hestenes), for test-sized matrices. */
export function singularValues64(a: ArrayLike<number>, rows: number, cols: number): number[] {
  // Work on the orientation with fewer columns: columns are orthogonalised pairwise.
  const tall = rows >= cols;
  const m = tall ? rows : cols;
  const n = tall ? cols : rows;
  const c: Float64Array[] = Array.from({ length: n }, (_, j) => Float64Array.from({ length: m }, (_, i) => (tall ? a[i * cols + j]! : a[j * cols + i]!)));
  for (let sweep = 0; sweep < 60; sweep++) {
    let rotated = false;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const x = c[p]!;
        const y = c[q]!;
        let alpha = 0;
        let beta = 0;
        let gamma = 0;
        for (let i = 0; i < m; i++) {
          alpha += x[i]! * x[i]!;
          beta += y[i]! * y[i]!;
          gamma += x[i]! * y[i]!;
        }
        if (Math.abs(gamma) <= 1e-15 * Math.sqrt(alpha * beta) || gamma === 0) continue;
        rotated = true;
        const zeta = (beta - alpha) / (2 * gamma);
        const t = Math.sign(zeta || 1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
        const cs = 1 / Math.sqrt(1 + t * t);
        const sn = cs * t;
        for (let i = 0; i < m; i++) {
          const xi = x[i]!;
          const yi = y[i]!;
          x[i] = cs * xi - sn * yi;
          y[i] = sn * xi + cs * yi;
        }
      }
    }
    if (!rotated) break;
  }
  return c.map((col) => Math.sqrt(col.reduce((s, v) => s + v * v, 0))).sort((u, v) => v - u);
}

/** Smallest k with cumulative sigma^2 >= t of the total. */
export function energyRank(s: readonly number[], t: number): number {
  const total = s.reduce((a, x) => a + x * x, 0);
  let acc = 0;
  for (let k = 0; k < s.length; k++) {
    acc += s[k]! * s[k]!;
    if (acc >= t * total) return k + 1;
  }
  return s.length;
}
