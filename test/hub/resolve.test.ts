import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { resolveMoeModel } from '../../src/engine/layouts';
import { layerIndex, PROJECTIONS } from '../../src/engine/layouts/types';
import { openCheckpoint } from '../../src/engine/model/open-checkpoint';
import { resolveModel, transferStatsOf } from '../../src/engine/model/resolve-model';
import { SyntheticModel } from '../../src/engine/synth/generate';
import { FakeHub } from './fake-hub';
import { COMMIT_A, FAST_RETRY, hubEnv, removeAll, SMALL_SPEC, tempDir, writeSmallModel } from './helpers';

describe('hub: a model read by byte range from a loopback hub', function () {
  let hub: FakeHub;
  let modelDir: string;
  let home: string;

  before(async () => {
    modelDir = await tempDir('model');
    await writeSmallModel(modelDir);
    hub = await new FakeHub().start();
    hub.repos.set('acme/tiny-moe', { dir: modelDir, refs: { main: COMMIT_A } });
  });
  after(async () => {
    await hub.stop();
    await removeAll(modelDir);
  });
  beforeEach(async () => {
    home = await tempDir('home');
    hub.resetCounters();
    hub.faults = {};
  });
  afterEach(async () => removeAll(home));

  it('gives the same checkpoint as the local folder: tensors, metadata, bytes, decoded experts', async () => {
    const env = hubEnv(hub.url, home);
    const remote = await resolveModel('acme/tiny-moe', { env, retry: FAST_RETRY });
    const local = await openCheckpoint(modelDir);
    try {
      assert.equal(remote.revision, COMMIT_A);
      assert.equal(remote.totalBytes, local.totalBytes);
      assert.deepEqual(remote.config, local.config);
      assert.deepEqual([...remote.tensors.entries()], [...local.tensors.entries()]);
      assert.deepEqual([...remote.fileMetadata.entries()], [...local.fileMetadata.entries()]);
      for (const name of local.tensors.keys()) {
        assert.deepEqual(await remote.readTensorBytes(name), await local.readTensorBytes(name), name);
      }
      // Decoded through the layout code: the generator's own values are the reference.
      const synth = new SyntheticModel(SMALL_SPEC);
      const moe = resolveMoeModel(remote);
      for (const p of PROJECTIONS) {
        for (let j = 0; j < SMALL_SPEC.numExperts; j++) {
          const got = await moe.readExpert(layerIndex(1), p, j);
          assert.deepEqual(got.data, synth.encodedExpert(1, p, j).values, `layer 1 ${p} expert ${j}`);
        }
      }
      const stats = transferStatsOf(remote)!;
      assert.ok(stats.bytesFetched > 0);
      assert.equal(transferStatsOf(local), null);
      // The .safetensors went through the 302 to /cdn/, config and index did not.
      assert.ok(hub.log.some((l) => l.path.startsWith('/cdn/') && l.status === 206));
      assert.ok(hub.log.some((l) => l.path.includes('/resolve/') && l.status === 302));
    } finally {
      await remote.close();
      await local.close();
    }
  });

  it('reads headers as huggingface_hub does: bytes=0-100000 first', async () => {
    const env = hubEnv(hub.url, home);
    const ckpt = await resolveModel('acme/tiny-moe', { env, retry: FAST_RETRY });
    await ckpt.close();
    const shardGets = hub.log.filter((l) => l.method === 'GET' && l.path.startsWith('/cdn/'));
    assert.ok(shardGets.length >= 3);
    for (const g of shardGets) {
      const size = statSync(join(modelDir, decodeURIComponent(g.path.split('/').pop()!))).size;
      assert.equal(g.range, `bytes=0-${Math.min(size, 100_001) - 1}`, g.path);
    }
    const cacheFiles = await readdir(join(home, 'xdg', 'moe-inspector', 'hub-ranges', 'models--acme--tiny-moe', COMMIT_A));
    assert.ok(cacheFiles.includes('config.json'));
  });
});
