import assert from 'node:assert/strict';
import { truncateSync } from 'node:fs';
import { openFileSource } from '../../src/engine/io/file-source';
import { rejectsWith, TempDir } from './helpers';

describe('openFileSource', () => {
  let tmp: TempDir;
  before(() => (tmp = new TempDir()));
  after(() => tmp.remove());

  const content = Uint8Array.from({ length: 5000 }, (_, i) => (i * 7 + 3) & 0xff);

  it('reads exactly the asked byte ranges, anywhere in the file', async () => {
    const path = tmp.file('data.bin', content);
    const src = await openFileSource(path);
    assert.equal(src.size, 5000);
    assert.equal(src.name, path);
    assert.deepEqual(await src.read(0, 5000), content);
    assert.deepEqual(await src.read(4093, 907), content.subarray(4093));
    assert.deepEqual(await src.read(17, 1), content.subarray(17, 18));
    assert.equal((await src.read(5000, 0)).length, 0);
    await src.close();
    await src.close(); // idempotent
  });

  it('rejects a range past the end, naming the file', async () => {
    const path = tmp.file('short.bin', content);
    const src = await openFileSource(path);
    await rejectsWith(src.read(4990, 11), 'format', path, 'past the end');
    await rejectsWith(src.read(-1, 2), 'io', path);
    await rejectsWith(src.read(0.5, 2), 'io', path);
    await src.close();
  });

  it('a file truncated after opening gives an io error, never a short buffer', async () => {
    const path = tmp.file('shrinks.bin', content);
    const src = await openFileSource(path);
    truncateSync(path, 1000);
    await rejectsWith(src.read(900, 200), 'io', path, 'unexpected end of file at offset 1000');
    await src.close();
  });

  it('missing file is not-found; a folder is refused', async () => {
    await rejectsWith(openFileSource(`${tmp.path}/nope.safetensors`), 'not-found', 'nope.safetensors');
    await rejectsWith(openFileSource(tmp.path), 'io', 'not a regular file');
  });
});
