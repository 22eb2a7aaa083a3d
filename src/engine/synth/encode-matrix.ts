/** Encodes one [rows, cols] f32 matrix into a stored format; returns the bytes and the exact values they denote. */
import type { Dtype } from '../formats/dtype';
import { bf16Bits, bf16Value, e4m3Value, encodeE4M3, encodeMxfp4Row, f16Bits, f16Value } from './encoders';

export type SynthDtype = 'F32' | 'BF16' | 'F16' | 'MXFP4' | 'FP8';

export interface EncodedMatrix {
  readonly values: Float32Array;
  readonly dtype: Dtype; // of the main tensor
  readonly bytes: Uint8Array; // main tensor (codes, or MXFP4 blocks [rows, cols/32, 16])
  readonly scales?: { readonly dtype: Dtype; readonly bytes: Uint8Array; readonly shape: readonly number[] };
}

export const FP8_BLOCK = 128;

export function encodeMatrix(w: Float32Array, rows: number, cols: number, dtype: SynthDtype): EncodedMatrix {
  switch (dtype) {
    case 'F32': {
      const values = Float32Array.from(w);
      return { values, dtype: 'F32', bytes: new Uint8Array(values.buffer) };
    }
    case 'BF16': {
      const bits = new Uint16Array(w.length);
      const values = new Float32Array(w.length);
      for (let i = 0; i < w.length; i++) values[i] = bf16Value((bits[i] = bf16Bits(w[i]!)));
      return { values, dtype: 'BF16', bytes: new Uint8Array(bits.buffer) };
    }
    case 'F16': {
      const bits = new Uint16Array(w.length);
      const values = new Float32Array(w.length);
      for (let i = 0; i < w.length; i++) values[i] = f16Value((bits[i] = f16Bits(w[i]!)));
      return { values, dtype: 'F16', bytes: new Uint8Array(bits.buffer) };
    }
    case 'MXFP4':
      return encodeMxfp4(w, rows, cols);
    case 'FP8':
      return encodeFp8Block(w, rows, cols);
  }
}

function encodeMxfp4(w: Float32Array, rows: number, cols: number): EncodedMatrix {
  if (cols % 32 !== 0) throw new Error(`MXFP4 needs the input dimension to be a multiple of 32, got ${cols}`);
  const g = cols / 32;
  const blocks = new Uint8Array(rows * g * 16);
  const scales = new Uint8Array(rows * g);
  const values = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const e = encodeMxfp4Row(w.subarray(r * cols, (r + 1) * cols));
    blocks.set(e.blocks, r * g * 16);
    scales.set(e.scales, r * g);
    values.set(e.values, r * cols);
  }
  return { values, dtype: 'U8', bytes: blocks, scales: { dtype: 'U8', bytes: scales, shape: [rows, g] } };
}

/** DeepSeek-V3 style: E4M3 codes, one F32 scale per 128x128 tile (partial edge tiles), W = q * s. */
function encodeFp8Block(w: Float32Array, rows: number, cols: number): EncodedMatrix {
  const gr = Math.ceil(rows / FP8_BLOCK);
  const gc = Math.ceil(cols / FP8_BLOCK);
  const scale = new Float32Array(gr * gc);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      const t = Math.floor(i / FP8_BLOCK) * gc + Math.floor(j / FP8_BLOCK);
      scale[t] = Math.max(scale[t]!, Math.abs(w[i * cols + j]!));
    }
  }
  for (let t = 0; t < scale.length; t++) scale[t] = scale[t] === 0 ? 1 : scale[t]! / 448;
  const codes = new Uint8Array(rows * cols);
  const values = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      const s = scale[Math.floor(i / FP8_BLOCK) * gc + Math.floor(j / FP8_BLOCK)]!;
      const q = encodeE4M3(w[i * cols + j]! / s);
      codes[i * cols + j] = q;
      values[i * cols + j] = Math.fround(e4m3Value(q) * s);
    }
  }
  return { values, dtype: 'F8_E4M3', bytes: codes, scales: { dtype: 'F32', bytes: new Uint8Array(scale.buffer), shape: [gr, gc] } };
}

/** Plain-dtype bytes of small auxiliary tensors (router, norms, attention, biases). */
export function encodePlain(w: Float32Array, dtype: 'F32' | 'BF16' | 'F16'): { bytes: Uint8Array; values: Float32Array } {
  const e = encodeMatrix(w, 1, w.length, dtype);
  return { bytes: e.bytes, values: e.values };
}
