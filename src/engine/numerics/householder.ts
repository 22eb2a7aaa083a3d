/** Householder reflectors, the one elementary operation of both reduction stages. */

/**
 * Builds H = I - tau v v^T (v[0] = 1) with H x = beta e1 for x[k] = a[x0 + k*step], k < len.
 * Writes v into `v` (length >= len), overwrites x with (beta, 0, ..., 0) and returns tau
 * (0 when x is already a multiple of e1: H = I).
 */
export function reflect(a: Float64Array, x0: number, step: number, len: number, v: Float64Array): number {
  const alpha = a[x0]!;
  let sigma = 0;
  for (let k = 1; k < len; k++) {
    const x = a[x0 + k * step]!;
    sigma += x * x;
  }
  v[0] = 1;
  if (sigma === 0) {
    for (let k = 1; k < len; k++) v[k] = 0;
    return 0;
  }
  const norm = Math.sqrt(alpha * alpha + sigma);
  const beta = alpha <= 0 ? norm : -norm; // sign opposite to alpha: no cancellation in alpha - beta
  const scale = 1 / (alpha - beta);
  for (let k = 1; k < len; k++) {
    const p = x0 + k * step;
    v[k] = a[p]! * scale;
    a[p] = 0;
  }
  a[x0] = beta;
  return (beta - alpha) / beta;
}
