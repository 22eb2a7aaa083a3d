/**
 * Report files on disk. Writes are atomic (temp file in the same folder, fsync, rename), so a reader,
 * a Ctrl-C or a crash never sees half a report. The text is exactly JSON.stringify(value, null, 2),
 * but it is produced piece by piece (each element of a top-level array such as `layers` on its own),
 * so a whole-model report never has to exist as one string (V8 caps a string at about 512 MiB).
 */
import { open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { MoeInspectorError } from '../errors';

/** How deep the writer descends before stringifying a subtree whole: report -> layers -> one layer. */
const SPLIT_DEPTH = 3;
const FLUSH_BYTES = 1 << 20;

export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  const fh = await open(tmp, 'w');
  try {
    let buffered: string[] = [];
    let size = 0;
    for (const piece of jsonPieces(value, '', SPLIT_DEPTH)) {
      buffered.push(piece);
      size += piece.length;
      if (size >= FLUSH_BYTES) {
        await fh.write(buffered.join(''));
        buffered = [];
        size = 0;
      }
    }
    buffered.push('\n');
    await fh.write(buffered.join(''));
    // Data on disk before the rename makes it visible: a power cut cannot leave an empty report.
    await fh.datasync();
  } catch (e) {
    await fh.close();
    await rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  await rename(tmp, path);
}

/** The pieces of JSON.stringify(value, null, 2), nested at `indent`. */
export function* jsonPieces(value: unknown, indent: string, depth: number): Generator<string> {
  if (depth <= 0 || value === null || typeof value !== 'object' || typeof (value as { toJSON?: unknown }).toJSON === 'function') {
    yield (JSON.stringify(value, null, 2) ?? 'null').replace(/\n/g, `\n${indent}`);
    return;
  }
  const inner = `${indent}  `;
  if (Array.isArray(value)) {
    if (value.length === 0) return void (yield '[]');
    yield '[';
    for (const [i, v] of value.entries()) {
      yield `${i === 0 ? '' : ','}\n${inner}`;
      // JSON.stringify writes null for array holes, undefined and functions.
      yield* jsonPieces(v === undefined || typeof v === 'function' ? null : v, inner, depth - 1);
    }
    yield `\n${indent}]`;
    return;
  }
  const entries = Object.entries(value).filter(([, v]) => v !== undefined && typeof v !== 'function' && typeof v !== 'symbol');
  if (entries.length === 0) return void (yield '{}');
  yield '{';
  for (const [i, [k, v]] of entries.entries()) {
    yield `${i === 0 ? '' : ','}\n${inner}${JSON.stringify(k)}: `;
    yield* jsonPieces(v, inner, depth - 1);
  }
  yield `\n${indent}}`;
}

/** Files up to this size are parsed in one JSON.parse; larger ones piece by piece (see parseJsonBytes). */
const WHOLE_PARSE_BYTES = 64 << 20;

/**
 * A JSON file's parsed content, or null when the file does not exist; other failures name the file.
 * @param wholeParseBytes above this size the file is parsed piece by piece (tests lower it)
 */
export async function readJsonFile(path: string, wholeParseBytes = WHOLE_PARSE_BYTES): Promise<unknown | null> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new MoeInspectorError('io', `cannot read (${(e as Error).message})`, { file: path });
  }
  try {
    return bytes.length <= wholeParseBytes ? JSON.parse(bytes.toString('utf8')) : parseJsonBytes(bytes, SPLIT_DEPTH);
  } catch (e) {
    throw new MoeInspectorError('format', `not valid JSON (${(e as Error).message})`, { file: path });
  }
}

/**
 * JSON.parse of UTF-8 bytes that may be larger than one JavaScript string can hold (a whole-model
 * report of a 384-expert model runs past 1 GB): the top `depth` levels of objects and arrays are
 * split at their commas by a scan that skips strings, and each piece below is parsed on its own.
 * Multi-byte UTF-8 sequences never contain ASCII bytes, so scanning bytes is safe.
 */
