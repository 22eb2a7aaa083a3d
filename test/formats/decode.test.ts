import assert from 'node:assert/strict';
import { decodeToFloat32 } from '../../src/engine/formats/decode';
import type { Dtype } from '../../src/engine/formats/dtype';
import { throwsWith } from './helpers';

/** Same value, with NaN equal to NaN and -0 distinct from +0. */
function sameValue(actual: number, expected: number, what: string): void {
  if (Number.isNaN(expected)) assert.ok(Number.isNaN(actual), `${what}: expected NaN, got ${actual}`);
  else assert.ok(Object.is(actual, expected), `${what}: expected ${expected}, got ${actual}`);
}

const f32FromBits = (bits: number): number => {
  const dv = new DataView(new ArrayBuffer(4));
  dv.setUint32(0, bits >>> 0);
  return dv.getFloat32(0);
};

/**
 * Independent F16 reference: rebuild the f32 bit pattern (re-biased exponent, widened mantissa,
 * subnormals normalized by shifting) and let DataView interpret it.
 */
function f16Reference(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >> 10) & 0x1f;
  let man = h & 0x3ff;
  if (exp === 0x1f) return f32FromBits(sign | 0x7f800000 | (man << 13));
  if (exp !== 0) return f32FromBits(sign | ((exp - 15 + 127) << 23) | (man << 13));
  if (man === 0) return f32FromBits(sign);
  let e = 127 - 14;
  while ((man & 0x400) === 0) {
    man <<= 1;
    e--;
  }
  return f32FromBits(sign | (e << 23) | ((man & 0x3ff) << 13));
}

/**
 * Independent 8-bit float reference, integer-significand form: value = sig * 2^(e - bias - M)
 * with sig = man (+ 2^M for normals), special codes spelled out per format.
 */
function fp8Reference(code: number, format: 'E4M3' | 'E5M2' | 'E4M3FNUZ' | 'E5M2FNUZ'): number {
  const e = format.startsWith('E4') ? 4 : 5;
  const m = 7 - e;
  const bias = { E4M3: 7, E5M2: 15, E4M3FNUZ: 8, E5M2FNUZ: 16 }[format];
  const negative = code >= 0x80;
  const exp = (code & 0x7f) >> m;
  const man = code & ((1 << m) - 1);
  if (format.endsWith('FNUZ') && code === 0x80) return NaN;
  if (format === 'E4M3' && (code & 0x7f) === 0x7f) return NaN;
  if (format === 'E5M2' && exp === 31) return man === 0 ? (negative ? -Infinity : Infinity) : NaN;
  const sig = exp === 0 ? man : man + (1 << m);
  const scale = Math.pow(2, (exp === 0 ? 1 : exp) - bias - m);
  return negative ? -(sig * scale) : sig * scale;
}

const allBytes = Uint8Array.from({ length: 256 }, (_, i) => i);

