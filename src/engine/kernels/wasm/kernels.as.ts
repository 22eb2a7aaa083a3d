/**
 * WebAssembly SIMD kernels of the symmetric eigen-solver, plus pass one's float64 accumulation,
 * the non-finite scan of decoded weights and the 8-bit table decode (AssemblyScript; built by
 * `npm run build:wasm` into kernels-binary.ts). Same algorithms and storage as the JavaScript
 * references they replace (band-tridiagonal.ts, band-reduction.ts): only the inner loops differ,
 * two float64 lanes at a time. Memory is laid out by the caller (wasm-kernels.ts): every argument
 * that is a pointer is a byte offset into this module's memory.
 */

/** Start of the caller's free memory (after this module's own data). */
export function heapBase(): usize {
  return (__heap_base + 15) & ~(15 as usize);
}

@inline function at(p: usize, i: i32): f64 {
  return load<f64>(p + ((<usize>i) << 3));
}

@inline function put(p: usize, i: i32, x: f64): void {
  store<f64>(p + ((<usize>i) << 3), x);
}

/** sum_i x[i] y[i], i < len. */
function dot(x: usize, y: usize, len: i32): f64 {
  let s0 = f64x2.splat(0);
  let s1 = f64x2.splat(0);
  let i = 0;
  for (; i + 4 <= len; i += 4) {
    const o = (<usize>i) << 3;
    s0 = f64x2.add(s0, f64x2.mul(v128.load(x + o), v128.load(y + o)));
    s1 = f64x2.add(s1, f64x2.mul(v128.load(x + o + 16), v128.load(y + o + 16)));
  }
  const s = f64x2.add(s0, s1);
  let acc = f64x2.extract_lane(s, 0) + f64x2.extract_lane(s, 1);
  for (; i < len; i++) acc += at(x, i) * at(y, i);
  return acc;
}

/** y[i] += alpha x[i], i < len. */
function axpy(y: usize, x: usize, alpha: f64, len: i32): void {
  const a = f64x2.splat(alpha);
  let i = 0;
  for (; i + 4 <= len; i += 4) {
    const o = (<usize>i) << 3;
    v128.store(y + o, f64x2.add(v128.load(y + o), f64x2.mul(a, v128.load(x + o))));
    v128.store(y + o + 16, f64x2.add(v128.load(y + o + 16), f64x2.mul(a, v128.load(x + o + 16))));
  }
  for (; i < len; i++) put(y, i, at(y, i) + alpha * at(x, i));
}

/** Both at once over one column: y[i] += alpha x[i] and returns sum_i x[i] z[i]. */
function axpyDot(y: usize, x: usize, alpha: f64, z: usize, len: i32): f64 {
  const a = f64x2.splat(alpha);
  let s = f64x2.splat(0);
  let i = 0;
  for (; i + 2 <= len; i += 2) {
    const o = (<usize>i) << 3;
    const xv = v128.load(x + o);
    v128.store(y + o, f64x2.add(v128.load(y + o), f64x2.mul(a, xv)));
    s = f64x2.add(s, f64x2.mul(xv, v128.load(z + o)));
  }
  let acc = f64x2.extract_lane(s, 0) + f64x2.extract_lane(s, 1);
  for (; i < len; i++) {
    const xi = at(x, i);
    put(y, i, at(y, i) + alpha * xi);
    acc += xi * at(z, i);
  }
  return acc;
}

/**
 * Householder reflector of the contiguous vector x[0..len) (householder.ts' reflect): writes v
 * (v[0] = 1), overwrites x with (beta, 0, ..., 0), returns tau (0 when x is a multiple of e1).
 */
export function reflect(x: usize, len: i32, v: usize): f64 {
  const alpha = at(x, 0);
  const sigma = dot(x + 8, x + 8, len - 1);
  put(v, 0, 1);
  if (sigma == 0) {
    for (let k = 1; k < len; k++) put(v, k, 0);
    return 0;
  }
  const norm = Math.sqrt(alpha * alpha + sigma);
  const beta = alpha <= 0 ? norm : -norm;
  const scale = 1 / (alpha - beta);
  for (let k = 1; k < len; k++) {
    put(v, k, at(x, k) * scale);
    put(x, k, 0);
  }
  put(x, 0, beta);
  return (beta - alpha) / beta;
}

