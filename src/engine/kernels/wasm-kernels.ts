/**
 * The WebAssembly SIMD kernels (wasm/kernels.as.ts, built into wasm/kernels-binary.ts), instantiated
 * once per thread. Each call copies its operands into the module's memory, runs, and copies the
 * results out: the copies are O(n b), the kernels O(n^2 b).
 */
import { KERNELS_WASM_BASE64 } from './wasm/kernels-binary';

interface Exports {
  readonly memory: WebAssembly.Memory;
  heapBase(): number;
  chase(a: number, n: number, b: number, v: number, w: number): void;
  panelQR(pc: number, rows: number, b: number, tau: number, t: number, v: number): void;
  accumulate(acc: number, x: number, len: number): number;
  countNonFinite(x: number, len: number): number;
  deltaSquares(w: number, b: number, len: number): number;
  lookup8(t: number, x: number, o: number, len: number): void;
}

let compiled: WebAssembly.Module | null = null;
let kernels: Exports | null = null;

function newInstance(): Exports {
  compiled ??= new WebAssembly.Module(Buffer.from(KERNELS_WASM_BASE64, 'base64'));
  return new WebAssembly.Instance(compiled, { env: { abort: () => { throw new Error('wasm kernel aborted'); } } }).exports as unknown as Exports;
}

/** The thread's shared instance (the solver kernels lay out its memory afresh on every call). */
function instance(): Exports {
  return (kernels ??= newInstance());
}

/** Grows the module's memory to hold `bytes` past its heap base; returns the base (16-aligned). */
function reserve(k: Exports, bytes: number): number {
  const base = k.heapBase();
  const need = base + bytes - k.memory.buffer.byteLength;
  if (need > 0) k.memory.grow(Math.ceil(need / 65536));
  return base;
}

/** Band -> tridiagonal bulge chasing in wasm SIMD: same storage and result as bandToTridiagonal (band-tridiagonal.ts). The band is left unchanged. */
export function wasmBandToTridiagonal(n: number, b: number, band: Float64Array): { d: Float64Array; e: Float64Array } {
  const k = instance();
  const stride = Math.max(1, 2 * b);
  const scratch = 8 * (b + 2);
  const base = reserve(k, 8 * band.length + 2 * scratch);
  const v = base + 8 * band.length;
  new Float64Array(k.memory.buffer, base, band.length).set(band);
  k.chase(base, n, b, v, v + scratch);
  const a = new Float64Array(k.memory.buffer, base, band.length);
  const d = new Float64Array(n);
  const e = new Float64Array(Math.max(0, n - 1));
  for (let i = 0; i < n; i++) d[i] = a[i * stride + i]!;
  for (let i = 0; i + 1 < n; i++) e[i] = a[i * stride + i + 1]!;
  return { d, e };
}

/** Panel QR in wasm SIMD (band-reduction.ts' PanelKernel, the same algorithm as jsPanelQR): pc is factorised in place. */
export function wasmPanelQR(pc: Float64Array, rows: number, b: number): { tau: Float64Array; t: Float64Array } {
  const k = Math.min(rows, b);
  const kern = instance();
  const base = reserve(kern, 8 * (pc.length + k + k * k + rows) + 64);
  const tauAt = base + 8 * pc.length;
  const tAt = tauAt + 8 * k;
  const vAt = tAt + 8 * k * k;
  new Float64Array(kern.memory.buffer, base, pc.length).set(pc);
  kern.panelQR(base, rows, b, tauAt, tAt, vAt);
  const mem = kern.memory.buffer;
  pc.set(new Float64Array(mem, base, pc.length));
  return { tau: new Float64Array(mem.slice(tauAt, tAt)), t: new Float64Array(mem.slice(tAt, vAt)) };
}

/**
 * Pass one's float64 running sums: acc[i] += x[i] over blocks of float32 values, each call also
 * returning the block's float64 sum of squares. acc lives in its own wasm instance (its own memory,
 * so the solver kernels cannot overwrite it) for the whole pass; only each block is copied in.
 * Measured on pass one's pattern (32 experts x blocks of 91 rows x 2880 columns): 620-720 M values/s,
 * 3.4-4.8x the JavaScript loop it replaces.
 */
