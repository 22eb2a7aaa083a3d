import assert from 'node:assert/strict';
import { decodeMxfp4 } from '../../src/engine/formats/mxfp4';
import { applyBlockScales } from '../../src/engine/formats/fp8-block';
import { decodeToFloat32 } from '../../src/engine/formats/decode';
import { countNonFinite } from '../../src/engine/formats/finite';
import { throwsWith } from './helpers';

/** A small deterministic generator (mulberry32), so failures reproduce. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const E2M1_MAGNITUDES = [0, 0.5, 1, 1.5, 2, 3, 4, 6];

/**
 * Independent MXFP4 encoder: values given as (magnitude index, sign, scale byte) are packed the
 * way GPT-OSS stores them: element 2k in the low nibble, 2k+1 in the high nibble, sign in bit 3.
 * Returns the blocks, the scales and the exact values (as f64) they stand for.
 */
function encodeMxfp4(rows: number, groups: number, pick: () => { mag: number; neg: boolean }, scaleOf: (g: number) => number) {
  const blocks = new Uint8Array(rows * groups * 16);
  const scales = new Uint8Array(rows * groups);
  const values = new Float64Array(rows * groups * 32);
  for (let g = 0; g < rows * groups; g++) {
    const s = scaleOf(g);
    scales[g] = s;
    for (let e = 0; e < 32; e++) {
      const { mag, neg } = pick();
      const code = (neg ? 8 : 0) | mag;
      const byte = g * 16 + (e >> 1);
      blocks[byte]! |= e % 2 === 0 ? code : code << 4;
      values[g * 32 + e] = (neg ? -1 : 1) * E2M1_MAGNITUDES[mag]! * Math.pow(2, s - 127);
    }
  }
  return { blocks, scales, values };
}

describe('MXFP4', () => {
  it('nibble order: low nibble is the even element, high nibble the odd one; bit 3 is the sign', () => {
    const blocks = new Uint8Array(16);
    blocks[0] = 0x21; // element 0 = code 1 (0.5), element 1 = code 2 (1)
    blocks[1] = 0xf7; // element 2 = code 7 (6), element 3 = code 15 (-6)
    blocks[15] = 0x9c; // element 30 = code 12 (-2), element 31 = code 9 (-0.5)
    const out = decodeMxfp4(blocks, new Uint8Array([128]), 1, 1); // scale 2^1
    assert.deepEqual([out[0], out[1], out[2], out[3], out[30], out[31]], [1, 2, 12, -12, -4, -1]);
    assert.equal(out.length, 32);
  });

  it('decodes an independently encoded [rows, groups] tensor exactly (realistic scales 100..150)', () => {
    const r = rng(7);
    const rows = 24;
    const groups = 5;
    const { blocks, scales, values } = encodeMxfp4(rows, groups, () => ({ mag: Math.floor(r() * 8), neg: r() < 0.5 }), () => 100 + Math.floor(r() * 51));
    const out = decodeMxfp4(blocks, scales, rows, groups);
    assert.equal(out.length, rows * groups * 32);
    for (let i = 0; i < values.length; i++) assert.ok(Object.is(out[i], values[i]) || (values[i] === 0 && out[i] === 0), `element ${i}: ${out[i]} vs ${values[i]}`);
    // Row-major [rows, groups*32]: row 3 starts after 3 * groups * 32 values.
    assert.equal(out[3 * groups * 32 + 32], values[(3 * groups + 1) * 32]);
  });

  it('extreme scales: 2^-127 stays exact in f32 subnormals; 254 overflows to Inf for |v| >= 2; 255 is NaN', () => {
    const every = () => {
      let k = 0;
      return () => ({ mag: k % 8, neg: k++ % 16 >= 8 });
    };
    const low = encodeMxfp4(1, 1, every(), () => 0);
    const lowOut = decodeMxfp4(low.blocks, low.scales, 1, 1);
    for (let i = 0; i < 32; i++) assert.equal(lowOut[i], low.values[i], `scale 0, element ${i}`);
    assert.equal(lowOut[1], 2 ** -128);
    const high = encodeMxfp4(1, 1, every(), () => 254);
    const highOut = decodeMxfp4(high.blocks, high.scales, 1, 1);
    assert.equal(highOut[3], 1.5 * 2 ** 127); // finite
    assert.equal(highOut[4], Infinity); // 2 * 2^127 = 2^128 is beyond f32
    assert.equal(countNonFinite(highOut), 16); // magnitudes 2, 3, 4, 6 in each of the 4 runs of 8 codes
    const nan = decodeMxfp4(new Uint8Array(16), new Uint8Array([255]), 1, 1);
    assert.equal(countNonFinite(nan), 32);
  });

  it('a row pick (even/odd rows, halves) decodes exactly the picked rows of the independent encoding', () => {
    const r = rng(11);
    const rows = 10;
    const groups = 3;
    const cols = groups * 32;
    const { blocks, scales, values } = encodeMxfp4(rows, groups, () => ({ mag: Math.floor(r() * 8), neg: r() < 0.5 }), () => 110 + Math.floor(r() * 30));
    const picks = { even: { first: 0, step: 2, count: 5 }, odd: { first: 1, step: 2, count: 5 }, secondHalf: { first: 5, step: 1, count: 5 }, one: { first: 9, step: 1, count: 1 } };
    for (const [name, pick] of Object.entries(picks)) {
      const out = decodeMxfp4(blocks, scales, rows, groups, {}, pick);
      assert.equal(out.length, pick.count * cols, name);
      for (let i = 0; i < pick.count; i++) {
        const row = pick.first + i * pick.step;
        for (let c = 0; c < cols; c++) {
          const want = values[row * cols + c]!;
          assert.ok(Object.is(out[i * cols + c], want) || (want === 0 && out[i * cols + c] === 0), `${name}: row ${row} col ${c}`);
        }
      }
    }
  });

  it('refuses blocks or scales of the wrong size, and row picks outside the rows', () => {
    throwsWith(() => decodeMxfp4(new Uint8Array(15), new Uint8Array(1), 1, 1, { tensor: 'b' }), 'layout', 'tensor "b"', 'blocks');
    throwsWith(() => decodeMxfp4(new Uint8Array(32), new Uint8Array(1), 1, 2), 'layout', 'scales');
    throwsWith(() => decodeMxfp4(new Uint8Array(64), new Uint8Array(4), 4, 1, {}, { first: 1, step: 2, count: 3 }), 'layout', 'row pick');
    throwsWith(() => decodeMxfp4(new Uint8Array(64), new Uint8Array(4), 4, 1, {}, { first: 0, step: 0, count: 2 }), 'layout', 'row pick');
  });
});