export function parseJsonBytes(bytes: Uint8Array, depth: number): unknown {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return parseRange(buf, skipSpace(buf, 0, buf.length), trimSpace(buf, 0, buf.length), depth);
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const isOpen = (c: number | undefined): boolean => c === 0x5b || c === 0x7b; // [ {
const isSpace = (c: number | undefined): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

function skipSpace(buf: Buffer, i: number, end: number): number {
  while (i < end && isSpace(buf[i])) i++;
  return i;
}

function trimSpace(buf: Buffer, start: number, end: number): number {
  while (end > start && isSpace(buf[end - 1])) end--;
  return end;
}

/** Index just past the string starting at `i` (buf[i] is the opening quote). */
function stringEnd(buf: Buffer, i: number, end: number): number {
  for (let k = i + 1; k < end; k++) {
    if (buf[k] === BACKSLASH) k++;
    else if (buf[k] === QUOTE) return k + 1;
  }
  throw new SyntaxError(`unterminated string at byte ${i}`);
}

/** [start, end) of each comma-separated item directly inside the container spanning [open, close]. */
function items(buf: Buffer, open: number, close: number): [number, number][] {
  const out: [number, number][] = [];
  let nest = 0;
  let from = open + 1;
  for (let k = open + 1; k < close; k++) {
    const c = buf[k]!;
    // Most bytes of a report are digits, '.', '-' and whitespace: let them through with two tests.
    if (c < QUOTE || (c > COMMA && c < 0x5b)) continue;
    if (c === QUOTE) k = stringEnd(buf, k, close) - 1;
    else if (c === 0x5b || c === 0x7b) nest++;
    else if (c === 0x5d || c === 0x7d) nest--;
    else if (c === COMMA && nest === 0) {
      out.push([from, k]);
      from = k + 1;
    }
  }
  if (nest !== 0) throw new SyntaxError(`unbalanced brackets between bytes ${open} and ${close}`);
  if (skipSpace(buf, from, close) < close || out.length > 0) out.push([from, close]);
  return out;
}

function parseRange(buf: Buffer, start: number, end: number, depth: number): unknown {
  const first = buf[start];
  if (depth <= 0 || !isOpen(first)) return JSON.parse(buf.toString('utf8', start, end));
  const array = first === 0x5b;
  if (buf[end - 1] !== (array ? 0x5d : 0x7d)) throw new SyntaxError(`unclosed ${array ? 'array' : 'object'} at byte ${start}`);
  const parts = items(buf, start, end - 1).map(([a, b]) => [skipSpace(buf, a, b), trimSpace(buf, a, b)] as const);
  if (array) return parts.map(([a, b]) => parseRange(buf, a, b, depth - 1));
  const obj: Record<string, unknown> = {};
  for (const [a, b] of parts) {
    if (buf[a] !== QUOTE) throw new SyntaxError(`expected a key at byte ${a}`);
    const keyEnd = stringEnd(buf, a, b);
    const colon = skipSpace(buf, keyEnd, b);
    if (buf[colon] !== COLON) throw new SyntaxError(`expected ':' at byte ${colon}`);
    const key = JSON.parse(buf.toString('utf8', a, keyEnd)) as string;
    // defineProperty, as JSON.parse does: a "__proto__" key stays a plain property.
    Object.defineProperty(obj, key, { value: parseRange(buf, skipSpace(buf, colon + 1, b), b, depth - 1), enumerable: true, writable: true, configurable: true });
  }
  return obj;
}

/** JSON with object keys sorted (undefined members skipped), so equal values always give equal text; `undefined` itself gives "undefined". */
export function canonicalJson(v: unknown): string {
  if (v === undefined) return 'undefined';
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map((x) => (x === undefined ? 'null' : canonicalJson(x))).join(',')}]`;
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o)
    .filter((k) => o[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
}
