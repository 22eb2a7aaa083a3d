/**
 * The README's Slurm job array and Kubernetes Indexed Job recipes, run as written: the scripts and
 * command lines are taken from README.md itself (so the README cannot drift from what is tested),
 * each shard runs as its own process with the variables the scheduler would set, then the merge step;
 * the merged report must equal one uninterrupted run over the whole model.
 */
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSyntheticCheckpoint } from '../../src/engine/synth/generate';
import type { AnalysisReport } from '../../src/engine/report/schema';
import { CLI, ensureBuilt, ROOT } from './build';
import { assertSameAnalysis, cli, CLI_ENV, mixedModel, readReport } from './runs-helpers';

const SHARDS = 3;

/** The fenced code blocks of the README section under `heading`. */
function readmeBlocks(heading: string): string[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf(`\n${heading}\n`);
  assert.ok(start >= 0, `README has no "${heading}" section`);
  const rest = readme.slice(start + heading.length + 2);
  const end = rest.search(/\n#{2,3} /);
  const section = end >= 0 ? rest.slice(0, end) : rest;
  return [...section.matchAll(/```\w*\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

function block(blocks: readonly string[], containing: string): string {
  const found = blocks.filter((b) => b.includes(containing));
  assert.equal(found.length, 1, `exactly one README block contains "${containing}"`);
  return found[0]!;
}

/** Runs a shell (bash or sh) on a script or command line; resolves with its exit code and stderr. */
function shell(argv: readonly string[], cwd: string, env: NodeJS.ProcessEnv): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), { cwd, env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stderr }));
  });
}

describe('README scheduler recipes: three shards as three processes, merged, equal a single run', function () {
  let root: string;
  let model: string;
  let env: NodeJS.ProcessEnv;
  let single: AnalysisReport;
  before(async () => {
    ensureBuilt();
    root = await mkdtemp(join(tmpdir(), 'moe-recipes-'));
    model = join(root, 'model');
    await generateSyntheticCheckpoint(model, mixedModel(31));
    // `moe-inspect` on the PATH, as an installed package puts it there.
    const bin = join(root, 'bin');
    await mkdir(bin);
    writeFileSync(join(bin, 'moe-inspect'), `#!/bin/sh\nexec "${process.execPath}" "${CLI}" "$@"\n`);
    chmodSync(join(bin, 'moe-inspect'), 0o755);
    env = { ...CLI_ENV, PATH: `${bin}:${process.env['PATH'] ?? '/usr/bin:/bin'}`, MODEL: model };
    const r = cli(['analyze', '-m', model, '--layers', 'all', '-o', join(root, 'single.json')]);
    assert.equal(r.status, 0, r.stderr);
    single = readReport(join(root, 'single.json'));
  });
  after(async () => rm(root, { recursive: true, force: true }));

  function checkMerged(dir: string): void {
    const merged = readReport(join(dir, 'model.json'));
    assert.equal(merged.status!.state, 'complete');
    assert.deepEqual(merged.merged_from!.map((p) => p.shard), [0, 1, 2].map((index) => ({ index, count: SHARDS })));
    assert.deepEqual(merged.merged_from!.map((p) => p.layers), [[0, 3], [1, 4], [2, 5]]);
    assertSameAnalysis(merged, single, 1e-12);
    assert.deepEqual(merged.verdict, single.verdict);
  }

  it('Slurm job array: analyze.sbatch per array task, then merge.sbatch', async () => {
    const blocks = readmeBlocks('### Recipe: Slurm job array');
    const array = block(blocks, '#SBATCH --array=');
    const merge = block(blocks, 'moe-inspect merge');
    const submit = block(blocks, 'sbatch --dependency=');
    // 0-based array indices, the count taken from Slurm, the merge after every task succeeded.
    const range = /#SBATCH --array=(\d+)-(\d+)/.exec(array)!;
    assert.equal(range[1], '0');
    assert.match(array, /--shard "\$SLURM_ARRAY_TASK_ID\/\$SLURM_ARRAY_TASK_COUNT"/);
    assert.match(array, /--resume/);
    assert.match(submit, /array=\$\(sbatch --parsable analyze\.sbatch\)\nsbatch --dependency=afterok:\$array merge\.sbatch/);

    const dir = join(root, 'slurm');
    await mkdir(dir);
    writeFileSync(join(dir, 'analyze.sbatch'), array);
    writeFileSync(join(dir, 'merge.sbatch'), merge);
    // What Slurm sets for --array=0-2: one task per index, all at once.
    const tasks = await Promise.all(
      Array.from({ length: SHARDS }, (_, i) =>
        shell(['bash', 'analyze.sbatch'], dir, { ...env, SLURM_ARRAY_JOB_ID: '4242', SLURM_ARRAY_TASK_ID: String(i), SLURM_ARRAY_TASK_COUNT: String(SHARDS), SLURM_ARRAY_TASK_MIN: '0', SLURM_ARRAY_TASK_MAX: String(SHARDS - 1) }),
      ),
    );
    for (const t of tasks) assert.equal(t.code, 0, t.stderr);
    const m = await shell(['bash', 'merge.sbatch'], dir, env);
    assert.equal(m.code, 0, m.stderr);
    checkMerged(dir);
  });

  it('Kubernetes Indexed Job: one pod command per completion index, then the merge Job', async () => {
    const blocks = readmeBlocks('### Recipe: Kubernetes Indexed Job');
    const shards = block(blocks, 'completionMode: Indexed');
    const merge = block(blocks, 'moe-inspect merge');
    block(blocks, 'kubectl wait --for=condition=complete');
    const completions = /\n\s+completions: (\d+)\n/.exec(shards)![1]!;
    const podEnv = Object.fromEntries([...shards.matchAll(/- name: (\w+)\n\s+value: "?([^"\n]*)"?\n/g)].map((m) => [m[1]!, m[2]!]));
    assert.equal(podEnv['SHARDS'], completions, 'SHARDS must equal completions');
    const argsOf = (yaml: string): string => {
      assert.match(yaml, /command: \["sh", "-c"\]/);
      return /\n\s+args:\n\s+- (.+)\n/.exec(yaml)![1]!;
    };
    const analyze = argsOf(shards);
    assert.match(analyze, /--shard "\$JOB_COMPLETION_INDEX\/\$SHARDS"/);
    assert.match(shards, /workingDir: \/work/);

    const dir = join(root, 'k8s');
    await mkdir(dir);
    // What the Job controller sets for completions: 3, on the shared volume mounted as the working dir.
    const pods = await Promise.all(Array.from({ length: SHARDS }, (_, i) => shell(['sh', '-c', analyze], dir, { ...env, ...podEnv, MODEL: model, SHARDS: String(SHARDS), JOB_COMPLETION_INDEX: String(i) })));
    for (const p of pods) assert.equal(p.code, 0, p.stderr);
    const m = await shell(['sh', '-c', argsOf(merge)], dir, env);
    assert.equal(m.code, 0, m.stderr);
    checkMerged(dir);
  });

  it('merge refuses a part of another model, and a missing shard names the layers left out (exit 2)', () => {
    const dir = join(root, 'slurm');
    const stranger = join(root, 'stranger.json');
    const other = readReport(join(dir, 'part-1.json'));
    writeFileSync(stranger, JSON.stringify({ ...other, model: { ...other.model, fingerprint: `sha256:${'0'.repeat(64)}` } }));
    const r = cli(['merge', join(dir, 'part-0.json'), stranger, join(dir, 'part-2.json'), '-o', join(root, 'bad.json')]);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /stranger\.json: not parts of one run: model fingerprint differs/);
    const missing = cli(['merge', join(dir, 'part-0.json'), join(dir, 'part-2.json')]);
    assert.equal(missing.status, 2, missing.stderr);
    assert.match(missing.stderr, /the parts leave out planned layers 1, 4 \(a shard missing\?\); pass --allow-incomplete/);
    const allowed = cli(['merge', join(dir, 'part-0.json'), join(dir, 'part-2.json'), '--allow-incomplete', '-o', join(root, 'partial.json')]);
    assert.equal(allowed.status, 0, allowed.stderr);
    assert.match(allowed.stdout, /Run:\s+merged from 2 parts, partial: 4 of 6 planned layers done/);
    assert.equal(readReport(join(root, 'partial.json')).status!.state, 'partial');
  });
});