export class WasmAccumulator {
  private readonly k = newInstance();
  private readonly accAt: number;
  private blockAt: number;
  private blockCap = 0;

  /** Sums up to 2^28 values (2 GiB of float64 in a 32-bit wasm memory); see fits(). */
  static fits(n: number): boolean {
    return n <= 2 ** 28;
  }

  constructor(readonly n: number) {
    this.accAt = reserve(this.k, 8 * n); // fresh memory is zero
    this.blockAt = this.accAt + 8 * n;
  }

  /** acc[offset + i] += x[i], i < x.length; returns sum x[i]^2 (float64). */
  add(offset: number, x: Float32Array): number {
    if (offset < 0 || offset + x.length > this.n) throw new RangeError(`block ${offset}..${offset + x.length} outside 0..${this.n}`);
    if (x.length > this.blockCap) {
      this.blockCap = x.length;
      const need = this.blockAt + 4 * x.length - this.k.memory.buffer.byteLength;
      if (need > 0) this.k.memory.grow(Math.ceil(need / 65536));
    }
    new Float32Array(this.k.memory.buffer, this.blockAt, x.length).set(x);
    return this.k.accumulate(this.accAt + 8 * offset, this.blockAt, x.length);
  }

  /** The sums (a copy). */
  sums(): Float64Array {
    return new Float64Array(this.k.memory.buffer.slice(this.accAt, this.accAt + 8 * this.n));
  }
}

/** Values per countNonFinite call: the module's memory grows by at most this many floats. */
const SCAN_CHUNK = 1 << 20;

/** NaN and +-Inf values in `data`, counted in wasm SIMD (exponent bits all ones), a chunk at a time. */
export function wasmCountNonFinite(data: Float32Array): number {
  const k = instance();
  const at = reserve(k, 4 * Math.min(SCAN_CHUNK, data.length));
  let n = 0;
  for (let i = 0; i < data.length; i += SCAN_CHUNK) {
    const part = data.subarray(i, i + SCAN_CHUNK);
    new Float32Array(k.memory.buffer, at, part.length).set(part);
    n += k.countNonFinite(at, part.length);
  }
  return n;
}

/** ||w - b||^2 in float64 (differences of the float32 values taken exactly in float64), in wasm SIMD a chunk at a time. */
export function wasmDeltaSquares(w: Float32Array, b: Float32Array): number {
  if (w.length !== b.length) throw new RangeError(`lengths ${w.length} and ${b.length} differ`);
  const k = instance();
  const chunk = Math.min(SCAN_CHUNK, w.length);
  const at = reserve(k, 8 * chunk);
  let s = 0;
  for (let i = 0; i < w.length; i += SCAN_CHUNK) {
    const x = w.subarray(i, i + SCAN_CHUNK);
    new Float32Array(k.memory.buffer, at, x.length).set(x);
    new Float32Array(k.memory.buffer, at + 4 * chunk, x.length).set(b.subarray(i, i + SCAN_CHUNK));
    s += k.deltaSquares(at, at + 4 * chunk, x.length);
  }
  return s;
}

/** The 8-bit formats' decode, out[i] = table[bytes[i]], in wasm a chunk at a time (1 MiB of bytes, 4 MiB of floats). */
export function wasmLookup8(bytes: Uint8Array, table: Float32Array): Float32Array {
  if (table.length !== 256) throw new RangeError(`a byte table has 256 entries, not ${table.length}`);
  const k = instance();
  const chunk = Math.min(SCAN_CHUNK, bytes.length);
  const t = reserve(k, 0); // the table, then the bytes, then the floats (16-aligned)
  const x = t + 1024;
  const o = x + Math.ceil(chunk / 16) * 16;
  reserve(k, o - t + 4 * chunk);
  new Float32Array(k.memory.buffer, t, 256).set(table);
  const out = new Float32Array(bytes.length);
  for (let i = 0; i < bytes.length; i += SCAN_CHUNK) {
    const part = bytes.subarray(i, i + SCAN_CHUNK);
    new Uint8Array(k.memory.buffer, x, part.length).set(part);
    k.lookup8(t, x, o, part.length);
    out.set(new Float32Array(k.memory.buffer, o, part.length), i);
  }
  return out;
}
