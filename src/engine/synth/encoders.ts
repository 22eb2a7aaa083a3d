/**
 * Encoders from f32 to the stored formats, written independently of the decoders in formats/ (they
 * are the tests' second opinion, so nothing here imports a decoder table). Each gives the bytes AND,
 * where rounding happens, the exact values those bytes denote, so the generator's ground truth is
 * what a correct reader must return.
 */

/** E2M1 (MXFP4 element) code -> value: bit 3 sign, 2 exponent bits (bias 1), 1 mantissa bit. */
export const E2M1: readonly number[] = Array.from({ length: 16 }, (_, c) => {
  const e = (c >> 1) & 3;
  const m = c & 1;
  const mag = e === 0 ? m * 0.5 : (1 + m / 2) * 2 ** (e - 1);
  return c & 8 ? -mag : mag;
});

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** BF16 with round-to-nearest-even (NaN kept quiet). */
export function bf16Bits(x: number): number {
  f32[0] = x;
  const b = u32[0]!;
  if ((b & 0x7f800000) === 0x7f800000 && (b & 0x7fffff) !== 0) return ((b >>> 16) | 0x40) & 0xffff;
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

export function bf16Value(bits: number): number {
  u32[0] = bits << 16;
  return f32[0]!;
}

/** The value of IEEE half bits. */
export function f16Value(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const e = (bits >> 10) & 0x1f;
  const m = bits & 0x3ff;
  if (e === 0x1f) return m === 0 ? sign * Infinity : Number.NaN;
  return sign * (e === 0 ? m * 2 ** -24 : (1 + m / 1024) * 2 ** (e - 15));
}

/** IEEE half with round-to-nearest-even; overflow to infinity. */
export function f16Bits(x: number): number {
  if (Number.isNaN(x)) return 0x7e00;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(Math.fround(x));
  if (a >= 65520) return sign | 0x7c00;
  if (a < 2 ** -14) return sign | roundEven(a / 2 ** -24); // subnormal (may round up to the smallest normal)
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  if (2 ** (e + 1) <= a) e++;
  let m = roundEven((a / 2 ** e - 1) * 1024);
  if (m === 1024) {
    m = 0;
    e++;
  }
  if (e > 15) return sign | 0x7c00;
  return sign | ((e + 15) << 10) | m;
}

export function roundEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** A nearest-value encoder for an 8-bit float given its positive finite values by code (0..127). */
export function makeF8Encoder(positive: readonly number[]): (x: number) => number {
  const order = positive.map((v, code) => ({ v, code })).filter((e) => Number.isFinite(e.v)).sort((a, b) => a.v - b.v);
  return (x: number): number => {
    if (Number.isNaN(x)) return 0x7f;
    const sign = x < 0 ? 0x80 : 0;
    const a = Math.abs(x);
    let lo = 0;
    let hi = order.length - 1;
    if (a >= order[hi]!.v) return sign | order[hi]!.code; // saturate
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (order[mid]!.v <= a) lo = mid;
      else hi = mid;
    }
    const L = order[lo]!;
    const H = order[hi]!;
    const pick = a - L.v < H.v - a ? L : a - L.v > H.v - a ? H : L.code % 2 === 0 ? L : H; // ties to even code
    return (pick.v === 0 ? 0 : sign) | pick.code;
  };
}

function e4m3Positive(): number[] {
  return Array.from({ length: 128 }, (_, c) => {
    const e = c >> 3;
    const m = c & 7;
    if (c === 0x7f) return Number.NaN;
    return e === 0 ? (m / 8) * 2 ** -6 : (1 + m / 8) * 2 ** (e - 7);
  });
}

/** F8_E4M3 (e4m3fn): bias 7, no infinities, 0x7F/0xFF NaN, max 448. RNE, saturating at +-448. */
export const E4M3_POSITIVE = e4m3Positive();
export const encodeE4M3 = makeF8Encoder(E4M3_POSITIVE);
export function e4m3Value(code: number): number {
  const v = E4M3_POSITIVE[code & 0x7f]!;
  return code & 0x80 ? -v : v;
}

/** F8_E5M2: bias 15, IEEE specials (exponent 31 = inf/NaN), max 57344. RNE, saturating at +-57344. */
export const E5M2_POSITIVE = Array.from({ length: 128 }, (_, c) => {
  const e = c >> 2;
  const m = c & 3;
  if (e === 31) return m === 0 ? Infinity : Number.NaN;
  return e === 0 ? (m / 4) * 2 ** -14 : (1 + m / 4) * 2 ** (e - 15);
});
const encodeE5M2Finite = makeF8Encoder(E5M2_POSITIVE);
export function encodeE5M2(x: number): number {
  return Number.isNaN(x) ? 0x7e : encodeE5M2Finite(x);
}
export function e5m2Value(code: number): number {
  const v = E5M2_POSITIVE[code & 0x7f]!;
  return code & 0x80 ? -v : v;
}

/** MXFP4 block encoding of one row (length multiple of 32): codes packed low-nibble-first, E8M0 scales. */
export function encodeMxfp4Row(row: Float32Array): { blocks: Uint8Array; scales: Uint8Array; values: Float32Array } {
  const groups = row.length / 32;
  const blocks = new Uint8Array(groups * 16);
  const scales = new Uint8Array(groups);
  const values = new Float32Array(row.length);
  for (let g = 0; g < groups; g++) {
    let maxAbs = 0;
    for (let k = 0; k < 32; k++) maxAbs = Math.max(maxAbs, Math.abs(row[g * 32 + k]!));
    // OCP MX: shared exponent = floor(log2(max)) - emax(E2M1) = ... - 2; values above 6 * 2^e clamp to 6.
    const e = maxAbs === 0 ? -127 : Math.max(-127, Math.min(127, Math.floor(Math.log2(maxAbs)) - 2));
    scales[g] = e + 127;
    const sc = 2 ** e;
    for (let k = 0; k < 32; k++) {
      const code = nearestE2M1(row[g * 32 + k]! / sc);
      values[g * 32 + k] = E2M1[code]! * sc;
      blocks[g * 16 + (k >> 1)]! |= k % 2 === 0 ? code : code << 4;
    }
  }
  return { blocks, scales, values };
}

function nearestE2M1(x: number): number {
  let best = 0;
  let bestErr = Infinity;
  for (let c = 0; c < 16; c++) {
    const err = Math.abs(E2M1[c]! - x);
    if (err < bestErr || (err === bestErr && c % 2 === 0 && best % 2 === 1)) {
      best = c;
      bestErr = err;
    }
  }
  return best;
}
