/** Bad input through the real CLI: one clear message naming file, tensor and problem; exit 1; no output file. */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, truncate, writeFile, mkdir, copyFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSyntheticCheckpoint } from '../../src/engine/synth/generate';
import { CLI, ensureBuilt } from './build';

function cli(args: string[], env: NodeJS.ProcessEnv = {}): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, HF_HUB_OFFLINE: '1', ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('CLI: bad input gets one clear error and writes nothing', function () {
  let root: string;
  let good: string;
  before(async () => {
    ensureBuilt();
    root = await mkdtemp(join(tmpdir(), 'moe-cli-err-'));
    good = join(root, 'good');
    await generateSyntheticCheckpoint(good, { family: 'olmoe', dtype: 'BF16', numLayers: 1, numExperts: 4, hidden: 64, intermediate: 32, structure: { kind: 'native' } });
  });
  after(async () => rm(root, { recursive: true, force: true }));

  it('a truncated safetensors file: exit 1, names the file, no -o output', async () => {
    const dir = join(root, 'trunc');
    await mkdir(dir);
    for (const f of ['config.json', 'model.safetensors']) await copyFile(join(good, f), join(dir, f));
    await truncate(join(dir, 'model.safetensors'), 5000);
    const out = join(root, 'trunc.json');
    const r = cli(['analyze', '-m', dir, '-o', out]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /model\.safetensors.*truncated/);
    assert.equal(r.stderr.trim().split('\n').length, 1, 'one line');
    assert.ok(!existsSync(out));
  });

  it('a model that is not MoE: names what was found', async () => {
    const dir = join(root, 'dense');
    await mkdir(dir);
    await writeFile(join(dir, 'config.json'), JSON.stringify({ model_type: 'llama', num_hidden_layers: 1 }));
    // A dense checkpoint: one FFN tensor, no experts (a tiny hand-made file).
    const header = JSON.stringify({ 'model.layers.0.mlp.up_proj.weight': { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] } });
    const buf = Buffer.alloc(8 + header.length + 16);
    buf.writeBigUInt64LE(BigInt(header.length));
    buf.write(header, 8);
    await writeFile(join(dir, 'model.safetensors'), buf);
    const r = cli(['analyze', '-m', dir]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /dense: not a Mixture-of-Experts model: model_type llama, no expert count in config, no expert tensors among 1 tensors/);
  });

  it('NaN in an expert weight: names the tensor and the count', async () => {
    const dir = join(root, 'nan');
    await generateSyntheticCheckpoint(dir, { family: 'olmoe', dtype: 'BF16', numLayers: 1, numExperts: 4, hidden: 64, intermediate: 32, structure: { kind: 'native' }, injectNaN: { layer: 0, projection: 'up', expert: 2, count: 3 } });
    const r = cli(['analyze', '-m', dir]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /model\.layers\.0\.mlp\.experts\.2\.up_proj\.weight.*3 NaN\/Inf values in expert 2/);
  });

  it('a hostile index entry is refused, naming the index', async () => {
    const dir = join(root, 'hostile');
    await mkdir(dir);
    await copyFile(join(good, 'config.json'), join(dir, 'config.json'));
    await writeFile(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: { w: '../../etc/passwd' } }));
    const r = cli(['info', '-m', dir]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /model\.safetensors\.index\.json.*not a plain file name/);
  });

  it('an unknown model id offline, a layer that is not MoE, and usage errors', async () => {
    const r1 = cli(['analyze', '-m', 'nobody/nothing']);
    assert.equal(r1.code, 1);
    assert.match(r1.stderr, /HF_HUB_OFFLINE/);
    const r2 = cli(['analyze', '-m', good, '--layer', '5']);
    assert.equal(r2.code, 2);
    assert.match(r2.stderr, /layer 5 is not a MoE layer.*MoE layers: 0/);
    assert.equal(cli(['analyze']).code, 2);
    assert.equal(cli(['frobnicate']).code, 2);
  });

  it('info --json reads headers only and reports the contract', async () => {
    const r = cli(['info', '-m', good, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const info = JSON.parse(r.stdout);
    assert.equal(info.schema, 'moe-inspector/info@1');
    assert.equal(info.family, 'olmoe');
    assert.equal(info.num_experts, 4);
    const truth = JSON.parse(await readFile(join(good, 'synth-ground-truth.json'), 'utf8'));
    assert.equal(info.total_bytes, truth.totalBytes);
  });
});
