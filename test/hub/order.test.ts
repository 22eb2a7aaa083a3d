import assert from 'node:assert/strict';
import { cp, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MoeInspectorError } from '../../src/engine/errors';
import { resolveModel, transferStatsOf } from '../../src/engine/model/resolve-model';
import { FakeHub } from './fake-hub';
import { COMMIT_A, FAST_RETRY, hubEnv, removeAll, tempDir, writeSmallModel } from './helpers';

/** Lays out a huggingface_hub cache entry: refs/main -> commit, snapshots/<commit>/<files>. */
async function seedHfCache(cacheRoot: string, repo: string, commit: string, from: string, only?: string[]): Promise<void> {
  const repoDir = join(cacheRoot, `models--${repo.replace('/', '--')}`);
  await mkdir(join(repoDir, 'refs'), { recursive: true });
  await writeFile(join(repoDir, 'refs', 'main'), commit);
  const snap = join(repoDir, 'snapshots', commit);
  await mkdir(snap, { recursive: true });
  if (only) for (const f of only) await cp(join(from, f), join(snap, f));
  else await cp(from, snap, { recursive: true });
}

describe('hub: resolution order local path > HF cache > hub, and offline mode', function () {
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
  });
  afterEach(async () => removeAll(home));

  it('an existing local folder wins over a model id of the same name', async () => {
    const cwd = process.cwd();
    await cp(modelDir, join(home, 'acme', 'tiny-moe'), { recursive: true });
    await seedHfCache(join(home, 'hf', 'hub'), 'acme/tiny-moe', COMMIT_A, modelDir);
    process.chdir(home);
    try {
      const ckpt = await resolveModel('acme/tiny-moe', { env: hubEnv(hub.url, home) });
      assert.equal(ckpt.revision, null, 'a plain folder has no commit: it is not the cache snapshot');
      assert.equal(transferStatsOf(ckpt), null);
      await ckpt.close();
    } finally {
      process.chdir(cwd);
    }
    assert.equal(hub.log.length, 0);
  });

  it('the HF cache wins over the hub (HF_HOME/hub, or HF_HUB_CACHE), with no request', async () => {
    await seedHfCache(join(home, 'hf', 'hub'), 'acme/tiny-moe', COMMIT_A, modelDir);
    const ckpt = await resolveModel('acme/tiny-moe', { env: hubEnv(hub.url, home) });
    assert.equal(ckpt.revision, COMMIT_A);
    assert.equal(transferStatsOf(ckpt), null);
    await ckpt.close();
    const custom = join(home, 'custom-cache');
    await seedHfCache(custom, 'acme/tiny-moe', COMMIT_A, modelDir);
    const viaVar = await resolveModel('acme/tiny-moe', { env: hubEnv(hub.url, home, { HF_HUB_CACHE: custom, HF_HOME: join(home, 'elsewhere') }) });
    assert.equal(viaVar.revision, COMMIT_A);
    await viaVar.close();
    assert.equal(hub.log.length, 0);
  });

  it('a cache snapshot without weights (config.json only) falls through to the hub', async () => {
    await seedHfCache(join(home, 'hf', 'hub'), 'acme/tiny-moe', COMMIT_A, modelDir, ['config.json']);
    const ckpt = await resolveModel('acme/tiny-moe', { env: hubEnv(hub.url, home), retry: FAST_RETRY });
    assert.ok(transferStatsOf(ckpt)!.bytesFetched > 0);
    assert.ok(hub.log.length > 0);
    await ckpt.close();
  });

  it('HF_HUB_OFFLINE=1: a cached model opens with no request; an uncached one is a clear offline error, with no request', async () => {
    for (const value of ['1', 'true', 'YES']) {
      await assert.rejects(resolveModel('acme/tiny-moe', { env: hubEnv(hub.url, home, { HF_HUB_OFFLINE: value }) }), (e: unknown) => {
        assert.ok(e instanceof MoeInspectorError);
        assert.equal(e.code, 'offline');
        assert.match(e.message, /^acme\/tiny-moe: HF_HUB_OFFLINE is set and acme\/tiny-moe is not in the local Hugging Face cache/);
        return true;
      });
    }
    await seedHfCache(join(home, 'hf', 'hub'), 'acme/tiny-moe', COMMIT_A, modelDir);
    const ckpt = await resolveModel('acme/tiny-moe', { env: hubEnv(hub.url, home, { HF_HUB_OFFLINE: '1' }) });
    assert.equal(ckpt.revision, COMMIT_A);
    await ckpt.close();
    assert.equal(hub.log.length, 0);
  });

  it('a pinned commit is used as is: no request resolves the revision', async () => {
    const ckpt = await resolveModel(`acme/tiny-moe@${COMMIT_A}`, { env: hubEnv(hub.url, home), retry: FAST_RETRY });
    assert.equal(ckpt.revision, COMMIT_A);
    await ckpt.close();
    assert.ok(hub.log.every((l) => l.path.includes(COMMIT_A)), 'every request names the commit, none a branch');
  });

  it('neither a path nor a model id: not-found naming what was given', async () => {
    await assert.rejects(resolveModel('./no/such/folder/here', { env: hubEnv(hub.url, home) }), /no\/such\/folder\/here: no such local path, and not a model id/);
    assert.equal(hub.log.length, 0);
  });
});
