import assert from 'node:assert/strict';
import { openFileSource } from '../../src/engine/io/file-source';
import { readSafetensorsHeader } from '../../src/engine/formats/safetensors';
import { f32Bytes, rawFile, rejectsWith, safetensorsFile, TempDir } from './helpers';

describe('safetensors header', () => {
  let tmp: TempDir;
  before(() => (tmp = new TempDir()));
  after(() => tmp.remove());

  let counter = 0;
  async function header(bytes: Uint8Array) {
    const path = tmp.file(`f${counter++}.safetensors`, bytes);
    const src = await openFileSource(path);
    try {
      return { path, header: await readSafetensorsHeader(src), src };
    } finally {
      await src.close();
    }
  }
  /** Expects a 'format' error naming the file and every fragment. */
  async function bad(bytes: Uint8Array, ...fragments: string[]) {
    const path = tmp.file(`bad${counter++}.safetensors`, bytes);
    const src = await openFileSource(path);
    try {
      return await rejectsWith(readSafetensorsHeader(src), 'format', path, ...fragments);
    } finally {
      await src.close();
    }
  }
  const entry = (dtype: string, shape: unknown, offs: unknown) => ({ dtype, shape, data_offsets: offs });
  const json = (o: unknown) => JSON.stringify(o);

  describe('a valid file', () => {
    it('gives absolute offsets, shapes, dtypes and metadata; the bytes at those offsets are the tensors', async () => {
      const a = f32Bytes([1, 2, 3, 4, 5, 6]);
      const b = new Uint8Array([7, 8, 9]);
      const bytes = safetensorsFile([{ name: 'a', dtype: 'F32', shape: [2, 3], data: a }, { name: 'b', dtype: 'U8', shape: [3], data: b }], { format: 'pt' });
      const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
      const path = tmp.file('good.safetensors', bytes);
      const src = await openFileSource(path);
      const h = await readSafetensorsHeader(src);
      assert.equal(h.headerLength, n);
      assert.equal(n % 8, 0);
      assert.deepEqual(h.metadata, { format: 'pt' });
      assert.deepEqual(h.tensors.map((t) => [t.name, t.dtype, t.shape, t.offset, t.byteLength]), [
        ['a', 'F32', [2, 3], 8 + n, 24],
        ['b', 'U8', [3], 8 + n + 24, 3],
      ]);
      assert.deepEqual(await src.read(h.tensors[0]!.offset, 24), a);
      assert.deepEqual(await src.read(h.tensors[1]!.offset, 3), b);
      await src.close();
    });

    it('accepts entries in any order in the JSON (sorted by offset), rank-0 and zero-size tensors, F4 pairs, null metadata, no padding', async () => {
      const text = json({
        z: entry('F32', [], [2, 6]),
        e1: entry('BF16', [0, 5], [2, 2]),
        f4: entry('F4', [4], [0, 2]),
        __metadata__: null,
        e2: entry('F32', [3, 0], [6, 6]),
      });
      const { header: h } = await header(rawFile(text, new Uint8Array([1, 2, 0, 0, 128, 63])));
      assert.deepEqual(h.metadata, {});
      assert.deepEqual(h.tensors.map((t) => t.name).slice(0, 1), ['f4']);
      const z = h.tensors.find((t) => t.name === 'z')!;
      assert.deepEqual([z.shape, z.byteLength, z.offset], [[], 4, 8 + text.length + 2]);
      assert.equal(h.tensors.length, 4);
    });

    it('accepts an empty header {} (the reference writer output for no tensors)', async () => {
      const { header: h } = await header(rawFile('{}      '));
      assert.deepEqual(h.tensors, []);
    });

    it('accepts extra unknown fields in an entry, as the reference does', async () => {
      const { header: h } = await header(rawFile(json({ a: { ...entry('U8', [1], [0, 1]), note: 'x' } }), new Uint8Array([5])));
      assert.equal(h.tensors[0]!.byteLength, 1);
    });
  });

  describe('every rule of the reference reader', () => {
    it('file shorter than 8 bytes', () => bad(new Uint8Array([1, 0, 0, 0, 0]), '5 bytes'));
    it('header length above 100,000,000', () => bad(rawFile('{}', new Uint8Array(0), 100_000_001n), '100000001', 'limit'));
    it('header length 2^64-1', () => bad(rawFile('{}', new Uint8Array(0), 2n ** 64n - 1n), 'limit'));
    it('8 + N past the end of the file', () => bad(rawFile('{}', new Uint8Array(0), 50n), 'past the end'));
    it('header not UTF-8', () => bad(rawFile(new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d])), 'UTF-8'));
    it('header not JSON', () => bad(rawFile('{"a": '), 'not valid JSON'));
    it('header JSON but not an object', async () => {
      await bad(rawFile('[1, 2]'), 'not a JSON object');
      await bad(rawFile('null'), 'not a JSON object');
    });
    it('unknown dtype, named, never guessed', () => bad(rawFile(json({ w: entry('F128', [1], [0, 16]) }), new Uint8Array(16)), 'tensor "w"', 'unknown dtype "F128"'));
    it('dtype missing', () => bad(rawFile(json({ w: { shape: [1], data_offsets: [0, 1] } }), new Uint8Array(1)), 'tensor "w"', 'dtype'));
    it('shape with a non-integer', () => bad(rawFile(json({ w: entry('U8', [2.5], [0, 2]) }), new Uint8Array(2)), 'tensor "w"', 'shape'));
    it('shape with a negative', () => bad(rawFile(json({ w: entry('U8', [-2], [0, 2]) }), new Uint8Array(2)), 'tensor "w"', 'shape'));
    it('shape not a list', () => bad(rawFile(json({ w: entry('U8', '2', [0, 2]) }), new Uint8Array(2)), 'tensor "w"', 'shape'));
    it('data_offsets malformed', async () => {
      await bad(rawFile(json({ w: entry('U8', [2], [0]) }), new Uint8Array(2)), 'tensor "w"', 'data_offsets');
      await bad(rawFile(json({ w: entry('U8', [2], [0, -2]) }), new Uint8Array(2)), 'tensor "w"', 'data_offsets');
    });
    it('first tensor not at offset 0', () => bad(rawFile(json({ w: entry('U8', [2], [1, 3]) }), new Uint8Array(3)), 'tensor "w"', 'hole'));
    it('a hole between tensors', () => bad(rawFile(json({ a: entry('U8', [2], [0, 2]), b: entry('U8', [2], [3, 5]) }), new Uint8Array(5)), 'tensor "b"', 'hole'));
    it('overlapping tensors', () => bad(rawFile(json({ a: entry('U8', [2], [0, 2]), b: entry('U8', [2], [1, 3]) }), new Uint8Array(3)), 'tensor "b"', 'overlaps'));
    it('end before begin', () => bad(rawFile(json({ a: entry('U8', [0], [2, 0]) }), new Uint8Array(2)), 'tensor "a"', 'end is before begin'));
    it('numel * bits not a whole number of bytes', () => bad(rawFile(json({ q: entry('F4', [3], [0, 2]) }), new Uint8Array(2)), 'tensor "q"', 'whole number of bytes'));
    it('byte length does not match dtype and shape', () => bad(rawFile(json({ w: entry('F32', [2, 2], [0, 12]) }), new Uint8Array(12)), 'tensor "w"', 'needs 16'));
    it('element count overflow', () => bad(rawFile(json({ w: entry('F32', [2 ** 40, 2 ** 40], [0, 4]) }), new Uint8Array(4)), 'tensor "w"', 'overflows'));
    it('offsets beyond exact integers', () => bad(rawFile(json({ w: entry('U8', [1], [2 ** 60, 2 ** 60 + 1]) }), new Uint8Array(1)), 'tensor "w"', 'data_offsets'));
    it('trailing bytes after the last tensor', () => bad(rawFile(json({ w: entry('U8', [2], [0, 2]) }), new Uint8Array(3)), '1 bytes after the last tensor'));
    it('truncated data', () => bad(rawFile(json({ w: entry('F32', [4], [0, 16]) }), new Uint8Array(10)), 'truncated'));
    it('duplicate tensor names, which JSON.parse would silently merge', async () => {
      const text = '{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"w":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}';
      assert.equal(Object.keys(JSON.parse(text) as object).length, 1); // the trap
      await bad(rawFile(text, new Uint8Array(2)), 'tensor "w"', 'duplicate key');
    });
    it('a duplicate field inside an entry', () =>
      bad(rawFile('{"w":{"dtype":"F32","dtype":"U8","shape":[1],"data_offsets":[0,1]}}', new Uint8Array(1)), 'tensor "w"', 'duplicate field "dtype"'));
    it('a duplicate key inside __metadata__', () => bad(rawFile('{"__metadata__":{"k":"a","k":"b"}}'), 'duplicate field "k"'));
    it('__metadata__ with a non-string value', () => bad(rawFile(json({ __metadata__: { a: 1 } })), '__metadata__', '"a"'));
    it('__metadata__ not an object', () => bad(rawFile(json({ __metadata__: ['a'] })), '__metadata__'));
    it('an entry that is not an object', () => bad(rawFile(json({ w: 5 })), 'tensor "w"', 'not an object'));
  });

  it('a key that looks like a duplicate only inside string values is not one', async () => {
    const text = json({ __metadata__: { note: '"w": {"w": 1}' }, w: entry('U8', [1], [0, 1]) });
    const { header: h } = await header(rawFile(text, new Uint8Array([3])));
    assert.equal(h.metadata['note'], '"w": {"w": 1}');
  });
});
