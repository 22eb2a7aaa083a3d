import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { BandMatrix, bandToTridiagonal } from '../../src/engine/numerics/band-tridiagonal';
import { jsPanelQR, panelQR } from '../../src/engine/numerics/band-reduction';
import { WasmAccumulator, wasmBandToTridiagonal, wasmCountNonFinite, wasmDeltaSquares, wasmLookup8, wasmPanelQR } from '../../src/engine/kernels/wasm-kernels';
import { countNonFiniteJs } from '../../src/engine/formats/finite';
import { lookup8Js } from '../../src/engine/formats/decode';
import { F8_E4M3FNUZ_TABLE, F8_E4M3_TABLE, F8_E5M2FNUZ_TABLE, F8_E5M2_TABLE, F8_E8M0_TABLE } from '../../src/engine/formats/minifloat';
import { KERNELS_WASM_BASE64 } from '../../src/engine/kernels/wasm/kernels-binary';
import { gaussian, maxAbsDiff } from './reference';

describe('WebAssembly SIMD kernels', function () {
  it('the committed binary is exactly what the npm-installed AssemblyScript compiler builds from kernels.as.ts (byte for byte)', async function () {
    this.timeout(120_000);
    const { compileKernels, binaryModuleText, BINARY_MODULE } = await import('../../src/engine/kernels/wasm/build-wasm.mjs');
    const built: Buffer = await compileKernels();
    assert.ok(built.equals(Buffer.from(KERNELS_WASM_BASE64, 'base64')), 'kernels-binary.ts is stale: run npm run build:wasm');
    assert.equal(readFileSync(BINARY_MODULE, 'utf8'), binaryModuleText(built));
  });

  it('bulge chasing in wasm gives the JS reference tridiagonal (1e-12 of the largest entry) and leaves its input unchanged', () => {
    const g = gaussian(31);
    for (const [n, b] of [[2, 1], [3, 2], [5, 8], [37, 5], [64, 1], [120, 16], [161, 32], [400, 24]] as const) {
      const band = new BandMatrix(n, b);
      for (let j = 0; j < n; j++) for (let i = j; i < Math.min(n, j + b + 1); i++) band.set(i, j, g());
      const input = Float64Array.from(band.a);
      const w = wasmBandToTridiagonal(n, b, input);
      assert.deepEqual(input, band.a);
      const js = bandToTridiagonal(band);
      const scale = Math.max(...js.d.map(Math.abs), ...js.e.map(Math.abs));
      assert.ok(maxAbsDiff(w.d, js.d) <= 1e-12 * scale && maxAbsDiff(w.e, js.e) <= 1e-12 * scale, `n=${n} b=${b}: d ${maxAbsDiff(w.d, js.d)}, e ${maxAbsDiff(w.e, js.e)}`);
    }
  });

  it('panel QR in wasm gives the JS reference V, T and R (1e-13), zero columns (tau = 0) included', () => {
    const g = gaussian(32);
    for (const [rows, b] of [[1, 1], [7, 3], [3, 7], [50, 12], [301, 24]] as const) {
      const panel = Float64Array.from({ length: rows * b }, (_, i) => (i % b === 1 ? 0 : g()));
      const w = panelQR(panel, rows, b, wasmPanelQR);
      const js = panelQR(panel, rows, b, jsPanelQR);
      for (const key of ['v', 't', 'r'] as const) assert.ok(maxAbsDiff(w[key], js[key]) <= 1e-13 * Math.sqrt(rows), `${rows}x${b} ${key}: ${maxAbsDiff(w[key], js[key])}`);
      assert.equal(w.identity, js.identity);
    }
  });

  it('pass one accumulation in wasm: sums bit-identical to float64 JS sums in call order, sums of squares to 1e-15 relative (odd lengths, growing blocks)', () => {
    const g = gaussian(77);
    const n = 1000003;
    const acc = new WasmAccumulator(n);
    const ref = new Float64Array(n);
    const extremes = [3e38, -3e38, 1e-45, -0, 65504];
    for (const [offset, len] of [[0, 7], [5, 1000], [1000, 999_003], [0, n], [n - 3, 3]] as const) {
      const x = Float32Array.from({ length: len }, (_, i) => (i < extremes.length ? extremes[i]! : g() * 10 ** ((i % 9) - 4)));
      let sq = 0;
      for (let i = 0; i < len; i++) {
        ref[offset + i]! += x[i]!;
        sq += x[i]! * x[i]!;
      }
      const got = acc.add(offset, x);
      assert.ok(Math.abs(got - sq) <= 1e-15 * sq, `${offset}+${len}: ${got} vs ${sq}`);
    }
    assert.deepEqual(acc.sums(), ref);
    assert.throws(() => acc.add(n - 1, new Float32Array(2)), RangeError);
  });

  it('non-finite scan in wasm counts exactly what the JS reference counts (NaN payloads, +-Inf, max finite, subnormals, -0; odd lengths; several chunks)', () => {
    const bits = new Uint32Array([0x7fc00000, 0xffc00001, 0x7f800001, 0x7f800000, 0xff800000, 0x7f7fffff, 0xff7fffff, 0x00000001, 0x80000000, 0x00800000, 0x7fffffff]);
    const specials = new Float32Array(bits.buffer);
    const g = gaussian(3);
    for (const len of [0, 1, 3, 4, 5, 1000, (1 << 20) + 7, 3 * (1 << 20) + 1]) {
      const x = Float32Array.from({ length: len }, (_, i) => (i % 997 === 5 ? specials[i % specials.length]! : g()));
      assert.equal(wasmCountNonFinite(x), countNonFiniteJs(x), `length ${len}`);
    }
    assert.equal(wasmCountNonFinite(specials), 6);
  });

  it('8-bit table decode in wasm gives the JS reference bit for bit, NaN payloads included (every FP8 table and E8M0; odd lengths, unaligned input, several chunks)', () => {
    const tables = [F8_E4M3_TABLE, F8_E4M3FNUZ_TABLE, F8_E5M2_TABLE, F8_E5M2FNUZ_TABLE, F8_E8M0_TABLE];
    const bitsOf = (x: Float32Array) => new Uint32Array(x.buffer, x.byteOffset, x.length);
    for (const [ti, table] of tables.entries()) {
      for (const len of [0, 1, 3, 4, 5, 255, 256, 4099, (1 << 20) + 7, 2 * (1 << 20) + 3]) {
        const raw = new Uint8Array(len + 1).map((_, i) => (i * 151 + ti * 17 + (i >> 8)) & 255);
        const bytes = raw.subarray(1); // an odd byte offset
        assert.deepEqual(bitsOf(wasmLookup8(bytes, table)), bitsOf(lookup8Js(bytes, table)), `table ${ti}, length ${len}`);
      }
    }
    assert.throws(() => wasmLookup8(new Uint8Array(4), new Float32Array(16)), /256 entries/);
  });

  it('delta sum of squares in wasm equals the float64 JS sum to 1e-14 relative (odd lengths, several chunks, values 1e-30..1e30)', () => {
    const g = gaussian(9);
    for (const len of [1, 3, 4, 1001, (1 << 20) + 3, 2 * (1 << 20) + 5]) {
      const w = Float32Array.from({ length: len }, (_, i) => g() * 10 ** ((i % 7) * 10 - 30));
      const b = Float32Array.from({ length: len }, (_, i) => (i % 3 === 0 ? w[i]! : g() * 10 ** ((i % 7) * 10 - 30)));
      let ref = 0;
      for (let i = 0; i < len; i++) ref += (w[i]! - b[i]!) ** 2;
      const got = wasmDeltaSquares(w, b);
      assert.ok(Math.abs(got - ref) <= 1e-14 * ref, `length ${len}: ${got} vs ${ref}`);
    }
    assert.throws(() => wasmDeltaSquares(new Float32Array(2), new Float32Array(3)), RangeError);
  });
});
