/**
 * Whole-model runs that survive interruption, through the real CLI and worker processes: the -o file
 * is a valid report after every layer; Ctrl-C keeps the finished layers, a crash (the CLI killed)
 * too; --resume finishes the run with the same result as an uninterrupted one, and refuses a file of
 * another model, other options or another program version. The same for overlay estimate.
 */
import { strict as assert } from 'node:assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSyntheticCheckpoint } from '../../src/engine/synth/generate';
import type { AnalysisReport, OverlayReport } from '../../src/engine/report/schema';
import pkg from '../../package.json';
import { ensureBuilt } from './build';
import { assertSameAnalysis, cli, mixedModel, readReport, startCli, waitForReport } from './runs-helpers';

describe('CLI: whole-model runs saved after every layer, --resume', function () {
  let root: string;
  let model: string;
  let full: AnalysisReport;
  before(async () => {
    ensureBuilt();
    root = await mkdtemp(join(tmpdir(), 'moe-resume-'));
    model = join(root, 'model');
    await generateSyntheticCheckpoint(model, mixedModel(21));
    const r = cli(['analyze', '-m', model, '--layers', 'all', '-o', join(root, 'full.json'), '--json']);
    assert.equal(r.status, 0, r.stderr);
    full = readReport(join(root, 'full.json'));
    // The layers reach the CLI one message each (a whole-model report may not fit one), yet --json prints the saved report exactly.
    assert.equal(r.stdout, readFileSync(join(root, 'full.json'), 'utf8'));
  });
  after(async () => rm(root, { recursive: true, force: true }));

  it('an uninterrupted run says it is complete and who wrote it', () => {
    assert.deepEqual(full.status, { state: 'complete', layers_planned: [0, 1, 2, 3, 4, 5], layers_done: [0, 1, 2, 3, 4, 5] });
    assert.deepEqual(full.program, { name: 'moe-inspector', version: pkg.version });
    assert.match(full.model.fingerprint!, /^sha256:[0-9a-f]{64}$/);
    assert.deepEqual(full.options, { sample_experts: null, thresholds: full.options.thresholds, full_spectra: false, layers: 'all', shard: null, parent: null, provenance: true });
    // The rank + cosine rule cannot decide the partial layer 3; neuron matching (on by default) finds the upcycled half.
    assert.deepEqual(full.layers.map((l) => l.verdict.rank_cosine_rule?.type), ['upcycled', 'native', 'upcycled', 'uncertain', 'native', 'upcycled']);
    assert.deepEqual(full.layers.map((l) => l.verdict.type), ['upcycled', 'native', 'upcycled', 'upcycled', 'native', 'upcycled']);
    assert.equal(full.layers[3]!.verdict.recipe, 'partial');
    assert.deepEqual(full.layers[3]!.verdict.upcycled_experts, [0, 1, 2, 3]);
  });

  it('Ctrl-C after the first layer keeps it, a crash keeps what was done, --resume ends equal to the uninterrupted run', async () => {
    const out = join(root, 'run.json');
    const args = ['analyze', '-m', model, '--layers', 'all', '-o', out];
    // 1. Ctrl-C as soon as the file shows a finished layer.
    const first = startCli(args);
    await waitForReport<AnalysisReport>(out, (r) => r.status!.layers_done.length >= 1);
    const stopped = await first.stop('SIGINT');
    assert.equal(stopped.code, 130, stopped.stderr);
    const afterInt = readReport(out);
    const kept = afterInt.status!.layers_done.length;
    assert.ok(kept >= 1 && kept < 6, `kept ${kept}`);
    assert.equal(afterInt.status!.state, 'interrupted');
    assert.match(stopped.stderr, new RegExp(`keeps the finished layers \\(${kept} of 6 layers done, interrupted\\): run the same command with --resume`));
    // What the file holds is the uninterrupted run's result for those layers, verdict of those layers.
    assertSameAnalysis(afterInt, { ...full, layers: full.layers.slice(0, kept), verdict: afterInt.verdict }, 0);

    // 2. A crash: the resumed run is killed outright once it has saved one more layer.
    const second = startCli([...args, '--resume']);
    await waitForReport<AnalysisReport>(out, (r) => r.status!.layers_done.length > kept);
    const killed = await second.stop('SIGKILL');
    assert.equal(killed.signal, 'SIGKILL');
    const afterKill = readReport(out);
    assert.ok(afterKill.status!.layers_done.length > kept);
    assert.ok(['running', 'complete'].includes(afterKill.status!.state), afterKill.status!.state);

    // 3. --resume to the end.
    const r = cli([...args, '--resume']);
    assert.equal(r.status, 0, r.stderr);
    const resumed = readReport(out);
    assert.deepEqual(resumed.status, full.status);
    assertSameAnalysis(resumed, full, 1e-9);
    assert.deepEqual(resumed.model, full.model);
    assert.deepEqual(resumed.options, full.options);
  });

  it('--resume of a finished run computes nothing and gives the same report', () => {
    const out = join(root, 'again.json');
    writeFileSync(out, JSON.stringify(full));
    const r = cli(['analyze', '-m', model, '--layers', 'all', '-o', out, '--resume']);
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /layer \d done/);
    assertSameAnalysis(readReport(out), full, 0);
  });

  describe('refusals (exit 2, one message, the file untouched)', () => {
    let unfinished: string;
    let other: string;
    before(async () => {
      // An interrupted run of the whole model: its first two layers.
      unfinished = join(root, 'unfinished.json');
      const cut = { ...full, status: { state: 'interrupted', layers_planned: full.status!.layers_planned, layers_done: [0, 1] }, layers: full.layers.slice(0, 2) };
      writeFileSync(unfinished, JSON.stringify(cut, null, 2));
      // Same architecture, same tensor table, other weights.
      other = join(root, 'other');
      await generateSyntheticCheckpoint(other, mixedModel(22));
    });

    const cases: [string, () => string[], RegExp][] = [
      ['no --resume on an unfinished run', () => ['-m', model, '--layers', 'all'], /holds an unfinished run \(2 of 6 layers done, interrupted\): add --resume to continue it, or remove the file/],
      ['other --sample-experts', () => ['-m', model, '--layers', 'all', '--resume', '--sample-experts', '4'], /cannot resume: not the same run: option sample_experts null \(in the file\) vs 4 \(now\)/],
      ['--full-spectra', () => ['-m', model, '--layers', 'all', '--resume', '--full-spectra'], /option full_spectra false \(in the file\) vs true \(now\)/],
      ['another layer selection', () => ['-m', model, '--layers', '0-3', '--resume'], /option layers "all" \(in the file\) vs \[0,1,2,3\] \(now\)/],
      ['a shard', () => ['-m', model, '--shard', '0/2', '--resume'], /option shard null \(in the file\) vs \{"index":0,"count":2\} \(now\)/],
      ['several at once', () => ['-m', model, '--layers', 'all', '--resume', '--sample-experts', '4', '--full-spectra'], /option full_spectra .*; option sample_experts /],
      ['--no-provenance', () => ['-m', model, '--layers', 'all', '--resume', '--no-provenance'], /option provenance true \(in the file\) vs false \(now\)/],
      ['another model with the same shapes', () => ['-m', other, '--layers', 'all', '--resume'], /model fingerprint differs: the checkpoint's config, tensor headers or sizes are not the same/],
      ['--resume without -o', () => ['-m', model, '--resume', '--no-output'], /--resume continues the run saved in the -o file: give -o FILE/],
    ];
    for (const [what, args, message] of cases) {
      it(what, () => {
        const before = readFileSync(unfinished, 'utf8');
        const a = args();
        const r = cli(a.includes('--no-output') ? ['analyze', ...a.filter((x) => x !== '--no-output')] : ['analyze', ...a, '-o', unfinished]);
        assert.equal(r.status, 2, r.stderr);
        assert.match(r.stderr, message);
        assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
        assert.equal(readFileSync(unfinished, 'utf8'), before);
      });
    }

    it('a file written by another program version', () => {
      const old = join(root, 'old-version.json');
      writeFileSync(old, JSON.stringify({ ...full, program: { name: 'moe-inspector', version: '0.0.1' } }));
      const r = cli(['analyze', '-m', model, '--layers', 'all', '--resume', '-o', old]);
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, new RegExp(`program version "0\\.0\\.1" \\(in the file\\) vs "${pkg.version.replace(/\./g, '\\.')}" \\(now\\)`));
    });
  });

  it('overlay estimate: Ctrl-C then --resume equals an uninterrupted estimate; another rank rule is refused', async () => {
    const ref = join(root, 'est-full.json');
    const r0 = cli(['overlay', 'estimate', '-m', model, '-o', ref]);
    assert.equal(r0.status, 0, r0.stderr);
    const expected = readReport<OverlayReport>(ref);
    assert.equal(expected.status!.state, 'complete');

    const out = join(root, 'est.json');
    const run = startCli(['overlay', 'estimate', '-m', model, '-o', out]);
    const partial = await waitForReport<OverlayReport>(out, (r) => r.status!.layers_done.length >= 1);
    assert.match(partial.note ?? '', /partial: \d of 6 MoE layers measured so far; the others are counted at their stored size/);
    const stopped = await run.stop('SIGINT');
    assert.equal(stopped.code, 130, stopped.stderr);
    const kept = readReport<OverlayReport>(out).status!.layers_done.length;
    assert.ok(kept >= 1 && kept < 6, `kept ${kept}`);

    const refused = cli(['overlay', 'estimate', '-m', model, '-o', out, '--resume', '--energy', '0.9']);
    assert.equal(refused.status, 2, refused.stderr);
    assert.match(refused.stderr, /cannot resume: not the same run: option rank_rule \{"kind":"energy","energy":0\.95\} \(in the file\) vs \{"kind":"energy","energy":0\.9\} \(now\)/);

    const r = cli(['overlay', 'estimate', '-m', model, '-o', out, '--resume']);
    assert.equal(r.status, 0, r.stderr);
    const resumed = readReport<OverlayReport>(out);
    assert.deepEqual(resumed.status, expected.status);
    assert.deepEqual(resumed.layers, expected.layers);
    assert.deepEqual([resumed.totals, resumed.expert_bytes, resumed.non_expert_bytes, resumed.compressible, resumed.note], [expected.totals, expected.expert_bytes, expected.non_expert_bytes, expected.compressible, expected.note]);
  });
});
