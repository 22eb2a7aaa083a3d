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
  const raw = parseHeaderJson(await src.read(8, n), file);
  return { headerLength: n, tensors: validateEntries(raw.entries, 8 + n, src.size - 8 - n, file), metadata: raw.metadata };
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

/** A checked entry: offsets are relative to the data section and exact (they lie inside the file). */
interface CheckedEntry {
  readonly raw: RawEntry;
  readonly begin: number;
  readonly end: number;
}

/**
 * Metadata::validate, then read_metadata's last check: sorted by (begin, end), the entries must
 * tile [0, dataLength) exactly; each one's byte length is numel * bits / 8 with every product
 * checked against usize overflow (so a zero-element tensor may have any dimension up to 2^64 - 1).
 * @param dataStart 8 + N: where the data section begins in the file
 */
function validateEntries(entries: readonly RawEntry[], dataStart: number, dataLength: number, file: string): TensorInfo[] {
  const checked: CheckedEntry[] = entries.map((e) => checkEntry(e, dataLength, file));
  if (!isSorted(checked)) checked.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expected = 0;
  for (const e of checked) {
    if (e.begin !== expected) {
      const what = e.begin < expected ? 'overlaps the previous tensor' : `leaves a hole (expected begin ${expected})`;
      throw new MoeInspectorError('format', `data_offsets [${e.begin}, ${e.end}] ${what}`, { file, tensor: e.raw.name });
    }
    expected = e.end;
  }
  // MetadataIncompleteBuffer: the data must end exactly at the end of the file.
  if (expected !== dataLength) {
    throw new MoeInspectorError('format', `file has ${dataLength - expected} bytes after the last tensor: corrupt or not a safetensors file`, { file });
  }
  return checked.map(({ raw, begin, end }) => ({
    name: raw.name,
    dtype: raw.dtype,
    // A dimension above 2^53 exists only in a zero-element tensor (any other would need more bytes
    // than a file can have); it is kept as the nearest float64.
    shape: Object.freeze(raw.shape.map(Number)),
    offset: dataStart + begin,
    byteLength: end - begin,
  }));
}

function isSorted(es: readonly CheckedEntry[]): boolean {
  for (let k = 1; k < es.length; k++) {
    const a = es[k - 1]!;
    const b = es[k]!;
    if (a.begin > b.begin || (a.begin === b.begin && a.end > b.end)) return false;
  }
  return true;
}

const show = (xs: readonly U64[]): string => excerpt(`[${xs.join(', ')}]`, 80);

/** One entry's own rules: end >= begin, numel * bits / 8 without overflow or a fraction of a byte, = end - begin. */
function checkEntry(e: RawEntry, dataLength: number, file: string): CheckedEntry {
  const bad = (problem: string): MoeInspectorError => new MoeInspectorError('format', problem, { file, tensor: e.name });
  // Numbers print as written: the parser only accepts canonical integers, whose decimal form is their text.
  const offs = `data_offsets [${e.begin}, ${e.end}]`;
  if (e.end < e.begin) throw bad(`${offs}: end is before begin`);
  const bytes = byteLengthOf(e, bad);
  // Offsets tile [0, dataLength): one past it can never be valid (the reference refuses it as a bad
  // offset or an incomplete buffer), and every offset inside it is an exact float64 integer.
  if (e.end > dataLength) throw bad(`${offs} reach past the ${dataLength} bytes of tensor data in the file: truncated file?`);
  const begin = Number(e.begin);
  const end = Number(e.end);
  if (BigInt(end - begin) !== BigInt(bytes)) throw bad(`${offs} hold ${end - begin} bytes but ${e.dtype} ${show(e.shape)} needs ${bytes}`);
  return { raw: e, begin, end };
}

/** numel * bits / 8 as the reference computes it: each product checked against 2^64 - 1 in order. */
function byteLengthOf(e: RawEntry, bad: (p: string) => MoeInspectorError): U64 {
  let numel: U64 = 1;
  for (const d of e.shape) {
    numel = checkedMul(numel, d);
    if (numel < 0) throw bad(`shape ${show(e.shape)} overflows: its element count exceeds 2^64-1`);
  }
  const bits = checkedMul(numel, DTYPE_BITS[e.dtype]);
  if (bits < 0) throw bad(`shape ${show(e.shape)} of ${e.dtype} overflows: its bit count exceeds 2^64-1`);
  if (Number(BigInt(bits) % 8n) !== 0) throw bad(`${numel} elements of ${e.dtype} (${bits} bits) is not a whole number of bytes`);
  return typeof bits === 'number' ? bits / 8 : narrow(bits / 8n);
}

/** a * b, exact; -1 when it exceeds 2^64 - 1 (usize::checked_mul's None). */
function checkedMul(a: U64, b: U64): U64 {
  if (typeof a === 'number' && typeof b === 'number') {
    const p = a * b;
    if (Number.isSafeInteger(p)) return p;
  }
  const p = BigInt(a) * BigInt(b);
  return p > U64_MAX ? -1 : narrow(p);
}

const narrow = (x: bigint): U64 => (x <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(x) : x);
