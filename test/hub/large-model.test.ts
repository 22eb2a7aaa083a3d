import assert from 'node:assert/strict';
import { resolveMoeModel } from '../../src/engine/layouts';
import { layerIndex, PROJECTIONS } from '../../src/engine/layouts/types';
import type { Checkpoint } from '../../src/engine/model/checkpoint';
import { resolveModel, transferStatsOf } from '../../src/engine/model/resolve-model';
import { FakeHub } from './fake-hub';
import { COMMIT_B, FAST_RETRY, hubEnv, removeAll, tempDir } from './helpers';
import { decodeBf16, expertBytes, writeSparseModel, type SparseModel, type SparseModelSpec } from './sparse-model';

/** 32 layers x 8 experts x 3 x (1024 x 1024) BF16 = 1.61 GB in 3 shards. */
const SPEC: SparseModelSpec = { layers: 32, experts: 8, hidden: 1024, intermediate: 1024, shards: 3, dataLayer: 20, bigHeaderPadding: 150_000 };
/** One layer's experts are 1/32 of the weights: with headers and config, under 5% must cross the wire. */
const MAX_FRACTION = 0.05;

describe('hub: a 1.6 GB sharded model, one MoE layer read', function () {
  let hub: FakeHub;
  let modelDir: string;
  let home: string;
  let model: SparseModel;

  before(async () => {
    modelDir = await tempDir('large');
    model = await writeSparseModel(modelDir, SPEC);
    hub = await new FakeHub().start();
    hub.repos.set('acme/large-moe', { dir: modelDir, refs: { main: COMMIT_B } });
    home = await tempDir('home');
  });
  after(async () => {
    await hub.stop();
    await removeAll(modelDir, home);
  });

  /** Opens the model, reads every expert of the data layer and checks each value against the test's own decode. */
  async function readOneLayer(): Promise<Checkpoint> {
    const ckpt = await resolveModel('acme/large-moe', { env: hubEnv(hub.url, home), retry: FAST_RETRY });
    const moe = resolveMoeModel(ckpt);
    assert.equal(moe.layers.length, SPEC.layers);
    for (const p of PROJECTIONS) {
      for (let j = 0; j < SPEC.experts; j++) {
        const m = await moe.readExpert(layerIndex(SPEC.dataLayer), p, j);
        assert.deepEqual(m.data, decodeBf16(expertBytes(SPEC, j, p)), `${p} expert ${j}`);
      }
    }
    return ckpt;
  }

  it('transfers under 5% of the checkpoint, and the header of a shard with a 150 kB header in two requests', async () => {
    assert.ok(model.totalBytes >= 1.5e9, `${model.totalBytes} bytes`);
    hub.resetCounters();
    const ckpt = await readOneLayer();
    assert.equal(ckpt.totalBytes, model.totalBytes);
    const fraction = hub.bytesSent / model.totalBytes;
    console.log(`      first run: ${hub.bytesSent} of ${model.totalBytes} bytes sent (${(100 * fraction).toFixed(2)}%), ${hub.log.length} requests`);
    assert.ok(fraction < MAX_FRACTION, `${(100 * fraction).toFixed(2)}% transferred`);
    assert.equal(transferStatsOf(ckpt)!.bytesFetched, hub.bytesSent);
    const first = model.files[0]!;
    const gets = hub.log.filter((l) => l.method === 'GET' && l.path.startsWith('/cdn/') && l.path.endsWith(first)).map((l) => l.range);
    assert.deepEqual(gets.slice(0, 2), ['bytes=0-100000', `bytes=100001-${model.headerBytes.get(first)! - 1}`]);
    await ckpt.close();
  });

  it('a second run transfers 0 bytes: everything comes from the range cache', async () => {
    hub.resetCounters();
    const ckpt = await readOneLayer();
    const stats = transferStatsOf(ckpt)!;
    console.log(`      second run: ${hub.bytesSent} bytes sent, ${hub.log.length} requests (${new Set(hub.log.map((l) => l.method)).size} method: ${[...new Set(hub.log.map((l) => l.method))].join(', ')}), ${stats.bytesFromCache} bytes from the cache`);
    assert.equal(hub.bytesSent, 0);
    assert.equal(stats.bytesFetched, 0);
    assert.ok(stats.bytesFromCache > SPEC.experts * 3 * SPEC.hidden * SPEC.intermediate * 2);
    assert.ok(hub.log.every((l) => l.method === 'HEAD'), 'only HEADs (revision and sizes), no bodies');
    await ckpt.close();
  });
});