/** H A H on the symmetric diagonal block rows/cols r..r+len-1 of the band (lower triangle stored). */
function twoSided(a: usize, s: i32, r: i32, len: i32, v: usize, tau: f64, w: usize): void {
  memory.fill(w, 0, (<usize>len) << 3);
  for (let j = 0; j < len; j++) {
    const col = a + ((<usize>((r + j) * s + r)) << 3);
    const vj = at(v, j);
    const tail = (<usize>(j + 1)) << 3;
    const acc = at(col, j) * vj + axpyDot(w + tail, col + tail, vj, v + tail, len - j - 1);
    put(w, j, at(w, j) + acc);
  }
  for (let k = 0; k < len; k++) put(w, k, at(w, k) * tau);
  const alpha = -0.5 * tau * dot(v, w, len);
  axpy(w, v, alpha, len);
  for (let j = 0; j < len; j++) {
    const col = a + ((<usize>((r + j) * s + r)) << 3);
    const o = (<usize>j) << 3;
    axpy(col + o, v + o, -at(w, j), len - j);
    axpy(col + o, w + o, -at(v, j), len - j);
  }
}

/** Rows r0..r0+m-1, columns c0..c0+len-1 of the band times H from the right (t: scratch of m). */
function fromRight(a: usize, s: i32, r0: i32, m: i32, c0: i32, len: i32, v: usize, tau: f64, t: usize): void {
  memory.fill(t, 0, (<usize>m) << 3);
  for (let j = 0; j < len; j++) axpy(t, a + ((<usize>((c0 + j) * s + r0)) << 3), at(v, j), m);
  for (let j = 0; j < len; j++) axpy(a + ((<usize>((c0 + j) * s + r0)) << 3), t, -tau * at(v, j), m);
}

/** H from the left on rows r0..r0+m-1, columns c0..c0+cols-1. */
function fromLeft(a: usize, s: i32, r0: i32, m: i32, c0: i32, cols: i32, v: usize, tau: f64): void {
  for (let j = 0; j < cols; j++) {
    const col = a + ((<usize>((c0 + j) * s + r0)) << 3);
    axpy(col, v, -tau * dot(v, col, m), m);
  }
}

/**
 * Band -> tridiagonal bulge chasing (band-tridiagonal.ts' bandToTridiagonal) on the band at `a`
 * (column j at a + 8 j s, s = 2b, entries A(j..j+2b, j)), in place; v and w: scratch of b+1 doubles.
 */
export function chase(a: usize, n: i32, b: i32, v: usize, w: usize): void {
  const s = b > 1 ? 2 * b : 1;
  if (b <= 1) return;
  for (let c = 0; c + 2 < n; c++) {
    let r = c + 1;
    let len = min(b, n - r);
    let tau = reflect(a + ((<usize>(c * s + r)) << 3), len, v);
    for (;;) {
      if (tau != 0) twoSided(a, s, r, len, v, tau, w);
      const below = r + len;
      const m = min(b, n - below);
      if (m <= 0) break;
      if (tau != 0) fromRight(a, s, below, m, r, len, v, tau, w);
      if (m < 2) break;
      tau = reflect(a + ((<usize>(r * s + below)) << 3), m, v);
      if (tau != 0) fromLeft(a, s, below, m, r + 1, len - 1, v, tau);
      r = below;
      len = m;
    }
  }
}

/**
 * Householder QR of the column-major panel pc [rows, b] in place (band-reduction.ts' panelQR):
 * R on and above the diagonal, the reflectors' v below it (v[0] = 1 implied); tau [k] and the
 * compact-WY factor T [k, k] (row-major, upper triangular; LAPACK larft) written out; v: scratch
 * of rows doubles. k = min(rows, b).
 */
export function panelQR(pc: usize, rows: i32, b: i32, tau: usize, t: usize, v: usize): void {
  const k = min(rows, b);
  for (let j = 0; j < k; j++) {
    const col = pc + ((<usize>(j * rows + j)) << 3);
    const len = rows - j;
    const tj = reflect(col, len, v);
    put(tau, j, tj);
    memory.copy(col + 8, v + 8, (<usize>(len - 1)) << 3);
    if (tj == 0) continue;
    for (let c = j + 1; c < b; c++) {
      const cc = pc + ((<usize>(c * rows + j)) << 3);
      const s = (at(cc, 0) + dot(v + 8, cc + 8, len - 1)) * tj;
      put(cc, 0, at(cc, 0) - s);
      axpy(cc + 8, v + 8, -s, len - 1);
    }
  }
  memory.fill(t, 0, (<usize>(k * k)) << 3);
  for (let j = 0; j < k; j++) {
    const tj = at(tau, j);
    put(t, j * k + j, tj);
    if (tj == 0) continue;
    // z_i = v_i . v_j over rows >= j (v_j is one at row j, zero above)
    const cj = pc + ((<usize>(j * rows + j + 1)) << 3);
    for (let i = 0; i < j; i++) {
      const ci = pc + ((<usize>(i * rows + j)) << 3);
      put(v, i, at(ci, 0) + dot(ci + 8, cj, rows - j - 1));
    }
    for (let i = 0; i < j; i++) {
      let s: f64 = 0;
      for (let l = i; l < j; l++) s += at(t, i * k + l) * at(v, l);
      put(t, i * k + j, -tj * s);
    }
  }
}

