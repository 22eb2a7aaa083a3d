/**
 * safetensors header reading with every rule the reference implementation (huggingface/safetensors,
 * src/tensor.rs) enforces, plus duplicate-key detection (forbidden by the spec, silently merged by
 * JSON.parse). Only the 8-byte prefix and the header are read; tensor data stays on disk.
 */
import { MoeInspectorError } from '../errors';
import type { ByteSource } from '../io/byte-source';
import type { TensorInfo } from '../model/checkpoint';
import { DTYPE_BITS, isDtype, type Dtype } from './dtype';
import { firstDuplicateKey } from './json-duplicates';

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
  if (src.size < 8) throw new MoeInspectorError('format', `file is ${src.size} bytes, shorter than the 8-byte header length: not a safetensors file`, { file });
  const n = headerLengthOf(await src.read(0, 8), src.size, file);
  const header = decodeHeaderJson(await src.read(8, n), file);
  return { headerLength: n, ...parseHeaderObject(header, n, src.size, file) };
}

function headerLengthOf(prefix: Uint8Array, size: number, file: string): number {
  const n64 = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (n64 > BigInt(MAX_HEADER_BYTES)) throw new MoeInspectorError('format', `header length ${n64} exceeds the ${MAX_HEADER_BYTES}-byte limit: not a safetensors file, or corrupt`, { file });
  const n = Number(n64);
  if (8 + n > size) throw new MoeInspectorError('format', `header length ${n} runs past the end of the file (${size} bytes): truncated or not a safetensors file`, { file });
  return n;
}

function decodeHeaderJson(bytes: Uint8Array, file: string): Record<string, unknown> {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw new MoeInspectorError('format', 'header is not valid UTF-8', { file });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new MoeInspectorError('format', `header is not valid JSON (${(e as Error).message})`, { file });
  }
  if (!isPlainObject(value)) throw new MoeInspectorError('format', 'header is not a JSON object', { file });
  const dup = firstDuplicateKey(text);
  if (dup !== null) {
    // A duplicate at the top level is a tensor name; deeper, it is a field inside that tensor's entry.
    const problem = dup.path.length === 0 ? `duplicate key "${dup.key}" in header` : `duplicate field "${dup.key}" in header entry`;
    throw new MoeInspectorError('format', problem, dup.path.length === 0 ? { file, tensor: dup.key } : { file, tensor: dup.path[0]! });
  }
  return value;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

interface ParsedEntry {
  readonly info: TensorInfo;
  readonly begin: number;
  readonly end: number;
}

function parseHeaderObject(header: Record<string, unknown>, n: number, size: number, file: string): Omit<SafetensorsHeader, 'headerLength'> {
  const metadata = parseMetadata(header['__metadata__'], file);
  const entries: ParsedEntry[] = [];
  for (const [name, raw] of Object.entries(header)) {
    if (name !== '__metadata__') entries.push(parseEntry(name, raw, 8 + n, file));
  }
  // The reference sorts by (begin, end) and then demands exact contiguity from offset 0.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expected = 0;
  for (const e of entries) {
    if (e.begin !== expected) {
      const what = e.begin < expected ? 'overlaps the previous tensor' : `leaves a hole (expected begin ${expected})`;
      throw new MoeInspectorError('format', `data_offsets [${e.begin}, ${e.end}] ${what}`, { file, tensor: e.info.name });
    }
    expected = e.end;
  }
  const needed = 8 + n + expected;
  if (!Number.isSafeInteger(needed)) throw new MoeInspectorError('format', 'tensor data offsets overflow', { file });
  if (needed !== size) {
    const problem = needed > size
      ? `tensor data needs ${needed} bytes but the file has ${size}: truncated file`
      : `file has ${size - needed} bytes after the last tensor: corrupt or not a safetensors file`;
    throw new MoeInspectorError('format', problem, { file });
  }
  return { tensors: entries.map((e) => e.info), metadata };
}

/** __metadata__ is optional (null counts as absent, as in the reference) and maps strings to strings. */
function parseMetadata(raw: unknown, file: string): Record<string, string> {
  if (raw === undefined || raw === null) return {};
  if (!isPlainObject(raw)) throw new MoeInspectorError('format', '__metadata__ must be an object of string values', { file });
  for (const [k, v] of Object.entries(raw)) {
    if (typeof v !== 'string') throw new MoeInspectorError('format', `__metadata__ value for "${k}" is ${JSON.stringify(v)}, not a string`, { file });
  }
  return raw as Record<string, string>;
}

function isSafeUint(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

function parseEntry(name: string, raw: unknown, dataStart: number, file: string): ParsedEntry {
  const bad = (problem: string): MoeInspectorError => new MoeInspectorError('format', problem, { file, tensor: name });
  if (!isPlainObject(raw)) throw bad('entry is not an object with dtype, shape and data_offsets');
  const { dtype, shape, data_offsets: offs } = raw;
  if (dtype === undefined) throw bad('entry has no "dtype"');
  // Never guess: an unknown dtype name means we cannot know the element size.
  if (!isDtype(dtype)) throw bad(`unknown dtype ${JSON.stringify(dtype)} (known: BOOL, F4, F6_E2M3, F6_E3M2, U8, I8, F8_*, I16, U16, F16, BF16, I32, U32, F32, C64, F64, I64, U64)`);
  if (!Array.isArray(shape) || !shape.every(isSafeUint)) throw bad(`shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
  if (!Array.isArray(offs) || offs.length !== 2 || !offs.every(isSafeUint)) throw bad(`data_offsets ${JSON.stringify(offs)} is not [begin, end] of non-negative integers`);
  const [begin, end] = offs as [number, number];
  if (end < begin) throw bad(`data_offsets [${begin}, ${end}]: end is before begin`);
  const bytes = byteLengthOf(dtype, shape, bad);
  if (end - begin !== bytes) throw bad(`data_offsets [${begin}, ${end}] hold ${end - begin} bytes but ${dtype} [${shape.join(', ')}] needs ${bytes}`);
  const offset = dataStart + begin;
  if (!Number.isSafeInteger(offset + bytes)) throw bad('data_offsets overflow');
  return { info: { name, dtype, shape: Object.freeze([...shape]), offset, byteLength: bytes }, begin, end };
}

/** numel * bits / 8 with the reference's checks: overflow anywhere, or a fraction of a byte, is an error. */
function byteLengthOf(dtype: Dtype, shape: readonly number[], bad: (p: string) => MoeInspectorError): number {
  let numel = 1;
  for (const d of shape) {
    numel *= d;
    if (!Number.isSafeInteger(numel)) throw bad(`shape [${shape.join(', ')}] overflows: more elements than can be counted exactly`);
  }
  const bits = numel * DTYPE_BITS[dtype];
  if (!Number.isSafeInteger(bits)) throw bad(`shape [${shape.join(', ')}] of ${dtype} overflows`);
  if (bits % 8 !== 0) throw bad(`${numel} elements of ${dtype} (${bits} bits) is not a whole number of bytes`);
  return bits / 8;
}
