import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MoeInspectorError } from '../../src/engine/errors';
import type { Checkpoint } from '../../src/engine/model/checkpoint';
import { openCheckpoint } from '../../src/engine/model/open-checkpoint';
import { resolveModel, transferStatsOf } from '../../src/engine/model/resolve-model';
import { FakeHub } from './fake-hub';
import { COMMIT_A, FAST_RETRY, hubEnv, removeAll, SECRET, tempDir, writeSmallModel } from './helpers';

/** Every tensor's bytes, remote vs local: the verdict on whether a recovered transfer is exact. */
async function assertSameBytes(remote: Checkpoint, local: Checkpoint): Promise<void> {
  for (const name of local.tensors.keys()) assert.deepEqual(await remote.readTensorBytes(name), await local.readTensorBytes(name), name);
}

async function rejectsWith(p: Promise<unknown>, code: string, pattern: RegExp): Promise<MoeInspectorError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof MoeInspectorError, `expected a MoeInspectorError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.match(e.message, pattern);
    assert.ok(!e.message.includes(SECRET), 'the token must never appear in a message');
    return e;
  }
  assert.fail('expected a rejection');
}

describe('hub: faults recover or fail clearly', function () {
  let hub: FakeHub;
  let modelDir: string;
  let home: string;
  let local: Checkpoint;

  before(async () => {
    modelDir = await tempDir('model');
    await writeSmallModel(modelDir);
    local = await openCheckpoint(modelDir);
    hub = await new FakeHub().start();
    hub.repos.set('acme/tiny-moe', { dir: modelDir, refs: { main: COMMIT_A, v1: COMMIT_A } });
    hub.repos.set('acme/gated-moe', { dir: modelDir, refs: { main: COMMIT_A }, token: SECRET });
  });
  after(async () => {
    await local.close();
    await hub.stop();
    await removeAll(modelDir);
  });
  beforeEach(async () => {
    home = await tempDir('home');
    hub.resetCounters();
    hub.faults = {};
  });
  afterEach(async () => removeAll(home));

  const open = (spec: string, extra: Record<string, string> = {}, opts: { allowFullDownload?: boolean; token?: string } = {}) =>
    resolveModel(spec, { env: hubEnv(hub.url, home, extra), retry: FAST_RETRY, ...opts });

  it('3 x HTTP 500, then success: retried, exact bytes', async () => {
    hub.faults.status = { code: 500, times: 3 };
    const ckpt = await open('acme/tiny-moe');
    await assertSameBytes(ckpt, local);
    assert.equal(transferStatsOf(ckpt)!.retries, 3);
    assert.equal(hub.log.filter((l) => l.status === 500).length, 3);
    await ckpt.close();
  });

  it('too many 503s: a network error that names the hub file and the status', async () => {
    hub.faults.status = { code: 503, times: 100 };
    await rejectsWith(open('acme/tiny-moe'), 'network', /hub:acme\/tiny-moe@main\/config\.json: HTTP 503; gave up after 6 attempts/);
    assert.equal(hub.log.length, 6); // bounded: 1 + 5 retries
  });

  it('429 with Retry-After: waits what the server asks, then succeeds', async () => {
    hub.faults.status = { code: 429, times: 1, retryAfter: '1' };
    const ckpt = await open('acme/tiny-moe');
    await ckpt.close();
    const [limited, next] = hub.log;
    assert.equal(limited!.status, 429);
    // The client's own backoff is 5-20 ms here: only Retry-After explains a wait of a second.
    assert.ok(next!.at - limited!.at >= 950, `retried after ${next!.at - limited!.at} ms`);
  });

  it('a Retry-After beyond the limit fails at once with the wait the server asked for', async () => {
    hub.faults.status = { code: 429, times: 1, retryAfter: '3600' };
    await rejectsWith(open('acme/tiny-moe'), 'network', /retry after 3600 s/);
    assert.equal(hub.log.length, 1);
  });

  it('a connection dropped mid-body: only the missing tail is requested again', async () => {
    hub.faults.drop = { afterBytes: 30_000, times: 1 };
    const ckpt = await open('acme/tiny-moe');
    await assertSameBytes(ckpt, local);
    await ckpt.close();
    const first = hub.log.findIndex((l) => l.path.startsWith('/cdn/'));
    const dropped = hub.log[first]!;
    const m = /^bytes=(\d+)-(\d+)$/.exec(dropped.range!)!;
    // The retry goes through the hub again (the 302), then asks the CDN for the tail only.
    const resumed = hub.log.slice(first + 1).find((l) => l.path === dropped.path)!;
    assert.equal(resumed.range, `bytes=${Number(m[1]) + 30_000}-${m[2]}`);
  });

  it('a connection that always drops: a clear network error, after a bounded number of tries', async () => {
    hub.faults.drop = { afterBytes: 0, times: 1000 };
    hub.faults.short = undefined;
    // afterBytes 0: every body request dies before its first byte, so no progress is ever made.
    await rejectsWith(open('acme/tiny-moe'), 'network', /connection failed .* after 0 of \d+ bytes; gave up after 6 attempts/);
  });

  it('a short body (Content-Range promises more than arrives): retried for the rest, then a clear error if it persists', async () => {
    hub.faults.short = { bytes: 1000, times: 2 };
    const ckpt = await open('acme/tiny-moe');
    await assertSameBytes(ckpt, local);
    await ckpt.close();
    hub.resetCounters();
    await removeAll(home);
    hub.faults.short = { bytes: 0, times: 1000 };
    await rejectsWith(open('acme/tiny-moe'), 'network', /truncated body: received 0 of \d+ bytes; gave up/);
  });

  it('a server that ignores Range: refused with the file and its size, unless a full download is allowed', async () => {
    hub.faults.ignoreRange = true;
    // config.json and the index are read whole (a 200 is then the right answer); the first shard
    // over 100,001 bytes is where a partial read meets the misbehaving server.
    const shards = (await readdir(modelDir)).filter((f) => f.endsWith('.safetensors')).sort();
    const big = shards.find((f) => statSync(join(modelDir, f)).size > 100_001)!;
    const size = statSync(join(modelDir, big)).size;
    const e = await rejectsWith(open('acme/tiny-moe'), 'range-unsupported', /ignored the HTTP Range request/);
    assert.ok(e.message.startsWith(`hub:acme/tiny-moe@${COMMIT_A}/${big}: `), e.message);
    assert.ok(e.message.includes(`(${size} bytes`), e.message);
    const ckpt = await open('acme/tiny-moe', {}, { allowFullDownload: true });
    await assertSameBytes(ckpt, local);
    await ckpt.close();
  });

  it('slow responses still complete, and an abort cancels cleanly', async () => {
    hub.faults.delayMs = 50;
    const ckpt = await open('acme/tiny-moe');
    await assertSameBytes(ckpt, local);
    await ckpt.close();
    hub.faults.delayMs = 2000;
    const ac = new AbortController();
    const p = resolveModel('acme/tiny-moe', { env: hubEnv(hub.url, home), signal: ac.signal });
    setTimeout(() => ac.abort(), 100);
    await rejectsWith(p, 'cancelled', /cancelled/);
  });

  it('unknown repo, unknown revision, missing file: not-found naming what is missing', async () => {
    await rejectsWith(open('acme/nope'), 'not-found', /repository acme\/nope not found on http:\/\/127\.0\.0\.1:\d+/);
    await rejectsWith(open('acme/tiny-moe@no-such-branch'), 'not-found', /revision "no-such-branch" not found in acme\/tiny-moe/);
    const ckpt = await open('acme/tiny-moe@v1');
    assert.equal(ckpt.revision, COMMIT_A);
    await ckpt.close();
    const bare = await tempDir('bare');
    try {
      await copyFile(join(modelDir, 'config.json'), join(bare, 'config.json'));
      hub.repos.set('acme/no-weights', { dir: bare, refs: { main: COMMIT_A } });
      await rejectsWith(open('acme/no-weights'), 'not-found', new RegExp(`^hub:acme/no-weights@${COMMIT_A}: no model.safetensors or model.safetensors.index.json`));
    } finally {
      hub.repos.delete('acme/no-weights');
      await removeAll(bare);
    }
  });

  it('at most 4 requests in flight, however many reads are asked at once', async () => {
    const ckpt = await open('acme/tiny-moe');
    hub.resetCounters();
    hub.faults.delayMs = 20;
    await Promise.all([...local.tensors.keys()].map((n) => ckpt.readTensorBytes(n)));
    await ckpt.close();
    assert.ok(hub.log.length > 8, `${hub.log.length} requests`);
    assert.equal(hub.peakInFlight, 4);
  });

  it('a server without X-Error-Code: the API tells a missing repo from a missing revision', async () => {
    hub.faults.noErrorCodes = true;
    await rejectsWith(open('acme/nope'), 'not-found', /repository acme\/nope not found/);
    await rejectsWith(open('acme/tiny-moe@no-such-branch'), 'not-found', /revision "no-such-branch" not found/);
    assert.ok(hub.log.some((l) => l.path.startsWith('/api/models/acme/tiny-moe/revision/no-such-branch')));
  });

  it('gated repo: auth error telling to set HF_TOKEN; a wrong token is not echoed; the right one (env or token file) works', async () => {
    await rejectsWith(open('acme/gated-moe'), 'auth', /gated .*HTTP 401.*set HF_TOKEN/);
    const wrong = `${SECRET}-wrong`;
    const e = await rejectsWith(open('acme/gated-moe', { HF_TOKEN: wrong }), 'auth', /token in use/);
    assert.ok(!e.message.includes(wrong));
    const viaEnv = await open('acme/gated-moe', { HF_TOKEN: SECRET });
    await assertSameBytes(viaEnv, local);
    await viaEnv.close();
    await removeAll(join(home, 'xdg'));
    const tokenFile = join(home, 'secrets', 'token');
    await mkdir(join(home, 'secrets'));
    await writeFile(tokenFile, `${SECRET}\n`);
    const viaFile = await open('acme/gated-moe', { HF_TOKEN_PATH: tokenFile });
    assert.equal(viaFile.revision, COMMIT_A);
    await viaFile.close();
    // The default token file is $HF_HOME/token.
    await mkdir(join(home, 'hf'), { recursive: true });
    await writeFile(join(home, 'hf', 'token'), SECRET);
    const viaHome = await open('acme/gated-moe');
    await viaHome.close();
    assert.ok(hub.log.filter((l) => l.authorization !== null).every((l) => l.authorization === `Bearer ${SECRET}` || l.authorization === `Bearer ${wrong}`));
  });

  it('a token never reaches another origin: absolute redirect to a separate CDN server', async () => {
    const cdn = await new FakeHub().start();
    const front = await new FakeHub(cdn).start();
    try {
      for (const [k, v] of hub.repos) {
        cdn.repos.set(k, v);
        front.repos.set(k, v);
      }
      const ckpt = await resolveModel('acme/gated-moe', { env: hubEnv(front.url, home, { HF_TOKEN: SECRET }), retry: FAST_RETRY });
      await assertSameBytes(ckpt, local);
      await ckpt.close();
      assert.ok(cdn.log.length > 0 && cdn.log.every((l) => l.authorization === null));
      assert.ok(front.log.every((l) => l.authorization === `Bearer ${SECRET}`));
    } finally {
      await front.stop();
      await cdn.stop();
    }
  });

  it('a damaged range-cache entry is dropped and fetched again; no temp files are left', async () => {
    const first = await open('acme/tiny-moe');
    await assertSameBytes(first, local);
    await first.close();
    const root = join(home, 'xdg', 'moe-inspector', 'hub-ranges', 'models--acme--tiny-moe', COMMIT_A);
    const files = await readdir(root);
    let damaged = 0;
    for (const f of files) {
      for (const entry of await readdir(join(root, f))) {
        assert.match(entry, /^\d+-\d+\.bin$/, 'only final entries, no temp files');
        if (f.endsWith('.safetensors') && damaged === 0) {
          const path = join(root, f, entry);
          await writeFile(path, (await readFile(path)).subarray(0, 10)); // truncated entry
          damaged++;
        }
      }
    }
    hub.resetCounters();
    const second = await open('acme/tiny-moe');
    await assertSameBytes(second, local);
    await second.close();
    assert.ok(hub.bytesSent > 0, 'the damaged entry was fetched again');
  });
});
