/**
 * safetensors header reading with every rule the reference implementation (huggingface/safetensors,
 * src/tensor.rs) enforces, plus duplicate-key detection (forbidden by the spec, silently merged by
 * JSON.parse). Only the 8-byte prefix and the header are read; tensor data stays on disk.
 */
import { MoeInspectorError } from '../errors';
import type { ByteSource } from '../io/byte-source';
import type { TensorInfo } from '../model/checkpoint';
import { DTYPE_BITS, isDtype } from './dtype';

/** The reference reader's limit on the header size (hub clients use 25 MB; we accept what the reference accepts). */
export const MAX_HEADER_BYTES = 100_000_000;

export interface SafetensorsHeader {
  readonly headerLength: number;
  /** Sorted by offset. */
  readonly tensors: readonly TensorInfo[];
  readonly metadata: Readonly<Record<string, string>>;
}

export async function readSafetensorsHeader(src: ByteSource): Promise<SafetensorsHeader> {
  const file = src.name;
  if (src.size < 8) throw new MoeInspectorError('format', `file is ${src.size} bytes, shorter than the 8-byte header length`, { file });
  const n = headerLengthOf(await src.read(0, 8), src.size, file);
  const json = decodeHeaderJson(await src.read(8, n), file);
  return { headerLength: n, ...parseHeaderObject(json, n, src.size, file) };
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
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new MoeInspectorError('format', 'header is not valid UTF-8', { file });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new MoeInspectorError('format', `header is not valid JSON (${(e as Error).message})`, { file });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new MoeInspectorError('format', 'header is not a JSON object', { file });
  const dup = firstDuplicateTopLevelKey(text);
  if (dup !== null) throw new MoeInspectorError('format', `duplicate key in header`, { file, tensor: dup });
  return value as Record<string, unknown>;
}

function parseHeaderObject(header: Record<string, unknown>, n: number, size: number, file: string): Omit<SafetensorsHeader, 'headerLength'> {
  const metadata = parseMetadata(header['__metadata__'], file);
  const entries: { info: TensorInfo; begin: number; end: number }[] = [];
  for (const [name, raw] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    entries.push(parseEntry(name, raw, 8 + n, file));
  }
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expected = 0;
  for (const e of entries) {
    if (e.begin !== expected) {
      const what = e.begin < expected ? 'overlaps the previous tensor' : `leaves a hole (expected offset ${expected})`;
      throw new MoeInspectorError('format', `data_offsets [${e.begin}, ${e.end}] ${what}`, { file, tensor: e.info.name });
    }
    expected = e.end;
  }
  if (8 + n + expected !== size) {
    const problem = 8 + n + expected > size
      ? `tensor data needs ${8 + n + expected} bytes but the file has ${size}: truncated file`
      : `file has ${size - (8 + n + expected)} bytes after the last tensor: corrupt or not a safetensors file`;
    throw new MoeInspectorError('format', problem, { file });
  }
  return { tensors: entries.map((e) => e.info), metadata };
}

function parseMetadata(raw: unknown, file: string): Record<string, string> {
  if (raw === undefined) return {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new MoeInspectorError('format', '__metadata__ must be an object of strings', { file });
  for (const [k, v] of Object.entries(raw)) {
    if (typeof v !== 'string') throw new MoeInspectorError('format', `__metadata__ value for "${k}" is not a string`, { file });
  }
  return raw as Record<string, string>;
}

function isSafeUint(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

function parseEntry(name: string, raw: unknown, dataStart: number, file: string): { info: TensorInfo; begin: number; end: number } {
  const bad = (problem: string): MoeInspectorError => new MoeInspectorError('format', problem, { file, tensor: name });
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad('entry is not an object with dtype, shape and data_offsets');
  const { dtype, shape, data_offsets: offs } = raw as Record<string, unknown>;
  if (!isDtype(dtype)) throw new MoeInspectorError('dtype', `unknown dtype ${JSON.stringify(dtype)}`, { file, tensor: name });
  if (!Array.isArray(shape) || !shape.every(isSafeUint)) throw bad(`shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
  if (!Array.isArray(offs) || offs.length !== 2 || !offs.every(isSafeUint)) throw bad(`data_offsets ${JSON.stringify(offs)} is not [begin, end] of non-negative integers`);
  const [begin, end] = offs as [number, number];
  if (end < begin) throw bad(`data_offsets [${begin}, ${end}] end before begin`);
  const numel = shape.reduce((a: number, b: number) => a * b, 1);
  const bits = numel * DTYPE_BITS[dtype];
  if (!Number.isSafeInteger(bits)) throw bad(`shape ${JSON.stringify(shape)} overflows`);
  if (bits % 8 !== 0) throw bad(`${numel} elements of ${dtype} is not a whole number of bytes`);
  if (end - begin !== bits / 8) throw bad(`byte length ${end - begin} does not match dtype ${dtype} and shape [${shape.join(', ')}] (${bits / 8} bytes)`);
  return { info: { name, dtype, shape, offset: dataStart + begin, byteLength: end - begin }, begin, end };
}

/**
 * The first key that appears twice at the top level of a JSON object text, or null. A small scanner:
 * tracks nesting depth and string literals; keys are the strings at depth 1 followed by ':'.
 */
export function firstDuplicateTopLevelKey(text: string): string | null {
  const seen = new Set<string>();
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      const start = i;
      for (i++; text[i] !== '"'; i++) if (text[i] === '\\') i++;
      let j = i + 1;
      while (j < text.length && /\s/.test(text[j]!)) j++;
      if (depth === 1 && text[j] === ':') {
        const key = JSON.parse(text.slice(start, i + 1)) as string;
        if (seen.has(key)) return key;
        seen.add(key);
      }
    } else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') depth--;
  }
  return null;
}
