/**
 * MXFP4 as GPT-OSS stores it (fact sheet section 3): U8 blocks [rows, G, 16] of E2M1 codes, two per
 * byte, LOW nibble = even element; U8 E8M0 scales [rows, G]; value = e2m1(code) * 2^(scale - 127).
 * Blocks of 32 run along the last (input) dimension.
 *
 * We decode to f32, and the result is exact: an E2M1 magnitude has at most two significant bits,
 * so e2m1 * 2^k is representable in f32 for every k the format can give, down to the smallest
 * scale (0.5 * 2^-127 = 2^-128 is an f32 subnormal; f32 subnormals reach 2^-149). The only
 * non-exact outcome is overflow: with scale >= 254 magnitudes >= 2 exceed f32's range and become
 * +-Inf, which the non-finite check then reports. Scale 0xFF is E8M0's NaN and yields NaN values.
 *
 * transformers (integrations/mxfp4.py) and gpt_oss (torch/weights.py) dequantize to bf16 with
 * torch.ldexp. For normal-range results bf16 holds these two-bit values exactly too, so both give
 * identical numbers; they differ only for scales below about 2^-126, where bf16's subnormals
 * (down to 2^-133) lose bits that f32 keeps. Real checkpoints use scales near 2^0.
 */
import { MoeInspectorError } from '../errors';

/** E2M1 codes 0..7 = +0, 0.5, 1, 1.5, 2, 3, 4, 6; 8..15 the same negated (bit 3 is the sign). */
export const E2M1_VALUES: readonly number[] = [0, 0.5, 1, 1.5, 2, 3, 4, 6, -0, -0.5, -1, -1.5, -2, -3, -4, -6];

/**
 * Every (scale byte, code) value, [256 scales][16 codes]: e2m1 * 2^(s-127) computed exactly in f64
 * and stored to f32 (exact, or +-Inf on overflow); scale 255 (E8M0 NaN) gives NaN.
 */
const SCALED_VALUES = (() => {
  const t = new Float32Array(256 * 16);
  for (let s = 0; s < 256; s++) {
    const scale = s === 255 ? Number.NaN : 2 ** (s - 127);
    for (let c = 0; c < 16; c++) t[s * 16 + c] = E2M1_VALUES[c]! * scale;
  }
  return t;
})();

/** Raw f32 bit patterns of SCALED_VALUES: the hot loop copies integers and never converts floats. */
const SCALED_BITS = new Uint32Array(SCALED_VALUES.buffer);

/** Rows first, first + step, ..., count of them (a fused gate_up's even rows, or one half). */
export interface RowRange {
  readonly first: number;
  readonly step: number;
  readonly count: number;
}

/**
 * Decodes MXFP4 rows to f32, row-major [count, groups * 32]: all `rows` rows by default, or just
 * `pick` (decoding only the rows a projection needs halves the work on a fused gate_up).
 */
export function decodeMxfp4(
  blocks: Uint8Array,
  scales: Uint8Array,
  rows: number,
  groups: number,
  where: { file?: string; tensor?: string } = {},
  pick: RowRange = { first: 0, step: 1, count: rows },
): Float32Array {
  if (!Number.isSafeInteger(rows) || !Number.isSafeInteger(groups) || rows < 0 || groups < 0) {
    throw new MoeInspectorError('layout', `MXFP4 shape [${rows}, ${groups}] is not a pair of non-negative integers`, where);
  }
  if (blocks.length !== rows * groups * 16) throw new MoeInspectorError('layout', `MXFP4 blocks hold ${blocks.length} bytes, expected ${rows}x${groups}x16`, where);
  if (scales.length !== rows * groups) throw new MoeInspectorError('layout', `MXFP4 scales hold ${scales.length} bytes, expected ${rows}x${groups}`, where);
  const { first, step, count } = pick;
  const last = first + (count - 1) * step;
  if (![first, step, count].every(Number.isSafeInteger) || count < 0 || step < 1 || first < 0 || (count > 0 && last >= rows)) {
    throw new MoeInspectorError('layout', `MXFP4 row pick ${first}+${step}k, k<${count} is outside ${rows} rows`, where);
  }
  const out = new Uint32Array(count * groups * 32);
  const lut = SCALED_BITS;
  let o = 0;
  for (let i = 0; i < count; i++) {
    const g0 = (first + i * step) * groups;
    for (let g = g0; g < g0 + groups; g++) {
      const base = scales[g]! << 4; // this block's 16 values
      for (let b0 = g << 4, k = b0; k < b0 + 16; k++) {
        const b = blocks[k]!;
        out[o++] = lut[base | (b & 0x0f)]!;
        out[o++] = lut[base | (b >> 4)]!;
      }
    }
  }
  return new Float32Array(out.buffer);
}
