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

/** A JSON file's parsed content, or null when the file does not exist; other failures name the file. */
export async function readJsonFile(path: string): Promise<unknown | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new MoeInspectorError('io', `cannot read (${(e as Error).message})`, { file: path });
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new MoeInspectorError('format', `not valid JSON (${(e as Error).message})`, { file: path });
  }
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
