/** Counts NaN and +-Inf values: a weight with any is reported, never propagated into metrics. */
export function countNonFinite(data: Float32Array): number {
  let n = 0;
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (v - v !== 0) n++; // NaN - NaN and Inf - Inf are NaN; finite - itself is 0
  }
  return n;
}
