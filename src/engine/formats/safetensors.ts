/**
 * safetensors header reading that accepts and refuses exactly what the reference implementation
 * (huggingface/safetensors, safetensors/src/tensor.rs: read_metadata, Metadata::validate) does,
 * except duplicate keys, which are refused (the spec forbids them; the reference keeps the last).
 * The JSON rules are in header-json.ts. Only the 8-byte prefix and the header are read.
 */
import { MoeInspectorError } from '../errors';
import type { ByteSource } from '../io/byte-source';
import type { TensorInfo } from '../model/checkpoint';
import { DTYPE_BITS } from './dtype';
import { excerpt, parseHeaderJson, U64_MAX, type RawEntry, type U64 } from './header-json';

/** The reference reader's limit on the header size (hub clients use 25 MB; we accept what the reference accepts). */
export const MAX_HEADER_BYTES = 100_000_000;

export interface SafetensorsHeader {
  /** N: the JSON header's byte length; tensor data starts at 8 + N. */
  readonly headerLength: number;
  /** Sorted by offset; offsets are absolute positions in the file. */
  readonly tensors: readonly TensorInfo[];
  readonly metadata: Readonly<Record<string, string>>;
}

export async function readSafetensorsHeader(src: ByteSource): Promise<SafetensorsHeader> {
  const file = src.name;
  // HeaderTooSmall: fewer than the 8 bytes of N.
  if (src.size < 8) throw new MoeInspectorError('format', `file is ${src.size} bytes, shorter than the 8-byte header length: not a safetensors file`, { file });
  const n = headerLengthOf(await src.read(0, 8), src.size, file);
  const dataLength = src.size - 8 - n;
  const raw = parseHeaderJson(await src.read(8, n), file, (e) => checkEntry(e, 8 + n, dataLength, file));
  return { headerLength: n, tensors: tileData(raw.entries, 8 + n, dataLength, file), metadata: raw.metadata };
}

function headerLengthOf(prefix: Uint8Array, size: number, file: string): number {
  const n64 = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  // HeaderTooLarge: n > MAX_HEADER_SIZE.
  if (n64 > BigInt(MAX_HEADER_BYTES)) throw new MoeInspectorError('format', `header length ${n64} exceeds the ${MAX_HEADER_BYTES}-byte limit: not a safetensors file, or corrupt`, { file });
  const n = Number(n64);
  // InvalidHeaderLength: the header runs past the buffer.
  if (8 + n > size) throw new MoeInspectorError('format', `header length ${n} runs past the end of the file (${size} bytes): truncated or not a safetensors file`, { file });
  return n;
}

/**
 * Metadata::validate's order rule, then read_metadata's last check: sorted by (begin, end), the
 * (already checked) entries must tile [0, dataLength) exactly.
 * @param dataStart 8 + N: where the data section begins in the file
 */
function tileData(entries: readonly TensorInfo[], dataStart: number, dataLength: number, file: string): TensorInfo[] {
  const infos = entries as TensorInfo[];
  // Writers lay tensors out in order, so the sort is usually skipped.
  if (!isSorted(infos)) infos.sort((a, b) => a.offset - b.offset || a.byteLength - b.byteLength);
  let expected = dataStart;
  for (const t of infos) {
    if (t.offset !== expected) {
      const [begin, end] = [t.offset - dataStart, t.offset - dataStart + t.byteLength];
      const what = t.offset < expected ? 'overlaps the previous tensor' : `leaves a hole (expected begin ${expected - dataStart})`;
      throw new MoeInspectorError('format', `data_offsets [${begin}, ${end}] ${what}`, { file, tensor: t.name });
    }
    expected = t.offset + t.byteLength;
  }
  // MetadataIncompleteBuffer: the data must end exactly at the end of the file.
  if (expected !== dataStart + dataLength) {
    throw new MoeInspectorError('format', `file has ${dataStart + dataLength - expected} bytes after the last tensor: corrupt or not a safetensors file`, { file });
  }
  return infos;
}

