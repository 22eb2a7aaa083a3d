/**
 * Assembles a Checkpoint from a FileProvider: config.json, then a sharded index or a single file,
 * reading only the headers. Tensor data is read later, by byte range, on demand.
 */
import { stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { MoeInspectorError } from '../errors';
import type { ByteSource } from '../io/byte-source';
import { readSafetensorsHeader } from '../formats/safetensors';
import { firstDuplicateKey } from '../formats/json-duplicates';
import type { Checkpoint, FileProvider, TensorEntry } from './checkpoint';
import { assertPlainFileName, LocalFolderProvider } from './local-provider';

export const INDEX_FILE = 'model.safetensors.index.json';
const SINGLE_FILE = 'model.safetensors';
/** Shard headers read at once: hides hub latency for 100+ shard models without flooding anything. */
const HEADER_CONCURRENCY = 8;

/** Which files to read and which tensors the index promises each one holds. */
interface ShardPlan {
  /** Shard file -> tensor names the index maps to it (empty for an un-indexed single file). */
  readonly shards: ReadonlyMap<string, readonly string[]>;
  /** A single .safetensors file the user named: config.json is optional then. */
  readonly singleFile: boolean;
}

/**
 * @param entry what inside the provider the user named: a .safetensors file, an index .json file,
 *   or nothing (the folder: model.safetensors.index.json, else model.safetensors)
 */
export async function openCheckpointFromProvider(provider: FileProvider, source: string, entry?: string): Promise<Checkpoint> {
  const plan = await shardPlan(provider, entry);
  const config = await readConfig(provider, plan.singleFile);
  const sources = new Map<string, ByteSource>();
  try {
    const headers = await mapLimited([...plan.shards.keys()], HEADER_CONCURRENCY, async (file) => {
      const src = await provider.open(file);
      if (src === null) {
        if (plan.singleFile) throw new MoeInspectorError('not-found', 'file not found', { file: `${provider.displayRoot}/${file}` });
        throw missingShard(provider, file, plan.shards.get(file)!);
      }
      sources.set(file, src);
      return { file, src, header: await readSafetensorsHeader(src) };
    });
    const tensors = new Map<string, TensorEntry>();
    const fileMetadata = new Map<string, Readonly<Record<string, string>>>();
    for (const { file, src, header } of headers) {
      fileMetadata.set(file, header.metadata);
      for (const t of header.tensors) {
        const earlier = tensors.get(t.name);
        if (earlier) throw new MoeInspectorError('format', `tensor appears in two shards (${earlier.file} and ${file})`, { file: src.name, tensor: t.name });
        tensors.set(t.name, { ...t, file });
      }
    }
    for (const { file, src } of headers) {
      for (const name of plan.shards.get(file)!) {
        if (tensors.get(name)?.file !== file) throw new MoeInspectorError('format', `the index maps this tensor to ${file}, but that shard does not contain it`, { file: src.name, tensor: name });
      }
    }
    return makeCheckpoint(provider, source, config, tensors, fileMetadata, sources);
  } catch (e) {
    await Promise.allSettled([...sources.values()].map((s) => s.close()));
    throw e;
  }
}

/** Runs `fn` over `items` with at most `limit` in flight; results in input order; first failure wins. */
async function mapLimited<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        results[i] = await fn(items[i]!);
      } catch (e) {
        failed = true;
        throw e;
      }
    }
  };
  const workers = Array.from({ length: Math.min(limit, items.length) }, worker);
  const settled = await Promise.allSettled(workers);
  const rejected = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (rejected) throw rejected.reason;
  return results;
}

function missingShard(provider: FileProvider, file: string, expected: readonly string[]): MoeInspectorError {
  const where = expected[0] !== undefined ? { file: `${provider.displayRoot}/${file}`, tensor: expected[0] } : { file: `${provider.displayRoot}/${file}` };
  const count = expected.length > 1 ? ` (and ${expected.length - 1} more tensors)` : '';
  return new MoeInspectorError('not-found', `shard named by the index is missing; the index maps this tensor${count} to it`, where);
}

async function readConfig(provider: FileProvider, optional: boolean): Promise<Record<string, unknown> | null> {
  const text = await provider.readText('config.json');
  const file = `${provider.displayRoot}/config.json`;
  if (text === null) {
    if (optional) return null;
    throw new MoeInspectorError('format', 'missing config.json: a model folder needs it to know the architecture', { file: provider.displayRoot });
  }
  const v = parseJson(text, file, 'config.json');
  if (!isPlainObject(v)) throw new MoeInspectorError('format', 'config.json is not a JSON object', { file });
  return v;
}

