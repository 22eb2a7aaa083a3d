/**
 * The streaming analysis reads every expert twice (pass one in row blocks, pass two whole). From the
 * hub that must still cost about one copy of the layer's expert tensors on the wire: each expert is
 * read once into the range cache first and both passes are served from it. Through the real CLI and
 * worker, against a loopback hub; the answer must equal the local analysis of the same files.
 */
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateSyntheticCheckpoint } from '../../src/engine/synth/generate';
import { openCheckpoint } from '../../src/engine/model/open-checkpoint';
import { resolveMoeModel } from '../../src/engine/layouts';
import { projectionsOf } from '../../src/engine/layouts/types';
import type { AnalysisReport } from '../../src/engine/report/schema';
import { CLI, ensureBuilt } from '../cli/build';
import { FakeHub } from './fake-hub';
import { COMMIT_A, hubEnv, removeAll, tempDir } from './helpers';

function cli(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { ...process.env, ORT_DISABLE_TELEMETRY: '1', ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

describe('hub: the two-pass analysis transfers about one copy of the layer', function () {
  this.timeout(120_000);
  let hub: FakeHub;
  let modelDir: string;
  let home: string;

  before(async () => {
    ensureBuilt();
    modelDir = await tempDir('two-pass');
    // DeepSeek-V3 layout, FP8 with 128x128 block scales, 3 shards; layer 0 dense, layers 1-3 MoE.
    await generateSyntheticCheckpoint(modelDir, {
      family: 'deepseek_v3', dtype: 'FP8', numLayers: 4, numExperts: 8, hidden: 256, intermediate: 192,
      structure: { kind: 'upcycled', ranks: { gate: 3, up: 4, down: 5 } }, seed: 12, maxShardBytes: 1_500_000,
    });
    hub = await new FakeHub().start();
    hub.repos.set('acme/fp8-moe', { dir: modelDir, refs: { main: COMMIT_A } });
    home = await tempDir('two-pass-home');
  });
  after(async () => {
    await hub.stop();
    await removeAll(modelDir, home);
  });

  it('bytes on the wire <= the layer\'s expert tensors + the header probes; the second run 0; same report as local', async () => {
    const ckpt = await openCheckpoint(modelDir);
    const model = resolveMoeModel(ckpt);
    const layout = model.layers.find((l) => l.layer === 2)!;
    const expertBytes = projectionsOf(layout.projections).flatMap((p) => layout.projections[p]!.tensors).reduce((a, n) => a + ckpt.tensors.get(n)!.byteLength, 0);
    const files = [...new Set([...ckpt.tensors.values()].map((t) => t.file))];
    await ckpt.close();
    const probes = files.length * 100_001;

    const out = join(home, 'hub.json');
    const local = join(home, 'local.json');
    hub.resetCounters();
    const r = await cli(['analyze', '-m', 'acme/fp8-moe', '--layers', '2', '-o', out], hubEnv(hub.url, home));
    assert.equal(r.code, 0, r.stderr);
    const sent = hub.bytesSent;
    console.log(`      layer 2: ${sent} bytes sent for ${expertBytes} bytes of expert tensors (+ up to ${probes} of header probes), ${hub.log.length} requests`);
    assert.ok(sent >= expertBytes, `${sent} < ${expertBytes}: not every expert byte was read`);
    assert.ok(sent <= expertBytes + probes + 20_000, `${sent} bytes sent: more than one copy of the ${expertBytes} expert bytes + ${probes} of header probes`);
    const report = JSON.parse(await readFile(out, 'utf8')) as AnalysisReport;
    assert.equal(report.runtime.bytes_read, sent);

    hub.resetCounters();
    const again = await cli(['analyze', '-m', 'acme/fp8-moe', '--layers', '2', '-o', join(home, 'again.json')], hubEnv(hub.url, home));
    assert.equal(again.code, 0, again.stderr);
    assert.equal(hub.log.filter((l) => l.method === 'GET' && l.range !== null).length, 0, 'the second run sent range requests');

    const l = await cli(['analyze', '-m', modelDir, '--layers', '2', '-o', local], {});
    assert.equal(l.code, 0, l.stderr);
    const localReport = JSON.parse(await readFile(local, 'utf8')) as AnalysisReport;
    // Everything but the provenance pass's own wall-clock seconds.
    const untimed = (r: AnalysisReport) => r.layers.map((x) => ({ ...x, ...(x.provenance ? { provenance: { ...x.provenance, seconds: 0 } } : {}) }));
    assert.deepEqual(untimed(report), untimed(localReport));
    assert.equal(report.layers[0]!.verdict.type, 'upcycled');
  });
});
