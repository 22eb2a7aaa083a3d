/**
 * Reading a few rows of one expert's matrix by byte range (pass one of the streaming analysis reads
 * the same rows of every expert at once). Rows of a stored matrix are contiguous in a safetensors
 * tensor, so rows [first, first + count) of slice j are one byte range; quantized rows carry their
 * scales apart (FP8 block scales: one scale row per `b0` weight rows).
 */
import { MoeInspectorError } from '../errors';
import { decodeToFloat32 } from '../formats/decode';
import type { Checkpoint, TensorEntry } from '../model/checkpoint';
import { where } from './tensor-read';

/** Throws 'usage' unless [first, first + count) is a non-empty range inside `rows`. */
export function checkRowRange(first: number, count: number, rows: number, t: TensorEntry): void {
  if (!Number.isSafeInteger(first) || !Number.isSafeInteger(count) || first < 0 || count < 1 || first + count > rows) {
    throw new MoeInspectorError('usage', `rows [${first}, ${first + count}) are outside the expert's ${rows} rows`, where(t));
  }
}

/**
 * Raw bytes of rows [first, first + count) of slice j, where the tensor is `slices` equal slices
 * along dim 0 and each slice is `rowsPerSlice` rows of equal byte length.
 */
export async function readRowBytes(ckpt: Checkpoint, t: TensorEntry, j: number, slices: number, rowsPerSlice: number, first: number, count: number): Promise<Uint8Array> {
  const sliceBytes = t.byteLength / slices;
  const rowBytes = sliceBytes / rowsPerSlice;
  if (!Number.isInteger(sliceBytes) || !Number.isInteger(rowBytes)) {
    throw new MoeInspectorError('layout', `${t.byteLength} bytes do not split into ${slices} slices of ${rowsPerSlice} equal rows`, where(t));
  }
  checkRowRange(first, count, rowsPerSlice, t);
  return ckpt.readTensorBytes(t.name, { offset: j * sliceBytes + first * rowBytes, length: count * rowBytes });
}

/** Rows [first, first + count) of slice j of a plain-dtype tensor, decoded exactly. */
export async function decodeRows(ckpt: Checkpoint, t: TensorEntry, j: number, slices: number, rowsPerSlice: number, first: number, count: number): Promise<Float32Array> {
  return decodeToFloat32(await readRowBytes(ckpt, t, j, slices, rowsPerSlice, first, count), t.dtype, where(t));
}

/** Every `step`-th row of a [rows, cols] block, starting at its first row. */
export function everyNthRow(a: Float32Array, cols: number, step: number, count: number): Float32Array {
  if (step === 1) return a;
  const out = new Float32Array(count * cols);
  for (let i = 0; i < count; i++) out.set(a.subarray(i * step * cols, (i * step + 1) * cols), i * cols);
  return out;
}

/** Columns of a [rows, cols] block: every second one from `first` (step 2), or the contiguous [first, first + count). */
export function pickColumns(a: Float32Array, rows: number, cols: number, first: number, step: number, count: number): Float32Array {
  const out = new Float32Array(rows * count);
  for (let i = 0; i < rows; i++) for (let k = 0, c = first; k < count; k++, c += step) out[i * count + k] = a[i * cols + c]!;
  return out;
}

/**
 * FP8 block scales applied in place to rows [first, first + count) of a weight whose scale grid
 * rows r0.. are in `scaleRows` ([n, gc], r0 = floor(first / b0)): the same per-element product,
 * rounded once to f32, as applyBlockScales on the whole matrix.
 */
export function applyRowBlockScales(w: Float32Array, first: number, count: number, cols: number, scaleRows: Float32Array, block: readonly [number, number]): void {
  const [b0, b1] = block;
  const gc = Math.ceil(cols / b1);
  const r0 = Math.floor(first / b0);
  for (let i = 0; i < count; i++) {
    const s0 = (Math.floor((first + i) / b0) - r0) * gc;
    const base = i * cols;
    for (let t = 0; t < gc; t++) {
      const s = scaleRows[s0 + t]!;
      const end = base + Math.min(cols, (t + 1) * b1);
      for (let k = base + t * b1; k < end; k++) w[k]! *= s;
    }
  }
}
