/** Deterministic randomness for the generator: same seed and key -> same numbers, on every machine. */

/** A 32-bit hash of a seed and a key string (FNV-1a then a murmur finaliser). */
export function hashKey(seed: number, key: string): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  return h >>> 0;
}

/** mulberry32 uniforms in (0, 1). */
export function uniforms(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
}

/** Fills `out` with N(0, std^2) by Box-Muller. */
export function fillGaussian(out: Float32Array | Float64Array, seed: number, std = 1): void {
  const u = uniforms(seed);
  for (let i = 0; i < out.length; i += 2) {
    const r = Math.sqrt(-2 * Math.log(u())) * std;
    const th = 2 * Math.PI * u();
    out[i] = r * Math.cos(th);
    if (i + 1 < out.length) out[i + 1] = r * Math.sin(th);
  }
}

/** r orthonormal columns of length n (row-major [n, r]), by twice-applied modified Gram-Schmidt in f64. */
export function orthonormalColumns(n: number, r: number, seed: number): Float64Array {
  const cols: Float64Array[] = [];
  for (let k = 0; k < r; k++) {
    const v = new Float64Array(n);
    fillGaussian(v, hashKey(seed, `col${k}`));
    for (let pass = 0; pass < 2; pass++) {
      for (const q of cols) {
        let d = 0;
        for (let i = 0; i < n; i++) d += q[i]! * v[i]!;
        for (let i = 0; i < n; i++) v[i]! -= d * q[i]!;
      }
    }
    let norm = 0;
    for (let i = 0; i < n; i++) norm += v[i]! * v[i]!;
    norm = Math.sqrt(norm);
    for (let i = 0; i < n; i++) v[i]! /= norm;
    cols.push(v);
  }
  const out = new Float64Array(n * r);
  for (let k = 0; k < r; k++) for (let i = 0; i < n; i++) out[i * r + k] = cols[k]![i]!;
  return out;
}