function parseJson(text: string, file: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new MoeInspectorError('format', `${what} is not valid JSON (${(e as Error).message})`, { file });
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

async function shardPlan(provider: FileProvider, entry?: string): Promise<ShardPlan> {
  if (entry !== undefined && entry.endsWith('.safetensors')) {
    assertPlainFileName(entry, { file: provider.displayRoot, what: 'file name' });
    return { shards: new Map([[entry, []]]), singleFile: true };
  }
  if (entry !== undefined && !entry.endsWith('.json')) {
    throw new MoeInspectorError('usage', 'not a .safetensors file, a model.safetensors.index.json or a model folder', { file: `${provider.displayRoot}/${entry}` });
  }
  const indexName = entry ?? INDEX_FILE;
  const indexText = await provider.readText(indexName);
  if (indexText !== null) return { shards: parseIndex(indexText, `${provider.displayRoot}/${indexName}`), singleFile: false };
  if (entry !== undefined) throw new MoeInspectorError('not-found', 'file not found', { file: `${provider.displayRoot}/${entry}` });
  if (!(await exists(provider, SINGLE_FILE))) {
    throw new MoeInspectorError('not-found', `no ${SINGLE_FILE} or ${INDEX_FILE} in the model folder`, { file: provider.displayRoot });
  }
  return { shards: new Map([[SINGLE_FILE, []]]), singleFile: false };
}

async function exists(provider: FileProvider, name: string): Promise<boolean> {
  const src = await provider.open(name);
  if (src === null) return false;
  await src.close();
  return true;
}

/**
 * Validates a model.safetensors.index.json and groups its weight_map by shard.
 * @param file the index's name, for messages
 */
export function parseIndex(text: string, file: string): Map<string, string[]> {
  const v = parseJson(text, file, 'index');
  if (!isPlainObject(v)) throw new MoeInspectorError('format', 'index is not a JSON object', { file });
  const map = v['weight_map'];
  if (!isPlainObject(map)) throw new MoeInspectorError('format', 'index has no "weight_map" object', { file });
  const dup = firstDuplicateKey(text);
  if (dup !== null && dup.path.length === 1 && dup.path[0] === 'weight_map') {
    throw new MoeInspectorError('format', 'weight_map lists this tensor twice', { file, tensor: dup.key });
  }
  const shards = new Map<string, string[]>();
  for (const [tensor, shard] of Object.entries(map)) {
    if (typeof shard !== 'string') throw new MoeInspectorError('format', `weight_map entry is ${JSON.stringify(shard)}, not a file name`, { file, tensor });
    assertPlainFileName(shard, { file, what: `weight_map entry for tensor ${JSON.stringify(tensor)}:` });
    const list = shards.get(shard) ?? [];
    list.push(tensor);
    shards.set(shard, list);
  }
  if (shards.size === 0) throw new MoeInspectorError('format', 'weight_map is empty', { file });
  return shards;
}

function makeCheckpoint(
  provider: FileProvider,
  source: string,
  config: Record<string, unknown> | null,
  tensors: ReadonlyMap<string, TensorEntry>,
  fileMetadata: ReadonlyMap<string, Readonly<Record<string, string>>>,
  sources: ReadonlyMap<string, ByteSource>,
): Checkpoint {
  const totalBytes = [...sources.values()].reduce((a, s) => a + s.size, 0);
  let closed: Promise<void> | null = null;
  return {
    source,
    revision: provider.revision,
    config,
    tensors,
    fileMetadata,
    totalBytes,
    async readTensorBytes(name, range) {
      const t = tensors.get(name);
      if (!t) throw new MoeInspectorError('not-found', 'tensor not found in the checkpoint', { file: provider.displayRoot, tensor: name });
      const src = sources.get(t.file)!;
      const off = range?.offset ?? 0;
      const len = range?.length ?? t.byteLength;
      if (!Number.isSafeInteger(off) || !Number.isSafeInteger(len) || off < 0 || len < 0 || off + len > t.byteLength) {
        throw new MoeInspectorError('layout', `byte range [${off}, ${off + len}) lies outside the tensor's ${t.byteLength} bytes`, { file: src.name, tensor: name });
      }
      return src.read(t.offset + off, len);
    },
    close() {
      closed ??= Promise.all([...sources.values()].map((s) => s.close())).then(() => provider.close());
      return closed;
    },
  };
}

/**
 * A local .safetensors file (its folder's config.json is used when present), a
 * model.safetensors.index.json, or a model folder.
 * @param revision the commit, when the path is a cache snapshot
 */
export async function openCheckpoint(pathOrFile: string, revision: string | null = null): Promise<Checkpoint> {
  const abs = resolve(pathOrFile);
  let st;
  try {
    st = await stat(abs);
  } catch {
    throw new MoeInspectorError('not-found', 'no such file or folder', { file: pathOrFile });
  }
  if (st.isDirectory()) return openCheckpointFromProvider(new LocalFolderProvider(abs, revision), pathOrFile);
  return openCheckpointFromProvider(new LocalFolderProvider(dirname(abs), revision), pathOrFile, basename(abs));
}
