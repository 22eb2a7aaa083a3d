/**
 * The CLI as a new user meets it: moe-inspect runs through npx in the installation folder, every
 * command's --help prints that command's usage, and the small frictions of issue 11 are gone
 * (progress hygiene and model names in compare, no JSON mentioned that was not written, "no such
 * local path" before the hub's answer, overlay warnings and what the weight error includes,
 * synth --seed 0).
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { progressPrinter, type ProgressStream } from '../../src/cli/progress';
import { generateSyntheticCheckpoint } from '../../src/engine/synth/generate';
import { FakeHub } from '../hub/fake-hub';
import { hubEnv, removeAll, tempDir } from '../hub/helpers';
import { ensureBuilt, ROOT, runCli, type CliRun } from './build';

/** HF_HUB_OFFLINE unless a test points the CLI at its loopback hub. */
const cli = (args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliRun> => runCli(args, { HF_HUB_OFFLINE: '1', ...env });

const SMALL = { family: 'olmoe', dtype: 'BF16', numLayers: 2, numExperts: 4, hidden: 64, intermediate: 32 } as const;

describe('CLI front door', function () {
  this.timeout(120_000);
  let root: string;
  let upcycled: string;
  let native: string;
  before(async () => {
    ensureBuilt();
    root = await mkdtemp(join(tmpdir(), 'moe-cli-door-'));
    upcycled = join(root, 'small-upcycled');
    native = join(root, 'small-native');
    await generateSyntheticCheckpoint(upcycled, { ...SMALL, structure: { kind: 'upcycled', ranks: { gate: 2, up: 4, down: 3 } }, seed: 5 });
    await generateSyntheticCheckpoint(native, { ...SMALL, structure: { kind: 'native' }, seed: 6 });
  });
  after(async () => rm(root, { recursive: true, force: true }));

  describe('running it and --help', () => {
    it('runs as `npx moe-inspect` in the installation folder (npm resolves the project\'s own bin)', () => {
      const r = spawnSync('npx', ['--no-install', 'moe-inspect', '--help'], { cwd: ROOT, encoding: 'utf8', env: { ...process.env } });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /^moe-inspect — is this Mixture-of-Experts upcycled or native\?/);
    });

    const HELP: readonly (readonly [string[], string, readonly string[]])[] = [
      [['info', '--help'], 'moe-inspect info -m MODEL', ['--json', 'headers only']],
      [['analyze', '--help'], 'moe-inspect analyze -m MODEL', ['--sample-experts N', '--full-spectra', '--device auto|cpu|cuda']],
      [['compare', '-h'], 'moe-inspect compare -m A -c B', ['-c, --compare B']],
      [['overlay', '--help'], 'moe-inspect overlay compute|verify|estimate', ['moe-inspect overlay MODE --help']],
      [['overlay', 'compute', '--help'], 'moe-inspect overlay compute -m MODEL', ['--energy T', '--save DIR', 'before rounding', '--overlay-dtype']],
      [['overlay', 'verify', '--help'], 'moe-inspect overlay verify -m MODEL', ['--max-error E', 'rounding of the overlay\'s storage dtype', '--seed N']],
      [['overlay', 'estimate', '--help'], 'moe-inspect overlay estimate -m MODEL', ['--fast']],
      [['synth', '--help'], 'moe-inspect synth --family F --out DIR', ['--structure', 'any non-negative integer']],
      [['example', '--help'], 'moe-inspect example', ['.cache/example']],
      [['moe-overlay-verify', '--help'], 'moe-inspect overlay verify -m MODEL', []],
      [['help', 'analyze'], 'moe-inspect analyze -m MODEL', []],
    ];
    for (const [args, first, words] of HELP) {
      it(`${args.join(' ')} prints that command's usage, exit 0`, async () => {
        const r = await cli(args);
        assert.equal(r.code, 0, r.stderr);
        assert.ok(r.stdout.startsWith(first), r.stdout.slice(0, 200));
        for (const w of words) assert.ok(r.stdout.includes(w), `missing ${JSON.stringify(w)} in:\n${r.stdout}`);
        assert.equal(r.stderr.replace(/npm warn[^\n]*\n/g, ''), '');
      });
    }

    it('moe-inspect --help names every command and says how to get a command\'s help', async () => {
      const r = await cli(['--help']);
      assert.equal(r.code, 0);
      for (const c of ['info', 'analyze', 'compare', 'overlay compute', 'overlay verify', 'overlay estimate', 'synth', 'example']) assert.ok(r.stdout.includes(`moe-inspect ${c}`), c);
      assert.ok(r.stdout.includes('moe-inspect COMMAND --help'));
    });
  });

  it('synth --seed 0 is accepted and recorded; a negative seed is a usage error', async () => {
    const out = join(root, 'seed0');
    const r = await cli(['synth', '--family', 'olmoe', '--out', out, '--layers', '1', '--experts', '2', '--hidden', '16', '--intermediate', '8', '--seed', '0']);
    assert.equal(r.code, 0, r.stderr);
    const truth = JSON.parse(readFileSync(join(out, 'synth-ground-truth.json'), 'utf8')) as { spec?: { seed?: number }; seed?: number };
    assert.equal(truth.spec?.seed ?? truth.seed, 0);
    const bad = await cli(['synth', '--family', 'olmoe', '--out', join(root, 'seedneg'), '--seed=-1']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--seed must be a non-negative integer \(got "-1"\)/);
  });

  describe('compare', () => {
    it('names the model in each progress line; without -o speaks of no JSON file; with -o names it', async () => {
      const r = await cli(['compare', '-m', upcycled, '-c', native, '--layers', 'all']);
      assert.equal(r.code, 0, r.stderr);
      // Not a terminal: one line per finished layer, each naming its model.
      for (const m of [upcycled, native]) for (const l of [0, 1]) assert.ok(r.stderr.includes(`${m.split('/').pop()}: layer ${l} done`) || r.stderr.includes(`${m}: layer ${l} done`), r.stderr);
      assert.match(r.stdout, /per-layer results are in the JSON report: add -o FILE or --json/);
      assert.ok(!/in the JSON\)/.test(r.stdout));
      const out = join(root, 'cmp.json');
      const w = await cli(['compare', '-m', upcycled, '-c', native, '--layers', 'all', '-o', out]);
      assert.equal(w.code, 0, w.stderr);
      assert.ok(w.stdout.includes(`per-layer results are in the JSON report ${out}`));
      assert.ok(existsSync(out));
    });
  });

  describe('a model argument that is neither a local path nor cached', () => {
    let hub: FakeHub;
    let home: string;
    before(async () => {
      hub = await new FakeHub().start();
      home = await tempDir('cli-door-home');
    });
    after(async () => {
      await hub.stop();
      await removeAll(home);
    });

    it('says "no such local path" and the cache first, then what the hub answered', async () => {
      const r = await cli(['info', '-m', 'acme/no-such-model'], { ...hubEnv(hub.url, home), HF_HUB_OFFLINE: '' });
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /^moe-inspect: acme\/no-such-model: no such local path, and not in the local Hugging Face cache; the hub answered: .*not found/);
      assert.equal(r.stderr.trim().split('\n').length, 1);
    });

    it('a path-like argument that matches nothing says so', async () => {
      const r = await cli(['info', '-m', join(root, 'typo-folder')]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /typo-folder: no such local path, and not a model id of the form org\/name\[@revision\]/);
    });
  });

  describe('overlay', () => {
    it('compute on a native layer warns that it looks native and that the ratio is no compression', async () => {
      const r = await cli(['overlay', 'compute', '-m', native]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /x: no compression\)/);
      assert.match(r.stdout, /warning: layer 0 looks native: to keep that energy it needs gate rank \d+ of 32 \(\d+%\).*above the 50% of a native layer/);
      assert.match(r.stdout, /weight error \(exact float32 factors, before rounding to BF16\)/);
    });

    it('compute at ranks that keep little energy warns with the threshold instead of a bare ratio', async () => {
      const r = await cli(['overlay', 'compute', '-m', upcycled, '--gate-rank', '1', '--up-rank', '1', '--down-rank', '1', '--overlay-dtype', 'F16']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /warning: layer 0: an expert keeps only [\d.]+% \(gate, rank 1\).* of its delta energy, below 90%: the [\d.]+x comes with a large weight error/);
      assert.match(r.stdout, /before rounding to F16/);
      assert.ok(!/looks native/.test(r.stdout), 'fixed ranks are the user\'s choice: no native claim');
    });

    it('verify says its weight error includes the storage dtype\'s rounding', async () => {
      const r = await cli(['overlay', 'verify', '-m', upcycled]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /weight error \(rebuilt from the BF16 overlay, so its storage rounding included\)/);
      assert.ok(!/warning:/.test(r.stdout));
    });
  });
});

describe('progress line on a terminal', () => {
  function fakeTty(columns: number): { stream: ProgressStream; writes: string[] } {
    const writes: string[] = [];
    return { writes, stream: { isTTY: true, columns, write: ((s: string) => writes.push(s) > 0) as ProgressStream['write'] } };
  }

  it('rewrites in place within the width, erases itself before the report, and ignores progress that arrives after', () => {
    const { stream, writes } = fakeTty(30);
    const p = progressPrinter(stream);
    p.update({ stage: 'spectra', done: 1, total: 4, message: 'a rather long message that will not fit the terminal' });
    p.update({ stage: 'spectra', done: 2, total: 4, message: 'short' });
    assert.ok(writes.every((w) => w.replace(/^\r/, '').length <= 29), JSON.stringify(writes));
    assert.equal(writes[1], `\r${'[spectra 50%] short'.padEnd(29)}`, 'a shorter line blanks what the longer one left');
    p.done();
    const erase = writes[writes.length - 1]!;
    assert.match(erase, /^\r +\r$/);
    const count = writes.length;
    p.update({ stage: 'layer-done', done: 4, total: 4, message: 'late' });
    assert.equal(writes.length, count, 'nothing written after done()');
  });
});
