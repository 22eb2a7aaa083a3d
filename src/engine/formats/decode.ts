/**
 * Decoding stored tensor bytes to float32, exactly (every value of these formats except F64 and
 * wide integers is exactly representable in f32; F64 rounds to nearest). Little-endian data, as
 * the safetensors spec requires; typed-array views assume a little-endian host (checked below).
 */
import { endianness } from 'node:os';
import { MoeInspectorError } from '../errors';
import type { Dtype } from './dtype';
import { F16_TABLE, F8_E4M3FNUZ_TABLE, F8_E4M3_TABLE, F8_E5M2FNUZ_TABLE, F8_E5M2_TABLE, F8_E8M0_TABLE } from './minifloat';

if (endianness() !== 'LE') throw new Error('MoE Inspector needs a little-endian host: safetensors data is little-endian');

type Where = { file?: string; tensor?: string };

/** A view of `bytes` as T, copying only when the offset is misaligned for T. */
function view<T>(bytes: Uint8Array, size: number, make: (b: ArrayBufferLike, off: number, n: number) => T): T {
  if (bytes.byteOffset % size === 0) return make(bytes.buffer, bytes.byteOffset, bytes.byteLength / size);
  const copy = bytes.slice();
  return make(copy.buffer, 0, copy.byteLength / size);
}

function lookup8(bytes: Uint8Array, t: Float32Array): Float32Array {
  const out = new Float32Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) out[i] = t[bytes[i]!]!;
  return out;
}

function decodeBf16(bytes: Uint8Array): Float32Array {
  const src = view(bytes, 2, (b, o, n) => new Uint16Array(b, o, n));
  const bits = new Uint32Array(src.length);
  for (let i = 0; i < src.length; i++) bits[i] = src[i]! << 16; // BF16 is the top half of an f32
  return new Float32Array(bits.buffer);
}

function decodeF16(bytes: Uint8Array): Float32Array {
  const src = view(bytes, 2, (b, o, n) => new Uint16Array(b, o, n));
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = F16_TABLE[src[i]!]!;
  return out;
}

function fromArrayLike(src: ArrayLike<number>): Float32Array {
  return Float32Array.from(src as ArrayLike<number>);
}

function decodeInt64(bytes: Uint8Array, signed: boolean, where: Where, dtype: Dtype): Float32Array {
  const src = view(bytes, 8, (b, o, n) => (signed ? new BigInt64Array(b, o, n) : new BigUint64Array(b, o, n)));
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const v = src[i]!;
    if (v > 9007199254740991n || v < -9007199254740991n) throw new MoeInspectorError('dtype', `${dtype} value ${v} at element ${i} is not exactly representable`, where);
    out[i] = Number(v);
  }
  return out;
}

export function decodeToFloat32(bytes: Uint8Array, dtype: Dtype, where: Where = {}): Float32Array {
  switch (dtype) {
    case 'F32':
      return view(bytes, 4, (b, o, n) => new Float32Array(b, o, n)).slice();
    case 'F64':
      return fromArrayLike(view(bytes, 8, (b, o, n) => new Float64Array(b, o, n)));
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
      return fromArrayLike(bytes);
    case 'I8':
      return fromArrayLike(new Int8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    case 'I16':
      return fromArrayLike(view(bytes, 2, (b, o, n) => new Int16Array(b, o, n)));
    case 'U16':
      return fromArrayLike(view(bytes, 2, (b, o, n) => new Uint16Array(b, o, n)));
    case 'I32':
      return fromArrayLike(view(bytes, 4, (b, o, n) => new Int32Array(b, o, n)));
    case 'U32':
      return fromArrayLike(view(bytes, 4, (b, o, n) => new Uint32Array(b, o, n)));
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
