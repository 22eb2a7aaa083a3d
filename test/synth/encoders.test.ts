import { strict as assert } from 'node:assert';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { bf16Bits, bf16Value, e4m3Value, e5m2Value, encodeE4M3, encodeE5M2, encodeMxfp4Row, f16Bits, f16Value } from '../../src/engine/synth/encoders';
import { encodeMatrix } from '../../src/engine/synth/encode-matrix';
import { writeSafetensors, type TensorPlan } from '../../src/engine/synth/safetensors-writer';
import { withTempDir } from '../layouts/helpers';

describe('encoders against hand-computed values', function () {
  it('BF16 rounds to nearest, ties to even', () => {
    assert.equal(bf16Bits(1 + 2 ** -8), 0x3f80); // halfway between 1 and 1+2^-7: even -> 1
    assert.equal(bf16Bits(1 + 3 * 2 ** -9), 0x3f81); // -> 1 + 2^-7
    assert.equal(bf16Bits(1 + 3 * 2 ** -8), 0x3f82); // halfway between odd 1+2^-7 and even 1+2^-6
    assert.equal(bf16Bits(-2.5), 0xc020);
    assert.equal(bf16Bits(3.4028234663852886e38), 0x7f80); // f32 max rounds up to infinity
    assert.equal(bf16Value(0x3f81), 1 + 2 ** -7);
    assert.ok(Number.isNaN(bf16Value(bf16Bits(Number.NaN))));
  });

  it('F16 rounds to nearest, ties to even, with subnormals and overflow', () => {
    assert.equal(f16Bits(1 + 2 ** -11), 0x3c00);
    assert.equal(f16Bits(1 + 3 * 2 ** -11), 0x3c02);
    assert.equal(f16Bits(65504), 0x7bff);
    assert.equal(f16Bits(65519), 0x7bff);
    assert.equal(f16Bits(65520), 0x7c00);
    assert.equal(f16Bits(2 ** -24), 0x0001);
    assert.equal(f16Bits(2 ** -25), 0x0000); // tie between 0 and the smallest subnormal: even
    assert.equal(f16Bits(3 * 2 ** -25), 0x0002);
    assert.equal(f16Bits(2 ** -14 - 2 ** -25), 0x0400); // rounds up into the smallest normal
    assert.equal(f16Bits(-0), 0x8000);
    assert.equal(f16Value(0x3c02), 1 + 2 ** -9);
    assert.equal(f16Value(0x0001), 2 ** -24);
    assert.equal(f16Value(0xfbff), -65504);
  });

  it('F8_E4M3 rounds to nearest even and saturates at 448', () => {
    assert.equal(encodeE4M3(448), 0x7e);
    assert.equal(encodeE4M3(464), 0x7e);
    assert.equal(encodeE4M3(500), 0x7e);
    assert.equal(encodeE4M3(-1000), 0xfe);
    assert.equal(encodeE4M3(1 + 2 ** -4), 0x38); // tie between 1 and 1.125
    assert.equal(encodeE4M3(1 + 3 * 2 ** -4), 0x3a); // tie between 1.125 and 1.25
    assert.equal(encodeE4M3(2 ** -9), 0x01); // smallest subnormal
    assert.equal(encodeE4M3(2 ** -10), 0x00);
    assert.equal(encodeE4M3(Number.NaN), 0x7f);
    assert.equal(e4m3Value(0x7e), 448);
    assert.equal(e4m3Value(0xba), -1.25);
  });

  it('F8_E5M2 rounds to nearest even and saturates at 57344', () => {
    assert.equal(encodeE5M2(57344), 0x7b);
    assert.equal(encodeE5M2(1e6), 0x7b);
    assert.equal(encodeE5M2(-1e6), 0xfb);
    assert.equal(encodeE5M2(1 + 2 ** -3), 0x3c);
    assert.equal(encodeE5M2(1 + 3 * 2 ** -3), 0x3e);
    assert.equal(encodeE5M2(2 ** -16), 0x01);
    assert.ok(Number.isNaN(e5m2Value(encodeE5M2(Number.NaN))));
    assert.equal(e5m2Value(0x3e), 1.5);
  });

  it('MXFP4: power-of-two scale per 32 inputs, nearest E2M1 code (ties even), low nibble first', () => {
    const row = new Float32Array(64);
    row.set([6, 5, -2.9, 0.25, 0.75], 0);
    row[32] = 0.1;
    row[33] = -0.03;
    const e = encodeMxfp4Row(row);
    // group 0: max 6 -> 2^(floor(log2 6) - 2) = 2^0, scale byte 127
    // group 1: max 0.1 -> 2^(-4 - 2) = 2^-6, scale byte 121; 0.1 / 2^-6 = 6.4 -> 6; -0.03 / 2^-6 = -1.92 -> -2
    assert.deepEqual([...e.scales], [127, 121]);
    assert.equal(e.blocks[0], 0x67); // codes 7 (6) | 6 (5 -> tie -> 4) << 4
    assert.equal(e.blocks[1], 0x0d); // -3 = code 8|5; 0.25 -> tie between 0 and 0.5 -> 0
    assert.equal(e.blocks[2], 0x02); // 0.75 -> tie between 0.5 and 1 -> 1 (code 2)
    assert.equal(e.blocks[16], 0xc7); // 6 | (-2 = code 12) << 4
    assert.deepEqual([...e.values.subarray(0, 5)], [6, 4, -3, 0, 1]);
    assert.deepEqual([e.values[32], e.values[33]], [6 * 2 ** -6, -2 * 2 ** -6]);
  });

  it('FP8 block scales: one F32 scale_inv per 128x128 tile (amax/448), partial edge tiles', () => {
    const rows = 2;
    const cols = 130;
    const w = new Float32Array(rows * cols).fill(0.25);
    w[0] = 896; // tile (0, 0): scale 2
    w[129] = -0.5; // tile (0, 1) holds only columns 128, 129: scale 0.5 / 448
    w[cols + 128] = 0.125;
    const e = encodeMatrix(w, rows, cols, 'FP8');
    assert.deepEqual(e.scales!.shape, [1, 2]);
    const s = new Float32Array(e.scales!.bytes.slice().buffer);
    assert.equal(s[0], 2);
    assert.equal(s[1], Math.fround(0.5 / 448));
    assert.equal(e.bytes[0], 0x7e);
    assert.equal(e.values[0], 896);
    assert.equal(e.bytes[129], 0xfe); // -0.5 / s = -448
    assert.equal(e.values[cols + 128], Math.fround(e4m3Value(e.bytes[cols + 128]!) * s[1]!));
    assert.equal(e.values[1], 0.25); // 0.125 * 2 exactly
  });
});