function isSorted(ts: readonly TensorInfo[]): boolean {
  for (let k = 1; k < ts.length; k++) {
    const a = ts[k - 1]!;
    const b = ts[k]!;
    if (a.offset > b.offset || (a.offset === b.offset && a.byteLength > b.byteLength)) return false;
  }
  return true;
}

const show = (xs: readonly U64[]): string => excerpt(`[${xs.join(', ')}]`, 80);

/**
 * One entry's own rules (Metadata::validate): end >= begin, numel * bits / 8 without overflow or a
 * fraction of a byte (checked in order, so a zero-element tensor may have any dimension up to
 * 2^64 - 1), equal to end - begin.
 */
function checkEntry(e: RawEntry, dataStart: number, dataLength: number, file: string): TensorInfo {
  // Numbers print as written: the parser only accepts canonical integers, whose decimal form is their text.
  if (e.end < e.begin) throw entryError(e, file, `data_offsets [${e.begin}, ${e.end}]: end is before begin`);
  const bytes = byteLengthOf(e, file);
  // Offsets tile [0, dataLength): one past it can never be valid (the reference refuses it as a bad
  // offset or an incomplete buffer), and every offset inside it is an exact float64 integer.
  if (e.end > dataLength) throw entryError(e, file, `data_offsets [${e.begin}, ${e.end}] reach past the ${dataLength} bytes of tensor data in the file: truncated file?`);
  const begin = e.begin as number;
  const end = e.end as number;
  if (end - begin !== bytes) throw entryError(e, file, `data_offsets [${begin}, ${end}] hold ${end - begin} bytes but ${e.dtype} ${show(e.shape)} needs ${bytes}`);
  // A dimension above 2^53 exists only in a zero-element tensor (any other would need more bytes
  // than a file can have); it is kept as the nearest float64.
  const shape = e.shape.every((d) => typeof d === 'number') ? (e.shape as number[]) : e.shape.map(Number);
  return { name: e.name, dtype: e.dtype, shape, offset: dataStart + begin, byteLength: end - begin };
}

function entryError(e: RawEntry, file: string, problem: string): MoeInspectorError {
  return new MoeInspectorError('format', problem, { file, tensor: e.name });
}

/** numel * bits / 8 as the reference computes it: each product checked against 2^64 - 1 in order. */
function byteLengthOf(e: RawEntry, file: string): U64 {
  let numel: U64 = 1;
  for (const d of e.shape) {
    numel = checkedMul(numel, d);
    if (numel === -1) throw entryError(e, file, `shape ${show(e.shape)} overflows: its element count exceeds 2^64-1`);
  }
  const bits = checkedMul(numel, DTYPE_BITS[e.dtype]);
  if (bits === -1) throw entryError(e, file, `shape ${show(e.shape)} of ${e.dtype} overflows: its bit count exceeds 2^64-1`);
  if (typeof bits === 'number') {
    if (bits % 8 !== 0) throw entryError(e, file, `${numel} elements of ${e.dtype} (${bits} bits) is not a whole number of bytes`);
    return bits / 8;
  }
  if (bits % 8n !== 0n) throw entryError(e, file, `${numel} elements of ${e.dtype} (${bits} bits) is not a whole number of bytes`);
  return narrow(bits / 8n);
}

/** a * b, exact; -1 when it exceeds 2^64 - 1 (usize::checked_mul's None). */
function checkedMul(a: U64, b: U64): U64 {
  if (typeof a === 'number' && typeof b === 'number') {
    const p = a * b;
    if (p <= Number.MAX_SAFE_INTEGER) return p;
  }
  const p = BigInt(a) * BigInt(b);
  return p > U64_MAX ? -1 : narrow(p);
}

const narrow = (x: bigint): U64 => (x <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(x) : x);
