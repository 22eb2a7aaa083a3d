/**
 * MXFP4 as GPT-OSS stores it (fact sheet section 3): U8 blocks [rows, G, 16] of E2M1 codes, two per
 * byte, LOW nibble = even element; U8 E8M0 scales [rows, G]; value = e2m1(code) * 2^(scale - 127).
 * Blocks of 32 run along the last (input) dimension. Decoding to f32 is exact: an E2M1 value has two
 * significant bits, so any power-of-two multiple inside f32's range is representable (transformers
 * dequantizes to bf16, which has the same exponent range: the values are identical).
 */
import { MoeInspectorError } from '../errors';

/** E2M1 codes 0..7 = +0, 0.5, 1, 1.5, 2, 3, 4, 6; 8..15 the same negated (bit 3 is the sign). */
export const E2M1_VALUES: readonly number[] = [0, 0.5, 1, 1.5, 2, 3, 4, 6, -0, -0.5, -1, -1.5, -2, -3, -4, -6];

/** 2^(s-127) for every scale byte; 255 is NaN (E8M0). */
const SCALE = Float64Array.from({ length: 256 }, (_, s) => (s === 255 ? Number.NaN : 2 ** (s - 127)));

export function decodeMxfp4(blocks: Uint8Array, scales: Uint8Array, rows: number, groups: number, where: { file?: string; tensor?: string } = {}): Float32Array {
  if (blocks.length !== rows * groups * 16) throw new MoeInspectorError('layout', `MXFP4 blocks hold ${blocks.length} bytes, expected ${rows}x${groups}x16`, where);
  if (scales.length !== rows * groups) throw new MoeInspectorError('layout', `MXFP4 scales hold ${scales.length} bytes, expected ${rows}x${groups}`, where);
  const out = new Float32Array(rows * groups * 32);
  const lut = Float64Array.from(E2M1_VALUES);
  for (let g = 0; g < rows * groups; g++) {
    const sc = SCALE[scales[g]!]!;
    const b0 = g * 16;
    const o0 = g * 32;
    for (let k = 0; k < 16; k++) {
      const b = blocks[b0 + k]!;
      out[o0 + 2 * k] = lut[b & 0x0f]! * sc;
      out[o0 + 2 * k + 1] = lut[b >> 4]! * sc;
    }
  }
  return out;
}
