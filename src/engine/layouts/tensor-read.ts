/** Reading pieces of tensors as float32 matrices: one expert's slice of a fused [E, ...] tensor, by byte range. */
import { MoeInspectorError } from '../errors';
import { decodeToFloat32 } from '../formats/decode';
import type { RowRange } from '../formats/mxfp4';
import { countNonFinite } from '../formats/finite';
import type { Checkpoint, TensorEntry } from '../model/checkpoint';

export function tensorOf(ckpt: Checkpoint, name: string): TensorEntry {
  const t = ckpt.tensors.get(name);
  if (!t) throw new MoeInspectorError('layout', 'expected tensor is missing from the checkpoint', { file: ckpt.source, tensor: name });
  return t;
}

export function where(t: TensorEntry): { file: string; tensor: string } {
  return { file: t.file, tensor: t.name };
}

/** Raw bytes of slice j of `count` equal slices along dim 0 (count = 1: the whole tensor). */
export async function readSliceBytes(ckpt: Checkpoint, t: TensorEntry, j: number, count: number): Promise<Uint8Array> {
  if (t.byteLength % count !== 0) throw new MoeInspectorError('layout', `${t.byteLength} bytes do not split into ${count} equal expert slices`, where(t));
  const len = t.byteLength / count;
  return ckpt.readTensorBytes(t.name, { offset: j * len, length: len });
}

/** Slice j of a plain-dtype tensor, decoded exactly. */
export async function decodeSlice(ckpt: Checkpoint, t: TensorEntry, j: number, count: number): Promise<Float32Array> {
  return decodeToFloat32(await readSliceBytes(ckpt, t, j, count), t.dtype, where(t));
}

export function assertFinite(data: Float32Array, t: TensorEntry, expert: number): void {
  const bad = countNonFinite(data);
  if (bad > 0) throw new MoeInspectorError('non-finite', `${bad} NaN/Inf value${bad === 1 ? '' : 's'} in expert ${expert}`, where(t));
}

/** [rows, cols] -> [cols, rows]. */
export function transpose(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(a.length);
  const B = 64; // tiles keep both sides in cache
  for (let i0 = 0; i0 < rows; i0 += B) {
    for (let j0 = 0; j0 < cols; j0 += B) {
      const iEnd = Math.min(rows, i0 + B);
      const jEnd = Math.min(cols, j0 + B);
      for (let i = i0; i < iEnd; i++) for (let j = j0; j < jEnd; j++) out[j * rows + i] = a[i * cols + j]!;
    }
  }
  return out;
}

/** Which rows of a fused gate+up matrix belong to one projection. */
export type RowPick = 'even' | 'odd' | 'first-half' | 'second-half';

/** The rows a pick selects, as first/step/count. */
export function rowRangeOf(how: RowPick, rows: number): RowRange {
  const half = rows / 2;
  switch (how) {
    case 'even':
      return { first: 0, step: 2, count: half };
    case 'odd':
      return { first: 1, step: 2, count: half };
    case 'first-half':
      return { first: 0, step: 1, count: half };
    case 'second-half':
      return { first: half, step: 1, count: half };
  }
}

/** Rows of a [rows, cols] matrix: every second one (interleaved), or a contiguous half. */
export function pickRows(a: Float32Array, rows: number, cols: number, how: RowPick): Float32Array {
  const { first, step, count } = rowRangeOf(how, rows);
  if (step === 1) return a.slice(first * cols, (first + count) * cols);
  const out = new Float32Array(count * cols);
  for (let i = 0, r = first; i < count; i++, r += step) out.set(a.subarray(r * cols, (r + 1) * cols), i * cols);
  return out;
}

/** Elements of a vector: every second one, or a half. */
export function pickElems(v: Float32Array, how: RowPick): Float32Array {
  return pickRows(v, v.length, 1, how);
}


const PLAIN_FLOAT = new Set(['F64', 'F32', 'F16', 'BF16']);

/** Fused layouts here carry no scales: a quantized dtype there would decode to wrong numbers. */
export function assertPlainFloat(t: TensorEntry): void {
  if (!PLAIN_FLOAT.has(t.dtype)) throw new MoeInspectorError('dtype', `${t.dtype} expert weight in a layout without scale tensors: only F64/F32/F16/BF16 can be read exactly here`, where(t));
}
