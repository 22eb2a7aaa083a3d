import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openCheckpoint, openCheckpointFromProvider } from '../../src/engine/model/open-checkpoint';
import type { ByteSource } from '../../src/engine/io/byte-source';
import type { FileProvider } from '../../src/engine/model/checkpoint';
import { LocalFolderProvider } from '../../src/engine/model/local-provider';
import { bf16Bytes, f32Bytes, rawFile, rejectsWith, safetensorsFile, TempDir } from '../formats/helpers';

const CONFIG = JSON.stringify({ model_type: 'mixtral', num_local_experts: 2 });

/** Three shards: two experts' weights and a router spread over them, with a matching index. */
function threeShards() {
  const w = (seed: number, n: number) => Array.from({ length: n }, (_, i) => (seed * 100 + i) / 4);
  return {
    'model-00001-of-00003.safetensors': safetensorsFile([
      { name: 'router', dtype: 'F32', shape: [2, 3], data: f32Bytes(w(1, 6)) },
      { name: 'e0', dtype: 'BF16', shape: [2, 2], data: bf16Bytes(w(2, 4)) },
    ], { format: 'pt' }),
    'model-00002-of-00003.safetensors': safetensorsFile([{ name: 'e1', dtype: 'F32', shape: [4], data: f32Bytes(w(3, 4)) }]),
    'model-00003-of-00003.safetensors': safetensorsFile([{ name: 'fused', dtype: 'F32', shape: [2, 3], data: f32Bytes(w(4, 6)) }]),
  };
}

function indexJson(map: Record<string, unknown>): string {
  return JSON.stringify({ metadata: { total_size: 0 }, weight_map: map });
}

const GOOD_MAP = {
  router: 'model-00001-of-00003.safetensors',
  e0: 'model-00001-of-00003.safetensors',
  e1: 'model-00002-of-00003.safetensors',
  fused: 'model-00003-of-00003.safetensors',
};

