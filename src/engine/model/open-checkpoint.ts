/**
 * Assembles a Checkpoint from a FileProvider: config.json, then a sharded index or a single file,
 * reading only the headers. Tensor data is read later, by byte range, on demand.
 */
import { stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { MoeInspectorError } from '../errors';
import type { ByteSource } from '../io/byte-source';
import { readSafetensorsHeader } from '../formats/safetensors';
import type { Checkpoint, FileProvider, TensorEntry } from './checkpoint';
import { assertPlainFileName, LocalFolderProvider } from './local-provider';

export const INDEX_FILE = 'model.safetensors.index.json';
const SINGLE_FILE = 'model.safetensors';

export async function openCheckpointFromProvider(provider: FileProvider, source: string, entry?: string): Promise<Checkpoint> {
  const single = entry !== undefined && entry.endsWith('.safetensors');
  const config = await readConfig(provider, single);
  const shards = await shardPlan(provider, entry);
  const sources = new Map<string, ByteSource>();
  try {
    const tensors = new Map<string, TensorEntry>();
    const fileMetadata = new Map<string, Record<string, string>>();
    for (const [file, expected] of shards) {
      const src = await provider.open(file);
      if (src === null) throw missingShard(provider, file, expected);
      sources.set(file, src);
      const header = await readSafetensorsHeader(src);
      fileMetadata.set(file, header.metadata);
      for (const t of header.tensors) {
        if (tensors.has(t.name)) throw new MoeInspectorError('format', `tensor appears in two shards (${tensors.get(t.name)!.file} and ${file})`, { file: src.name, tensor: t.name });
        tensors.set(t.name, { ...t, file });
      }
      for (const name of expected) {
        if (tensors.get(name)?.file !== file) throw new MoeInspectorError('format', `the index maps this tensor to ${file}, but that shard does not contain it`, { file: src.name, tensor: name });
      }
    }
    return makeCheckpoint(provider, source, config, tensors, fileMetadata, sources);
  } catch (e) {
    await Promise.all([...sources.values()].map((s) => s.close()));
    throw e;
  }
}

function missingShard(provider: FileProvider, file: string, expected: readonly string[]): MoeInspectorError {
  const example = expected[0] ? ` (it holds e.g. "${expected[0]}")` : '';
  return new MoeInspectorError('not-found', `shard "${file}" named by the index is missing${example}`, { file: `${provider.displayRoot}/${file}` });
}

async function readConfig(provider: FileProvider, optional: boolean): Promise<Record<string, unknown> | null> {
  const text = await provider.readText('config.json');
  if (text === null) {
    if (optional) return null;
    throw new MoeInspectorError('format', 'missing config.json: a model folder needs it to know the architecture', { file: provider.displayRoot });
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new MoeInspectorError('format', `config.json is not valid JSON (${(e as Error).message})`, { file: `${provider.displayRoot}/config.json` });
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new MoeInspectorError('format', 'config.json is not a JSON object', { file: `${provider.displayRoot}/config.json` });
  return v as Record<string, unknown>;
}

/** Shard file -> tensor names the index says it holds (empty for an un-indexed single file). */
async function shardPlan(provider: FileProvider, entry?: string): Promise<Map<string, string[]>> {
  if (entry !== undefined && entry.endsWith('.safetensors')) return new Map([[entry, []]]);
  const indexName = entry ?? INDEX_FILE;
  const indexText = await provider.readText(indexName);
  if (indexText !== null) return parseIndex(indexText, `${provider.displayRoot}/${indexName}`);
  if (entry !== undefined) throw new MoeInspectorError('not-found', 'file not found', { file: `${provider.displayRoot}/${entry}` });
  if (!(await exists(provider, SINGLE_FILE))) {
    throw new MoeInspectorError('not-found', `no ${SINGLE_FILE} or ${INDEX_FILE} in the model folder`, { file: provider.displayRoot });
  }
  return new Map([[SINGLE_FILE, []]]);
}

async function exists(provider: FileProvider, name: string): Promise<boolean> {
  const src = await provider.open(name);
  if (src === null) return false;
  await src.close();
  return true;
}

export function parseIndex(text: string, file: string): Map<string, string[]> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new MoeInspectorError('format', `index is not valid JSON (${(e as Error).message})`, { file });
  }
  const map = (v as { weight_map?: unknown } | null)?.weight_map;
  if (typeof map !== 'object' || map === null || Array.isArray(map)) throw new MoeInspectorError('format', 'index has no "weight_map" object', { file });
  const shards = new Map<string, string[]>();
  for (const [tensor, shard] of Object.entries(map)) {
    if (typeof shard !== 'string') throw new MoeInspectorError('format', 'weight_map entry is not a file name', { file, tensor });
    assertPlainFileName(shard, { file, what: `weight_map entry for tensor "${tensor}":` });
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
  tensors: Map<string, TensorEntry>,
  fileMetadata: Map<string, Record<string, string>>,
  sources: Map<string, ByteSource>,
): Checkpoint {
  const totalBytes = [...sources.values()].reduce((a, s) => a + s.size, 0);
  return {
    source,
    revision: provider.revision,
    config,
    tensors,
    fileMetadata,
    totalBytes,
    async readTensorBytes(name, range) {
      const t = tensors.get(name);
      if (!t) throw new MoeInspectorError('layout', 'tensor not found in the checkpoint', { file: provider.displayRoot, tensor: name });
      const src = sources.get(t.file)!;
      const off = range?.offset ?? 0;
      const len = range?.length ?? t.byteLength;
      if (off < 0 || len < 0 || off + len > t.byteLength) {
        throw new MoeInspectorError('layout', `byte range [${off}, ${off + len}) lies outside the tensor's ${t.byteLength} bytes`, { file: src.name, tensor: name });
      }
      return src.read(t.offset + off, len);
    },
    async close() {
      await Promise.all([...sources.values()].map((s) => s.close()));
      await provider.close();
    },
  };
}

/** A local .safetensors file, a model.safetensors.index.json, or a model folder. */
export async function openCheckpoint(path: string, revision: string | null = null, trustedRoot?: string): Promise<Checkpoint> {
  const abs = resolve(path);
  let st;
  try {
    st = await stat(abs);
  } catch {
    throw new MoeInspectorError('not-found', 'no such file or folder', { file: path });
  }
  if (st.isDirectory()) return openCheckpointFromProvider(new LocalFolderProvider(abs, revision, trustedRoot ?? abs), path);
  const folder = dirname(abs);
  return openCheckpointFromProvider(new LocalFolderProvider(folder, revision, trustedRoot ?? folder), path, basename(abs));
}
