/** The CLI against a loopback hub: --allow-full-download is the user's way past a server that ignores Range. */
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { FakeHub } from '../hub/fake-hub';
import { COMMIT_A, hubEnv, removeAll, tempDir, writeSmallModel } from '../hub/helpers';
import { CLI, ensureBuilt } from './build';

/** Async on purpose: the fake hub answers from this process's event loop. */
function cli(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

describe('CLI: hub model whose server ignores HTTP Range', function () {
  this.timeout(60_000);
  let hub: FakeHub;
  let modelDir: string;
  let home: string;

  before(async () => {
    ensureBuilt();
    modelDir = await tempDir('cli-model');
    await writeSmallModel(modelDir);
    hub = await new FakeHub().start();
    hub.repos.set('acme/tiny-moe', { dir: modelDir, refs: { main: COMMIT_A } });
    hub.faults.ignoreRange = true;
  });
  after(async () => {
    await hub.stop();
    await removeAll(modelDir);
  });
  beforeEach(async () => {
    home = await tempDir('cli-home');
  });
  afterEach(async () => removeAll(home));

  it('is refused with exit 1 and a message naming the file and the flag; --allow-full-download reads it', async () => {
    const env = { ...hubEnv(hub.url, home), MOE_ALLOW_FULL_DOWNLOAD: '' };
    const refused = await cli(['info', '-m', 'acme/tiny-moe', '--json'], env);
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /acme\/tiny-moe@a+1\/model-\d+-of-\d+\.safetensors: the server ignored the HTTP Range request/);
    assert.match(refused.stderr, /--allow-full-download/);
    assert.equal(refused.stdout, '');

    const allowed = await cli(['info', '-m', 'acme/tiny-moe', '--json', '--allow-full-download'], env);
    assert.equal(allowed.code, 0, allowed.stderr);
    const report = JSON.parse(allowed.stdout) as { family: string; num_experts: number; moe_layers: number[] };
    assert.equal(report.family, 'mixtral');
    assert.equal(report.num_experts, 4);
    assert.deepEqual(report.moe_layers, [0, 1]);
  });
});
