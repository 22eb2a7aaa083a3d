/**
 * Decoding stored tensor bytes to float32. Exact for every format whose values all fit f32 (F32,
 * F16, BF16, the FP8 variants, E8M0, 8/16-bit integers); F64 and 32-bit integers round to the
 * nearest f32 (ties to even, one rounding); 64-bit integers are accepted only within +-(2^53 - 1),
 * where one correct rounding is guaranteed, and refused beyond. Data is little-endian, as the
 * safetensors spec requires; typed-array views assume a little-endian host (checked below).
 */
import { endianness } from 'node:os';
import { MoeInspectorError } from '../errors';
import { wasmLookup8 } from '../kernels/wasm-kernels';
import { DTYPE_BITS, type Dtype } from './dtype';
import { F16_TABLE, F8_E4M3FNUZ_TABLE, F8_E4M3_TABLE, F8_E5M2FNUZ_TABLE, F8_E5M2_TABLE, F8_E8M0_TABLE } from './minifloat';

if (endianness() !== 'LE') throw new Error('MoE Inspector needs a little-endian host: safetensors data is little-endian');

type Where = { file?: string; tensor?: string };

/** The bytes as a typed array of `bytesPer`-byte elements; copies only when the offset is misaligned. */
function alignedBuffer(bytes: Uint8Array, bytesPer: number): { buffer: ArrayBufferLike; offset: number; count: number } {
  const count = bytes.byteLength / bytesPer;
  if (bytes.byteOffset % bytesPer === 0) return { buffer: bytes.buffer, offset: bytes.byteOffset, count };
  return { buffer: bytes.slice().buffer, offset: 0, count };
}

/** The JavaScript reference of the 8-bit table decode (the wasm kernel is tested against it). */
export function lookup8Js(bytes: Uint8Array, table: Float32Array): Float32Array {
  const out = new Float32Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) out[i] = table[bytes[i]!]!;
  return out;
}

/** Below this many bytes the JS loop: the wasm call's copies and setup are not worth it. */
const WASM_LOOKUP_MIN = 4096;

/**
 * In wasm for large tensors: FP8 experts are decoded twice per analysis and once more per provenance
 * read; measured on a 2048 x 7168 FP8 matrix, the JS loop ran at 84-250 M values/s.
 */
function lookup8(bytes: Uint8Array, table: Float32Array): Float32Array {
  return bytes.length >= WASM_LOOKUP_MIN ? wasmLookup8(bytes, table) : lookup8Js(bytes, table);
}

function decodeBf16(bytes: Uint8Array): Float32Array {
  const { buffer, offset, count } = alignedBuffer(bytes, 2);
  const src = new Uint16Array(buffer, offset, count);
  const bits = new Int32Array(count);
  for (let i = 0; i < count; i++) bits[i] = src[i]! << 16; // BF16 is the top half of an f32
  return new Float32Array(bits.buffer);
}

function decodeF16(bytes: Uint8Array): Float32Array {
  const { buffer, offset, count } = alignedBuffer(bytes, 2);
  const src = new Uint16Array(buffer, offset, count);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = F16_TABLE[src[i]!]!;
  return out;
}

function decodeF32(bytes: Uint8Array): Float32Array {
  // Always a fresh copy: callers may scale the result in place (FP8 block scales).
  const copy = bytes.slice();
  return new Float32Array(copy.buffer, 0, copy.byteLength / 4);
}

/** Typed-array set() converts with ToFloat32: round to nearest, ties to even. */
function roundToF32(src: ArrayLike<number>): Float32Array {
  const out = new Float32Array(src.length);
  out.set(src);
  return out;
}

const MAX_EXACT = 2n ** 53n - 1n;

function decodeInt64(bytes: Uint8Array, signed: boolean, where: Where, dtype: Dtype): Float32Array {
  const { buffer, offset, count } = alignedBuffer(bytes, 8);
  const src = signed ? new BigInt64Array(buffer, offset, count) : new BigUint64Array(buffer, offset, count);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    const v = src[i]!;
    // Beyond 2^53 BigInt -> Number already rounds, and rounding again to f32 could pick the wrong neighbour.
    if (v > MAX_EXACT || v < -MAX_EXACT) throw new MoeInspectorError('dtype', `${dtype} value ${v} at element ${i} is beyond +-(2^53-1): cannot convert to f32 with one correct rounding`, where);
    out[i] = Number(v);
  }
  return out;
}

function typedView(bytes: Uint8Array, dtype: 'I16' | 'U16' | 'I32' | 'U32' | 'F64'): ArrayLike<number> {
  switch (dtype) {
    case 'I16': { const b = alignedBuffer(bytes, 2); return new Int16Array(b.buffer, b.offset, b.count); }
    case 'U16': { const b = alignedBuffer(bytes, 2); return new Uint16Array(b.buffer, b.offset, b.count); }
    case 'I32': { const b = alignedBuffer(bytes, 4); return new Int32Array(b.buffer, b.offset, b.count); }
    case 'U32': { const b = alignedBuffer(bytes, 4); return new Uint32Array(b.buffer, b.offset, b.count); }
    case 'F64': { const b = alignedBuffer(bytes, 8); return new Float64Array(b.buffer, b.offset, b.count); }
  }
}

/** Decodes little-endian tensor bytes of `dtype` to a fresh Float32Array (never a view of `bytes`). */
export function decodeToFloat32(bytes: Uint8Array, dtype: Dtype, where: Where = {}): Float32Array {
  const bytesPer = DTYPE_BITS[dtype] / 8;
  if (Number.isInteger(bytesPer) && bytes.byteLength % bytesPer !== 0) {
    throw new MoeInspectorError('format', `${bytes.byteLength} bytes is not a whole number of ${dtype} elements (${bytesPer} bytes each)`, where);
  }
  switch (dtype) {
    case 'F32':
      return decodeF32(bytes);
    case 'BF16':
      return decodeBf16(bytes);
    case 'F16':
      return decodeF16(bytes);
    case 'F8_E4M3':
      return lookup8(bytes, F8_E4M3_TABLE);
    case 'F8_E5M2':
      return lookup8(bytes, F8_E5M2_TABLE);
    case 'F8_E4M3FNUZ':
      return lookup8(bytes, F8_E4M3FNUZ_TABLE);
    case 'F8_E5M2FNUZ':
      return lookup8(bytes, F8_E5M2FNUZ_TABLE);
    case 'F8_E8M0':
      return lookup8(bytes, F8_E8M0_TABLE);
    case 'U8':
      return roundToF32(bytes);
    case 'I8':
      return roundToF32(new Int8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    case 'I16':
    case 'U16':
    case 'I32':
    case 'U32':
    case 'F64':
      return roundToF32(typedView(bytes, dtype));
    case 'I64':
      return decodeInt64(bytes, true, where, dtype);
    case 'U64':
      return decodeInt64(bytes, false, where, dtype);
    case 'BOOL':
    case 'F4':
    case 'F6_E2M3':
    case 'F6_E3M2':
    case 'C64':
      throw new MoeInspectorError('dtype', `dtype ${dtype} cannot be decoded as a weight matrix (F4 weights are read through their MXFP4 block scales; ${dtype} alone is not supported)`, where);
  }
}
