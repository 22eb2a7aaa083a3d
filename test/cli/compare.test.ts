/** `moe-inspect compare` through the real CLI and worker: the side-by-side table, --layer and -o (the seeds' compare ignored both). */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSyntheticCheckpoint, type SynthSpec } from '../../src/engine/synth/generate';
import type { CompareReport } from '../../src/engine/report/schema';
import { CLI, ensureBuilt } from './build';

const BASE: Omit<SynthSpec, 'structure' | 'seed'> = { family: 'olmoe', dtype: 'BF16', numLayers: 3, numExperts: 6, hidden: 96, intermediate: 64 };

describe('CLI compare: two models side by side', function () {
  let root: string;
  let up: string;
  let nat: string;
  before(async () => {
    ensureBuilt();
    root = await mkdtemp(join(tmpdir(), 'moe-compare-'));
    up = join(root, 'up');
    nat = join(root, 'nat');
    await generateSyntheticCheckpoint(up, { ...BASE, structure: { kind: 'upcycled', ranks: { gate: 2, up: 3, down: 2 } }, seed: 3 });
    await generateSyntheticCheckpoint(nat, { ...BASE, structure: { kind: 'native' }, seed: 4 });
  });
  after(async () => rm(root, { recursive: true, force: true }));

  for (const command of [['compare'], ['moe-type-compare']]) {
    it(`${command[0]} honours --layer and -o, and prints one column per model`, () => {
      const out = join(root, `${command[0]}.json`);
      const r = spawnSync(process.execPath, [CLI, ...command, '-m', up, '-c', nat, '--layer', '2', '-o', out], { encoding: 'utf8', env: { ...process.env, HF_HUB_OFFLINE: '1' } });
      assert.equal(r.status, 0, r.stderr);
      const report = JSON.parse(readFileSync(out, 'utf8')) as CompareReport;
      assert.equal(report.schema, 'moe-inspector/compare@1');
      assert.deepEqual(report.models.map((m) => m.model.source), [up, nat]);
      assert.deepEqual(report.models.map((m) => m.layers.map((l) => l.layer)), [[2], [2]]);
      assert.deepEqual(report.models.map((m) => m.verdict.type), ['upcycled', 'native']);
      assert.deepEqual(report.models[0]!.layers[0]!.projections.gate!.effective_rank['0.95'], Array(6).fill(2));
      assert.match(r.stdout, /MOE TYPE COMPARISON/);
      assert.match(r.stdout, /\| Type\s+\| UPCYCLED \d+%\s+\| NATIVE \d+%\s+\|/);
      assert.match(r.stdout, /\| Layer\s+\| 2\s+\| 2\s+\|/);
    });
  }

  it('a missing -c is a usage error (exit 2), and nothing is written', () => {
    const out = join(root, 'none.json');
    const r = spawnSync(process.execPath, [CLI, 'compare', '-m', up, '-o', out], { encoding: 'utf8' });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /missing -c MODEL/);
    assert.throws(() => readFileSync(out));
  });
});