describe('FP8 block scales', () => {
  /** The naive definition, in f64, rounded once to f32 per element. */
  function naive(w: Float32Array, rows: number, cols: number, s: Float32Array, b0: number, b1: number): Float32Array {
    const gc = Math.ceil(cols / b1);
    const out = new Float32Array(w.length);
    for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[i * cols + j] = w[i * cols + j]! * s[Math.floor(i / b0) * gc + Math.floor(j / b1)]!;
    return out;
  }

  it('300x200 weight in 128x128 blocks (partial edge tiles) matches the naive loop exactly', () => {
    const r = rng(11);
    const rows = 300;
    const cols = 200;
    const codes = Uint8Array.from({ length: rows * cols }, () => Math.floor(r() * 256) & 0xf7); // avoid the NaN codes 0x7f/0xff
    const w = decodeToFloat32(codes, 'F8_E4M3');
    const scales = Float32Array.from({ length: 3 * 2 }, () => Math.fround(r() * 0.01 + 1e-4));
    const expected = naive(w, rows, cols, scales, 128, 128);
    const actual = w.slice();
    applyBlockScales(actual, rows, cols, scales, [128, 128], {}, [3, 2]);
    assert.deepEqual(actual, expected);
    // Spot-check tiles by hand: the last row/column sit in tile (2, 1).
    assert.equal(actual[299 * 200 + 199], Math.fround(w[299 * 200 + 199]! * scales[5]!));
    assert.equal(actual[127 * 200 + 128], Math.fround(w[127 * 200 + 128]! * scales[1]!));
    assert.equal(actual[128 * 200 + 127], Math.fround(w[128 * 200 + 127]! * scales[2]!));
  });

  it('E8M0 scales decode to powers of two and apply exactly', () => {
    const w = new Float32Array([1, 2, 3, 4, 5, 6]);
    const s = decodeToFloat32(new Uint8Array([126, 129]), 'F8_E8M0'); // 0.5, 4
    applyBlockScales(w, 2, 3, s, [1, 3]);
    assert.deepEqual([...w], [0.5, 1, 1.5, 16, 20, 24]);
  });

  it('refuses a wrong scale grid: wrong count, or a transposed grid with the right count', () => {
    throwsWith(() => applyBlockScales(new Float32Array(300 * 200), 300, 200, new Float32Array(4), [128, 128], { tensor: 'w_scale_inv' }), 'layout', 'tensor "w_scale_inv"', '[3, 2]', '4 scales');
    throwsWith(() => applyBlockScales(new Float32Array(300 * 200), 300, 200, new Float32Array(6), [128, 128], {}, [2, 3]), 'layout', '[3, 2]', '[2, 3]');
    throwsWith(() => applyBlockScales(new Float32Array(4), 2, 2, new Float32Array(1), [0, 128]), 'layout', 'weight_block_size');
  });
});

describe('countNonFinite', () => {
  it('counts NaN, +Inf and -Inf, not large finite values or subnormals', () => {
    assert.equal(countNonFinite(new Float32Array([0, -0, 3.4e38, -3.4e38, 1e-45, NaN, Infinity, -Infinity, 1])), 3);
    assert.equal(countNonFinite(new Float32Array(0)), 0);
  });
});