describe('decodeToFloat32', () => {
  it('BF16: all 65536 codes equal the f32 whose top half they are (DataView of the shifted bits)', () => {
    const bytes = new Uint8Array(65536 * 2);
    const dv = new DataView(bytes.buffer);
    for (let c = 0; c < 65536; c++) dv.setUint16(c * 2, c, true);
    const out = decodeToFloat32(bytes, 'BF16');
    for (let c = 0; c < 65536; c++) sameValue(out[c]!, f32FromBits(c << 16), `bf16 0x${c.toString(16)}`);
  });

  it('F16: all 65536 codes equal the independent bit-rebuilding reference', () => {
    const bytes = new Uint8Array(65536 * 2);
    const dv = new DataView(bytes.buffer);
    for (let c = 0; c < 65536; c++) dv.setUint16(c * 2, c, true);
    const out = decodeToFloat32(bytes, 'F16');
    for (let c = 0; c < 65536; c++) sameValue(out[c]!, f16Reference(c), `f16 0x${c.toString(16)}`);
  });

  it('F16: hand-checked values', () => {
    const codes = [0x3c00, 0xc000, 0x7bff, 0x0001, 0x0400, 0x03ff, 0x7c00, 0xfc00, 0x8000, 0x3555];
    const expected = [1, -2, 65504, 2 ** -24, 2 ** -14, 1023 * 2 ** -24, Infinity, -Infinity, -0, 0.333251953125];
    const out = decodeToFloat32(new Uint8Array(new Uint16Array(codes).buffer), 'F16');
    expected.forEach((v, i) => sameValue(out[i]!, v, `f16 0x${codes[i]!.toString(16)}`));
    assert.ok(Number.isNaN(decodeToFloat32(new Uint8Array(new Uint16Array([0x7e00]).buffer), 'F16')[0]));
  });

  for (const format of ['E4M3', 'E5M2', 'E4M3FNUZ', 'E5M2FNUZ'] as const) {
    it(`F8_${format}: all 256 codes equal the independent formula`, () => {
      const out = decodeToFloat32(allBytes, `F8_${format}` as Dtype);
      for (let c = 0; c < 256; c++) sameValue(out[c]!, fp8Reference(c, format), `${format} 0x${c.toString(16)}`);
    });
  }

  it('F8_E5M2 is the top byte of F16: all 256 codes agree with the F16 reference', () => {
    const out = decodeToFloat32(allBytes, 'F8_E5M2');
    for (let c = 0; c < 256; c++) sameValue(out[c]!, f16Reference(c << 8), `e5m2 0x${c.toString(16)}`);
  });

  it('FP8: hand-checked values (max, smallest subnormal, NaN, Inf)', () => {
    const check = (dtype: Dtype, code: number, v: number) => sameValue(decodeToFloat32(new Uint8Array([code]), dtype)[0]!, v, `${dtype} 0x${code.toString(16)}`);
    check('F8_E4M3', 0x7e, 448);
    check('F8_E4M3', 0xfe, -448);
    check('F8_E4M3', 0x01, 2 ** -9);
    check('F8_E4M3', 0x08, 2 ** -6);
    check('F8_E4M3', 0x7f, NaN);
    check('F8_E4M3', 0xff, NaN);
    check('F8_E4M3', 0x78, 256); // exponent 15 is a normal exponent in e4m3fn
    check('F8_E4M3', 0x80, -0);
    check('F8_E5M2', 0x7c, Infinity);
    check('F8_E5M2', 0xfc, -Infinity);
    check('F8_E5M2', 0x7d, NaN);
    check('F8_E5M2', 0x7b, 57344);
    check('F8_E5M2', 0x01, 2 ** -16);
    check('F8_E4M3FNUZ', 0x80, NaN);
    check('F8_E4M3FNUZ', 0x7f, 240);
    check('F8_E4M3FNUZ', 0x01, 2 ** -10);
    check('F8_E4M3FNUZ', 0xff, -240);
    check('F8_E5M2FNUZ', 0x80, NaN);
    check('F8_E5M2FNUZ', 0x7f, 57344);
    check('F8_E5M2FNUZ', 0x01, 2 ** -17);
    check('F8_E5M2FNUZ', 0x7c, 32768); // no infinities in FNUZ
  });

  it('F8_E8M0: every code is 2^(b-127), 0xFF is NaN', () => {
    const out = decodeToFloat32(allBytes, 'F8_E8M0');
    for (let b = 0; b < 255; b++) sameValue(out[b]!, Math.pow(2, b - 127), `e8m0 ${b}`);
    assert.ok(Number.isNaN(out[255]!));
    assert.equal(out[127], 1);
    assert.equal(out[0], 2 ** -127); // an f32 subnormal, exact
  });

  it('F32: bit-exact copy including NaN payloads and -0; a copy, not a view', () => {
    const src = new Uint32Array([0x3f800000, 0x80000000, 0x7fc00001, 0x00000001, 0xff800000]);
    const bytes = new Uint8Array(src.buffer);
    const out = decodeToFloat32(bytes, 'F32');
    assert.deepEqual([...new Uint32Array(out.buffer, out.byteOffset, out.length)], [...src]);
    out[0] = 5;
    assert.equal(src[0], 0x3f800000);
  });

  it('F64: rounds to the nearest f32, ties to even, overflow to Inf', () => {
    const values = [1 / 3, 1 + 2 ** -24, 1 + 3 * 2 ** -24, -(1 + 2 ** -23 + 2 ** -30), 1e300, 2 ** -149, 2 ** -151, Math.PI];
    const expected = [0.3333333432674408, 1, 1 + 2 ** -22, -(1 + 2 ** -23), Infinity, 2 ** -149, 0, 3.1415927410125732];
    const out = decodeToFloat32(new Uint8Array(new Float64Array(values).buffer), 'F64');
    expected.forEach((v, i) => sameValue(out[i]!, v, `f64 ${values[i]}`));
  });

  it('integers: exact in range, 32-bit round to nearest f32, 64-bit beyond 2^53 refused', () => {
    assert.deepEqual([...decodeToFloat32(new Uint8Array(new Int8Array([-128, -1, 0, 127]).buffer), 'I8')], [-128, -1, 0, 127]);
    assert.deepEqual([...decodeToFloat32(new Uint8Array([0, 200, 255]), 'U8')], [0, 200, 255]);
    assert.deepEqual([...decodeToFloat32(new Uint8Array(new Int16Array([-32768, 32767]).buffer), 'I16')], [-32768, 32767]);
    assert.deepEqual([...decodeToFloat32(new Uint8Array(new Uint16Array([65535]).buffer), 'U16')], [65535]);
    assert.deepEqual([...decodeToFloat32(new Uint8Array(new Int32Array([-(2 ** 31), 2 ** 24 + 1, 2 ** 24 + 3]).buffer), 'I32')], [-(2 ** 31), 2 ** 24, 2 ** 24 + 4]);
    assert.deepEqual([...decodeToFloat32(new Uint8Array(new Uint32Array([4294967295]).buffer), 'U32')], [4294967296]);
    assert.deepEqual([...decodeToFloat32(new Uint8Array(new BigInt64Array([-5n, 2n ** 53n - 1n]).buffer), 'I64')], [-5, 2 ** 53]);
    assert.deepEqual([...decodeToFloat32(new Uint8Array(new BigUint64Array([7n]).buffer), 'U64')], [7]);
    throwsWith(() => decodeToFloat32(new Uint8Array(new BigInt64Array([2n ** 53n]).buffer), 'I64', { file: 'f.safetensors', tensor: 'idx' }), 'dtype', 'f.safetensors', 'tensor "idx"', '9007199254740992');
    throwsWith(() => decodeToFloat32(new Uint8Array(new BigUint64Array([2n ** 64n - 1n]).buffer), 'U64'), 'dtype', '18446744073709551615');
  });

  it('misaligned views decode the same as aligned ones (all multi-byte dtypes)', () => {
    const cases: [Dtype, Uint8Array][] = [
      ['F32', new Uint8Array(new Float32Array([1.5, -2.25, 3e-40]).buffer)],
      ['F64', new Uint8Array(new Float64Array([1.5, -1 / 3]).buffer)],
      ['BF16', new Uint8Array(new Uint16Array([0x3fc0, 0xc010, 0x0001]).buffer)],
      ['F16', new Uint8Array(new Uint16Array([0x3c00, 0x8001]).buffer)],
      ['I16', new Uint8Array(new Int16Array([-3, 300]).buffer)],
      ['U16', new Uint8Array(new Uint16Array([3, 60000]).buffer)],
      ['I32', new Uint8Array(new Int32Array([-70000, 5]).buffer)],
      ['U32', new Uint8Array(new Uint32Array([70000]).buffer)],
      ['I64', new Uint8Array(new BigInt64Array([-9n, 1n << 40n]).buffer)],
      ['U64', new Uint8Array(new BigUint64Array([9n]).buffer)],
    ];
    for (const [dtype, aligned] of cases) {
      const shifted = new Uint8Array(aligned.length + 1);
      shifted.set(aligned, 1);
      const view = shifted.subarray(1);
      assert.equal(view.byteOffset, 1);
      assert.deepEqual(decodeToFloat32(view, dtype), decodeToFloat32(aligned, dtype), dtype);
    }
  });

  it('a byte count that is not a whole number of elements is refused', () => {
    throwsWith(() => decodeToFloat32(new Uint8Array(3), 'BF16', { file: 'x.safetensors', tensor: 't' }), 'format', 'x.safetensors', 'tensor "t"', '3 bytes');
    throwsWith(() => decodeToFloat32(new Uint8Array(6), 'F32'), 'format');
  });

  it('unsupported dtypes are refused with a dtype error naming the tensor', () => {
    for (const dtype of ['F4', 'F6_E2M3', 'F6_E3M2', 'C64', 'BOOL'] as const) {
      throwsWith(() => decodeToFloat32(new Uint8Array(8), dtype, { file: 'm.safetensors', tensor: 'w' }), 'dtype', 'm.safetensors', 'tensor "w"', dtype);
    }
  });
});
