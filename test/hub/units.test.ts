import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hubEndpoint, hubToken, isHubOffline, rangeCacheRoot } from '../../src/engine/hub/hub-env';
import { Limiter } from '../../src/engine/hub/limiter';
import { cover } from '../../src/engine/hub/range-store';
import { backoffMs, DEFAULT_RETRY_POLICY, parseRetryAfterMs } from '../../src/engine/hub/retry';
import { removeAll, tempDir } from './helpers';

describe('hub: building blocks', function () {
  it('cover() splits a range into cached pieces and gaps, preferring the interval that reaches furthest', () => {
    const known = [
      { start: 10, end: 20, id: 'a' },
      { start: 15, end: 30, id: 'b' },
      { start: 40, end: 50, id: 'c' },
    ];
    const pieces = cover(0, 60, known).map((p) => [p.start, p.end, p.from?.id ?? null]);
    assert.deepEqual(pieces, [
      [0, 10, null],
      [10, 20, 'a'],
      [20, 30, 'b'],
      [30, 40, null],
      [40, 50, 'c'],
      [50, 60, null],
    ]);
    // From inside an interval, the furthest-reaching one covering the start wins.
    assert.deepEqual(cover(16, 25, known).map((p) => [p.start, p.end, p.from?.id]), [[16, 25, 'b']]);
    assert.deepEqual(cover(5, 5, known), []);
  });

  it('Retry-After: seconds or an HTTP date; garbage is ignored', () => {
    assert.equal(parseRetryAfterMs('7'), 7000);
    assert.equal(parseRetryAfterMs('Wed, 21 Oct 2015 07:28:30 GMT', Date.parse('Wed, 21 Oct 2015 07:28:00 GMT')), 30_000);
    assert.equal(parseRetryAfterMs('soon'), null);
    assert.equal(parseRetryAfterMs(null), null);
  });

  it('backoff doubles per failure, stays within [step/2, step], and is capped', () => {
    const p = DEFAULT_RETRY_POLICY;
    for (const [failures, step] of [[1, 500], [2, 1000], [3, 2000], [10, p.maxDelayMs]] as const) {
      assert.equal(backoffMs(failures, p, () => 0), step / 2);
      assert.equal(backoffMs(failures, p, () => 1), step);
    }
  });

  it('the limiter never runs more than its limit at once, and runs everything', async () => {
    const lim = new Limiter(3);
    let active = 0;
    let peak = 0;
    const done = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        lim.run(async () => {
          active++;
          peak = Math.max(peak, active);
          await new Promise((r) => setTimeout(r, 1 + (i % 4)));
          active--;
          return i;
        }),
      ),
    );
    assert.equal(peak, 3);
    assert.deepEqual(done, Array.from({ length: 20 }, (_, i) => i));
  });

  it('environment: endpoint, offline values, token precedence (explicit > HF_TOKEN > HF_TOKEN_PATH > $HF_HOME/token), cache root', async () => {
    const home = await tempDir('env');
    try {
      assert.equal(hubEndpoint({}), 'https://huggingface.co');
      assert.equal(hubEndpoint({ HF_ENDPOINT: 'http://127.0.0.1:9/' }), 'http://127.0.0.1:9');
      assert.deepEqual(['1', 'ON', 'yes', 'True', '0', 'false', ''].map((v) => isHubOffline({ HF_HUB_OFFLINE: v })), [true, true, true, true, false, false, false]);
      await mkdir(join(home, 'hf'));
      await writeFile(join(home, 'hf', 'token'), 'hf_fromHome\n');
      await writeFile(join(home, 'other'), 'hf_fromPath');
      const env = { HOME: home, HF_HOME: join(home, 'hf') };
      assert.equal(hubToken(env), 'hf_fromHome');
      assert.equal(hubToken({ ...env, HF_TOKEN_PATH: join(home, 'other') }), 'hf_fromPath');
      assert.equal(hubToken({ ...env, HF_TOKEN: 'hf_fromEnv' }), 'hf_fromEnv');
      assert.equal(hubToken({ ...env, HF_TOKEN: 'hf_fromEnv' }, 'hf_explicit'), 'hf_explicit');
      assert.equal(hubToken({ HOME: home, HF_HOME: join(home, 'none') }), null);
      assert.equal(rangeCacheRoot({ HOME: home }), join(home, '.cache', 'moe-inspector', 'hub-ranges'));
      assert.equal(rangeCacheRoot({ HOME: home, XDG_CACHE_HOME: '/x' }), join('/x', 'moe-inspector', 'hub-ranges'));
    } finally {
      await removeAll(home);
    }
  });
});