describe('streaming safetensors writer', function () {
  const plan = (name: string, dtype: 'F32' | 'U8', shape: number[], fill: number, chunks = 1): TensorPlan => ({
    name,
    dtype,
    shape,
    async produce(sink) {
      const n = (shape.reduce((a, b) => a * b, 1) * (dtype === 'F32' ? 4 : 1)) / chunks;
      for (let c = 0; c < chunks; c++) await sink(new Uint8Array(n).fill(fill + c));
    },
  });

  it('pads the header with spaces to a multiple of 8 and lays tensors out contiguously', async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, 'a.safetensors');
      const size = await writeSafetensors(path, [plan('x', 'F32', [3], 1), plan('y', 'U8', [5], 7, 5)], { format: 'pt' });
      const bytes = await readFile(path);
      assert.equal(bytes.length, size);
      const n = Number(bytes.readBigUInt64LE(0));
      assert.equal(n % 8, 0);
      const text = bytes.subarray(8, 8 + n).toString('utf8');
      assert.match(text, /^\{.*\} *$/);
      const header = JSON.parse(text);
      assert.deepEqual(header.x, { dtype: 'F32', shape: [3], data_offsets: [0, 12] });
      assert.deepEqual(header.y, { dtype: 'U8', shape: [5], data_offsets: [12, 17] });
      assert.deepEqual(header.__metadata__, { format: 'pt' });
      assert.equal(bytes.length, 8 + n + 17);
      assert.deepEqual([...bytes.subarray(8 + n + 12)], [7, 8, 9, 10, 11]); // the 5 chunks, in order
    });
  });

  it('leaves nothing behind when a tensor produces the wrong number of bytes', async () => {
    await withTempDir(async (dir) => {
      const bad: TensorPlan = { name: 'x', dtype: 'F32', shape: [4], produce: async (sink) => sink(new Uint8Array(12)) };
      await assert.rejects(writeSafetensors(join(dir, 'b.safetensors'), [bad]), /produced 12 bytes, expected 16/);
      assert.deepEqual(await readdir(dir), []);
    });
  });
});