/**
 * Pass one's accumulation of one block: acc[i] += x[i] (float32 widened exactly to float64),
 * i < len, and the block's sum of squares in float64 (four partial sums, added at the end).
 */
export function accumulate(acc: usize, x: usize, len: i32): f64 {
  let s0 = f64x2.splat(0);
  let s1 = f64x2.splat(0);
  let i = 0;
  for (; i + 4 <= len; i += 4) {
    const v = v128.load(x + ((<usize>i) << 2));
    const lo = f64x2.promote_low_f32x4(v);
    const hi = f64x2.promote_low_f32x4(f32x4.shuffle(v, v, 2, 3, 0, 1));
    const o = acc + ((<usize>i) << 3);
    v128.store(o, f64x2.add(v128.load(o), lo));
    v128.store(o + 16, f64x2.add(v128.load(o + 16), hi));
    s0 = f64x2.add(s0, f64x2.mul(lo, lo));
    s1 = f64x2.add(s1, f64x2.mul(hi, hi));
  }
  const s = f64x2.add(s0, s1);
  let sum = f64x2.extract_lane(s, 0) + f64x2.extract_lane(s, 1);
  for (; i < len; i++) {
    const v = <f64>load<f32>(x + ((<usize>i) << 2));
    put(acc, i, at(acc, i) + v);
    sum += v * v;
  }
  return sum;
}

/** How many of the len float32 values at x are NaN or +-Inf (exponent bits all ones). */
export function countNonFinite(x: usize, len: i32): i32 {
  const exp = i32x4.splat(0x7f800000);
  let hits = i32x4.splat(0);
  let i = 0;
  for (; i + 4 <= len; i += 4) {
    const v = v128.and(v128.load(x + ((<usize>i) << 2)), exp);
    hits = i32x4.sub(hits, i32x4.eq(v, exp)); // eq lanes are -1
  }
  let n = i32x4.extract_lane(hits, 0) + i32x4.extract_lane(hits, 1) + i32x4.extract_lane(hits, 2) + i32x4.extract_lane(hits, 3);
  for (; i < len; i++) if ((load<i32>(x + ((<usize>i) << 2)) & 0x7f800000) == 0x7f800000) n++;
  return n;
}

/** sum_i (w[i] - b[i])^2 over len float32 pairs, each difference taken in float64 (four partial sums). */
export function deltaSquares(w: usize, b: usize, len: i32): f64 {
  let s0 = f64x2.splat(0);
  let s1 = f64x2.splat(0);
  let i = 0;
  for (; i + 4 <= len; i += 4) {
    const o = (<usize>i) << 2;
    const x = v128.load(w + o);
    const y = v128.load(b + o);
    const lo = f64x2.sub(f64x2.promote_low_f32x4(x), f64x2.promote_low_f32x4(y));
    const hi = f64x2.sub(f64x2.promote_low_f32x4(f32x4.shuffle(x, x, 2, 3, 0, 1)), f64x2.promote_low_f32x4(f32x4.shuffle(y, y, 2, 3, 0, 1)));
    s0 = f64x2.add(s0, f64x2.mul(lo, lo));
    s1 = f64x2.add(s1, f64x2.mul(hi, hi));
  }
  const s = f64x2.add(s0, s1);
  let sum = f64x2.extract_lane(s, 0) + f64x2.extract_lane(s, 1);
  for (; i < len; i++) {
    const d = <f64>load<f32>(w + ((<usize>i) << 2)) - <f64>load<f32>(b + ((<usize>i) << 2));
    sum += d * d;
  }
  return sum;
}

/** out[i] = table[x[i]] for len bytes at x: the 8-bit formats' decode (table: 256 float32 at t; out: len float32 at o). */
export function lookup8(t: usize, x: usize, o: usize, len: i32): void {
  let i = 0;
  for (; i + 4 <= len; i += 4) {
    const b = load<u32>(x + <usize>i);
    const at = o + ((<usize>i) << 2);
    store<f32>(at, load<f32>(t + ((<usize>(b & 0xff)) << 2)));
    store<f32>(at + 4, load<f32>(t + ((<usize>((b >> 8) & 0xff)) << 2)));
    store<f32>(at + 8, load<f32>(t + ((<usize>((b >> 16) & 0xff)) << 2)));
    store<f32>(at + 12, load<f32>(t + ((<usize>(b >> 24)) << 2)));
  }
  for (; i < len; i++) store<f32>(o + ((<usize>i) << 2), load<f32>(t + ((<usize>load<u8>(x + <usize>i)) << 2)));
}
