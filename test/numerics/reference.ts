/** Independent float64 references for the numerics tests: slow, simple, exact enough. */

export function gaussian(seed: number): () => number {
  let a = seed >>> 0;
  const u = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
}

/** n x k matrix (row-major) with orthonormal columns, by Householder QR of a Gaussian matrix (f64). */
export function randomOrthonormal(n: number, k: number, seed: number): Float64Array {
  const g = gaussian(seed);
  const q: Float64Array[] = [];
  while (q.length < k) {
    const v = Float64Array.from({ length: n }, g);
    for (let pass = 0; pass < 2; pass++) {
      for (const c of q) {
        let d = 0;
        for (let i = 0; i < n; i++) d += c[i]! * v[i]!;
        for (let i = 0; i < n; i++) v[i]! -= d * c[i]!;
      }
    }
    const nv = Math.hypot(...v);
    q.push(v.map((x) => x / nv));
  }
  const out = new Float64Array(n * k);
  for (let j = 0; j < k; j++) for (let i = 0; i < n; i++) out[i * k + j] = q[j]![i]!;
  return out;
}

/** U diag(s) V^T with random orthonormal U [m, r], V [n, r]: a matrix whose singular values ARE s. */
export function withSpectrum(m: number, n: number, s: readonly number[], seed: number): Float64Array {
  const r = s.length;
  const U = randomOrthonormal(m, r, seed);
  const V = randomOrthonormal(n, r, seed + 1);
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
    let acc = 0;
    for (let k = 0; k < r; k++) acc += U[i * r + k]! * s[k]! * V[j * r + k]!;
    out[i * n + j] = acc;
  }
  return out;
}

/** Singular values (descending) by one-sided Jacobi on the columns, float64 — the slow exact reference. */
export function jacobiSingularValues(a: Float64Array, m: number, n: number): number[] {
  // Work on the side with fewer columns: singular values of A and A^T are the same.
  const [rows, cols, get] = m >= n ? [m, n, (i: number, j: number) => a[i * n + j]!] : [n, m, (i: number, j: number) => a[j * n + i]!];
  const c: Float64Array[] = Array.from({ length: cols }, (_, j) => Float64Array.from({ length: rows }, (_, i) => get(i, j)));
  for (let sweep = 0; sweep < 60; sweep++) {
    let off = 0;
    for (let p = 0; p < cols - 1; p++) for (let q = p + 1; q < cols; q++) {
      let alpha = 0, beta = 0, gamma = 0;
      const cp = c[p]!, cq = c[q]!;
      for (let i = 0; i < rows; i++) {
        alpha += cp[i]! * cp[i]!;
        beta += cq[i]! * cq[i]!;
        gamma += cp[i]! * cq[i]!;
      }
      if (gamma === 0 || Math.abs(gamma) <= 1e-15 * Math.sqrt(alpha * beta)) continue;
      off = Math.max(off, Math.abs(gamma) / Math.sqrt(alpha * beta));
      const zeta = (beta - alpha) / (2 * gamma);
      const t = Math.sign(zeta || 1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
      const cs = 1 / Math.sqrt(1 + t * t), sn = cs * t;
      for (let i = 0; i < rows; i++) {
        const x = cp[i]!, y = cq[i]!;
        cp[i] = cs * x - sn * y;
        cq[i] = sn * x + cs * y;
      }
    }
    if (off < 1e-14) break;
  }
  return c.map((v) => Math.hypot(...v)).sort((x, y) => y - x);
}

export function refEffectiveRank(s: readonly number[], t: number): number {
  const e = s.map((x) => x * x);
  const total = e.reduce((a, b) => a + b, 0);
  let cum = 0;
  for (let i = 0; i < e.length; i++) {
    cum += e[i]!;
    if (cum / total >= t) return i + 1;
  }
  return e.length;
}

/** Eigenvalues (descending) of a symmetric matrix by cyclic Jacobi in float64 — slow, simple, the exact reference. */
export function jacobiEigenvaluesRef(a: Float64Array, n: number): number[] {
  const m = Float64Array.from(a);
  for (let sweep = 0; sweep < 80; sweep++) {
    let off = 0;
    let total = 0;
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) (i === j ? (total += m[i * n + j]! ** 2) : (off += m[i * n + j]! ** 2));
    if (off <= 1e-30 * (total + off)) break;
    for (let p = 0; p < n - 1; p++) for (let q = p + 1; q < n; q++) {
      const apq = m[p * n + q]!;
      if (apq === 0) continue;
      const theta = (m[q * n + q]! - m[p * n + p]!) / (2 * apq);
      const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
      const c = 1 / Math.sqrt(t * t + 1);
      const s = t * c;
      for (let k = 0; k < n; k++) {
        const kp = m[k * n + p]!, kq = m[k * n + q]!;
        m[k * n + p] = c * kp - s * kq;
        m[k * n + q] = s * kp + c * kq;
      }
      for (let k = 0; k < n; k++) {
        const pk = m[p * n + k]!, qk = m[q * n + k]!;
        m[p * n + k] = c * pk - s * qk;
        m[q * n + k] = s * pk + c * qk;
      }
    }
  }
  return Array.from({ length: n }, (_, i) => m[i * n + i]!).sort((x, y) => y - x);
}

/** Q diag(lambda) Q^T with a random orthogonal Q (f64): a symmetric matrix whose eigenvalues ARE lambda. */
export function symmetricWithEigenvalues(lambda: readonly number[], seed: number): Float64Array {
  const n = lambda.length;
  const q = randomOrthonormal(n, n, seed);
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) {
    let acc = 0;
    for (let k = 0; k < n; k++) acc += q[i * n + k]! * lambda[k]! * q[j * n + k]!;
    a[i * n + j] = acc;
    a[j * n + i] = acc;
  }
  return a;
}

/** max_i |got_i - want_i| over the sorted-descending lists. */
export function maxAbsDiff(got: ArrayLike<number>, want: ArrayLike<number>): number {
  if (got.length !== want.length) throw new Error(`length ${got.length} vs ${want.length}`);
  let m = 0;
  for (let i = 0; i < got.length; i++) m = Math.max(m, Math.abs(got[i]! - want[i]!));
  return m;
}