describe('checkpoint assembly', () => {
  let tmp: TempDir;
  before(() => (tmp = new TempDir()));
  after(() => tmp.remove());

  let n = 0;
  /** A fresh model folder with the given files. */
  function folder(files: Record<string, Uint8Array | string>): string {
    const dir = join(tmp.path, `m${n++}`);
    mkdirSync(dir);
    for (const [name, bytes] of Object.entries(files)) writeFileSync(join(dir, name), bytes);
    return dir;
  }

  it('a sharded model (3 shards): every tensor, its file, metadata, total size, byte-range reads', async () => {
    const shards = threeShards();
    const dir = folder({ 'config.json': CONFIG, 'model.safetensors.index.json': indexJson(GOOD_MAP), ...shards });
    const ckpt = await openCheckpoint(dir);
    try {
      assert.deepEqual(ckpt.config, JSON.parse(CONFIG));
      assert.equal(ckpt.revision, null);
      assert.equal(ckpt.source, dir);
      assert.deepEqual([...ckpt.tensors.keys()].sort(), ['e0', 'e1', 'fused', 'router']);
      assert.equal(ckpt.tensors.get('e1')!.file, 'model-00002-of-00003.safetensors');
      assert.deepEqual(ckpt.fileMetadata.get('model-00001-of-00003.safetensors'), { format: 'pt' });
      assert.equal(ckpt.totalBytes, Object.values(shards).reduce((a, b) => a + b.length, 0));
      assert.deepEqual(await ckpt.readTensorBytes('e0'), bf16Bytes([50, 50.25, 50.5, 50.75]));
      assert.deepEqual(await ckpt.readTensorBytes('e1'), f32Bytes([75, 75.25, 75.5, 75.75]));
      // One "expert" row of a fused [2, 3] tensor: bytes 12..24.
      assert.deepEqual(await ckpt.readTensorBytes('fused', { offset: 12, length: 12 }), f32Bytes([100.75, 101, 101.25]));
      await rejectsWith(ckpt.readTensorBytes('fused', { offset: 16, length: 12 }), 'layout', 'tensor "fused"', 'outside');
      await rejectsWith(ckpt.readTensorBytes('fused', { offset: -4, length: 4 }), 'layout');
      await rejectsWith(ckpt.readTensorBytes('nope'), 'not-found', 'tensor "nope"');
    } finally {
      await ckpt.close();
      await ckpt.close();
    }
  });

  it('opens the same model through its index file, and one shard alone (with the folder config)', async () => {
    const dir = folder({ 'config.json': CONFIG, 'model.safetensors.index.json': indexJson(GOOD_MAP), ...threeShards() });
    const viaIndex = await openCheckpoint(join(dir, 'model.safetensors.index.json'));
    assert.equal(viaIndex.tensors.size, 4);
    await viaIndex.close();
    const shard = await openCheckpoint(join(dir, 'model-00002-of-00003.safetensors'));
    assert.deepEqual([...shard.tensors.keys()], ['e1']);
    assert.deepEqual(shard.config, JSON.parse(CONFIG));
    await shard.close();
  });

  it('a single model.safetensors folder; a bare .safetensors file without config.json has config null', async () => {
    const file = safetensorsFile([{ name: 'w', dtype: 'F32', shape: [1], data: f32Bytes([2]) }]);
    const dir = folder({ 'config.json': CONFIG, 'model.safetensors': file });
    const a = await openCheckpoint(dir);
    assert.deepEqual(await a.readTensorBytes('w'), f32Bytes([2]));
    await a.close();
    const bare = folder({ 'weights.safetensors': file });
    const b = await openCheckpoint(join(bare, 'weights.safetensors'));
    assert.equal(b.config, null);
    assert.equal(b.tensors.get('w')!.file, 'weights.safetensors');
    await b.close();
  });

  it('a model folder or index without config.json is a format error naming the folder', async () => {
    const dir = folder({ 'model.safetensors.index.json': indexJson(GOOD_MAP), ...threeShards() });
    await rejectsWith(openCheckpoint(dir), 'format', 'missing config.json', dir);
    await rejectsWith(openCheckpoint(join(dir, 'model.safetensors.index.json')), 'format', 'missing config.json');
    const single = folder({ 'model.safetensors': safetensorsFile([]) });
    await rejectsWith(openCheckpoint(single), 'format', 'missing config.json');
  });

  it('hostile index entries are refused, naming the index and the entry', async () => {
    for (const hostile of ['../x.safetensors', '/etc/passwd', 'sub/x.safetensors', '..\\x.safetensors', 'C:x.safetensors', '', 'a\0b']) {
      const dir = folder({ 'config.json': CONFIG, 'model.safetensors.index.json': indexJson({ ...GOOD_MAP, evil: hostile }), ...threeShards() });
      await rejectsWith(openCheckpoint(dir), 'hostile-path', join(dir, 'model.safetensors.index.json'), JSON.stringify(hostile), 'evil');
    }
  });

  it('a shard that is a symlink leaving the model folder is refused', async () => {
    const outside = folder({ 'x.safetensors': safetensorsFile([{ name: 'fused', dtype: 'U8', shape: [1], data: new Uint8Array(1) }]) });
    const shards = threeShards();
    const dir = folder({ 'config.json': CONFIG, 'model.safetensors.index.json': indexJson(GOOD_MAP), 'model-00001-of-00003.safetensors': shards['model-00001-of-00003.safetensors'], 'model-00002-of-00003.safetensors': shards['model-00002-of-00003.safetensors'] });
    symlinkSync(join(outside, 'x.safetensors'), join(dir, 'model-00003-of-00003.safetensors'));
    await rejectsWith(openCheckpoint(dir), 'hostile-path', 'model-00003-of-00003.safetensors', 'outside the model folder');
  });

  it('the provider refuses hostile names directly too', async () => {
    const p = new LocalFolderProvider(folder({}));
    await rejectsWith(p.open('../x'), 'hostile-path');
    await rejectsWith(p.readText('/etc/passwd'), 'hostile-path');
    assert.equal(await p.open('absent.safetensors'), null);
  });

  it('a missing shard is not-found, naming the shard and a tensor the index maps to it', async () => {
    const shards = threeShards();
    const dir = folder({ 'config.json': CONFIG, 'model.safetensors.index.json': indexJson(GOOD_MAP), 'model-00001-of-00003.safetensors': shards['model-00001-of-00003.safetensors'], 'model-00003-of-00003.safetensors': shards['model-00003-of-00003.safetensors'] });
    await rejectsWith(openCheckpoint(dir), 'not-found', 'model-00002-of-00003.safetensors', 'tensor "e1"', 'missing');
  });

  it('a tensor the index maps to a shard that does not hold it; a tensor in two shards', async () => {
    const dir = folder({ 'config.json': CONFIG, 'model.safetensors.index.json': indexJson({ ...GOOD_MAP, ghost: 'model-00002-of-00003.safetensors' }), ...threeShards() });
    await rejectsWith(openCheckpoint(dir), 'format', 'tensor "ghost"', 'model-00002-of-00003.safetensors', 'does not contain it');
    const shards = threeShards();
    const twice = folder({
      'config.json': CONFIG,
      'model.safetensors.index.json': indexJson(GOOD_MAP),
      ...shards,
      'model-00003-of-00003.safetensors': safetensorsFile([
        { name: 'fused', dtype: 'F32', shape: [1], data: f32Bytes([1]) },
        { name: 'e1', dtype: 'F32', shape: [1], data: f32Bytes([1]) },
      ]),
    });
    await rejectsWith(openCheckpoint(twice), 'format', 'tensor "e1"', 'two shards');
  });

  it('bad index files', async () => {
    const base = { 'config.json': CONFIG, ...threeShards() };
    const idx = (text: string) => folder({ ...base, 'model.safetensors.index.json': text });
    await rejectsWith(openCheckpoint(idx('{')), 'format', 'model.safetensors.index.json', 'not valid JSON');
    await rejectsWith(openCheckpoint(idx('{"weight_map": []}')), 'format', 'weight_map');
    await rejectsWith(openCheckpoint(idx('{"weight_map": {}}')), 'format', 'empty');
    await rejectsWith(openCheckpoint(idx(indexJson({ e0: 5 }))), 'format', 'tensor "e0"', 'not a file name');
    await rejectsWith(openCheckpoint(idx('{"weight_map": {"e0": "model-00001-of-00003.safetensors", "e0": "model-00002-of-00003.safetensors"}}')), 'format', 'tensor "e0"', 'twice');
  });

  it('a truncated shard is a format error naming the shard file', async () => {
    const shards = threeShards();
    const cut = shards['model-00002-of-00003.safetensors'].subarray(0, shards['model-00002-of-00003.safetensors'].length - 3);
    const dir = folder({ 'config.json': CONFIG, 'model.safetensors.index.json': indexJson(GOOD_MAP), ...shards, 'model-00002-of-00003.safetensors': cut });
    await rejectsWith(openCheckpoint(dir), 'format', join(dir, 'model-00002-of-00003.safetensors'), 'truncated');
  });

  it('a corrupt shard header fails the whole open with the shard named', async () => {
    const dir = folder({ 'config.json': CONFIG, 'model.safetensors.index.json': indexJson(GOOD_MAP), ...threeShards(), 'model-00003-of-00003.safetensors': rawFile('{"fused": 3}') });
    await rejectsWith(openCheckpoint(dir), 'format', 'model-00003-of-00003.safetensors', 'tensor "fused"');
  });

  it('nothing to open: empty folder, missing path, a file that is not a checkpoint', async () => {
    await rejectsWith(openCheckpoint(folder({ 'config.json': CONFIG })), 'not-found', 'no model.safetensors');
    await rejectsWith(openCheckpoint(join(tmp.path, 'does-not-exist')), 'not-found');
    const dir = folder({ 'config.json': CONFIG, 'notes.txt': 'hi' });
    await rejectsWith(openCheckpoint(join(dir, 'notes.txt')), 'usage', 'notes.txt');
    await rejectsWith(openCheckpoint(folder({ 'config.json': '[1]', 'model.safetensors': safetensorsFile([]) })), 'format', 'config.json');
  });

  it('through any FileProvider: opening reads only the headers; tensor reads fetch just their range', async () => {
    const files = new Map<string, Uint8Array>(Object.entries({ ...threeShards(), 'config.json': new TextEncoder().encode(CONFIG), 'model.safetensors.index.json': new TextEncoder().encode(indexJson(GOOD_MAP)) }));
    const reads: string[] = [];
    let dataBytesRead = 0;
    const provider: FileProvider = {
      displayRoot: 'mem:acme/moe',
      revision: 'c0ffee',
      async open(name) {
        const bytes = files.get(name);
        if (!bytes) return null;
        const src: ByteSource = {
          name: `mem:${name}`,
          size: bytes.length,
          async read(offset, length) {
            reads.push(`${name}@${offset}+${length}`);
            if (offset >= 8) dataBytesRead += length;
            return bytes.slice(offset, offset + length);
          },
          async close() {},
        };
        return src;
      },
      async readText(name) {
        const bytes = files.get(name);
        return bytes ? new TextDecoder().decode(bytes) : null;
      },
      async close() {},
    };
    const ckpt = await openCheckpointFromProvider(provider, 'acme/moe');
    assert.equal(ckpt.revision, 'c0ffee');
    // Per shard: the 8-byte length, then exactly the JSON header; no tensor data.
    const headerBytes = [...files.entries()].filter(([k]) => k.endsWith('.safetensors')).reduce((a, [, b]) => a + Number(new DataView(b.buffer, b.byteOffset).getBigUint64(0, true)), 0);
    assert.equal(reads.length, 6);
    assert.equal(dataBytesRead, headerBytes);
    reads.length = 0;
    const e1 = ckpt.tensors.get('e1')!;
    await ckpt.readTensorBytes('e1', { offset: 4, length: 8 });
    assert.deepEqual(reads, [`model-00002-of-00003.safetensors@${e1.offset + 4}+8`]);
    await ckpt.close();
    await rejectsWith(openCheckpointFromProvider(provider, 'acme/moe', 'absent.safetensors'), 'not-found', 'mem:acme/moe/absent.safetensors', 'file not found');
  });
});
