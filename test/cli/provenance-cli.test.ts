/**
 * Provenance through the real CLI and worker: `synth --recipe` writes the MoE and its dense parent,
 * `provenance -m MOE --parent DENSE` and `analyze --parent` report the recipe with its evidence,
 * `compare` shows the provenance rows, quantised copy-upcycled layers are recognised by the rank
 * above the storage-noise edge, and a wrong parent is one clear error.
 */
import { strict as assert } from 'node:assert';
import { execFile, spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSyntheticCheckpoint } from '../../src/engine/synth/generate';
import type { AnalysisReport, CompareReport, ProvenanceReport } from '../../src/engine/report/schema';
import { CLI, ensureBuilt } from './build';
import { FakeHub } from '../hub/fake-hub';
import { COMMIT_A, hubEnv } from '../hub/helpers';

const cli = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, HF_HUB_OFFLINE: '1', ORT_DISABLE_TELEMETRY: '1' } });

describe('CLI provenance: recipes, the dense parent, quantised layers', function () {
  let root: string;
  before(async () => {
    ensureBuilt();
    root = await mkdtemp(join(tmpdir(), 'moe-provenance-cli-'));
  });
  after(async () => rm(root, { recursive: true, force: true }));

  it('synth --recipe split writes the parent beside the MoE; provenance --parent and analyze --parent say split, with the evidence', () => {
    const moe = join(root, 'split');
    const s = cli('synth', '--family', 'qwen2_moe', '--out', moe, '--recipe', 'split', '--segments', '4', '--replicas', '2', '--no-shuffle', '--experts', '8', '--hidden', '64', '--intermediate', '32', '--layers', '1');
    assert.equal(s.status, 0, s.stderr);
    assert.match(s.stdout, /dense parent in .*split-parent/);
    const truth = JSON.parse(readFileSync(join(moe, 'synth-ground-truth.json'), 'utf8'));
    assert.equal(truth.layers[0].recipe.parentIntermediate, 128);

    const out = join(root, 'prov.json');
    const p = cli('provenance', '-m', moe, '--parent', `${moe}-parent`, '--sketch-dim', '64', '-o', out);
    assert.equal(p.status, 0, p.stderr);
    const rep = JSON.parse(readFileSync(out, 'utf8')) as ProvenanceReport;
    assert.equal(rep.schema, 'moe-inspector/provenance@1');
    assert.equal(rep.layers[0]!.method.sketch_dim, 64);
    const l = rep.layers[0]!;
    assert.equal(l.verdict.recipe, 'split');
    assert.deepEqual(l.groups, [[0, 4], [1, 5], [2, 6], [3, 7]]);
    assert.equal(l.parent!.coverage, 1);
    assert.equal(l.parent!.multiplicity, 2); // every parent neuron used by its segment's two replicas
    assert.ok(l.parent!.expert_contiguity.every((c) => c === 1)); // unshuffled: contiguous blocks
    assert.match(p.stdout, /MOE PROVENANCE/);
    assert.match(p.stdout, /Layer 0: UPCYCLED, recipe split \(4 groups\)/);
    assert.match(p.stdout, /parent covered:\s+100\.0%\s+experts per parent neuron 2\.000/);

    const a = cli('analyze', '-m', moe, '--parent', `${moe}-parent`, '--json');
    assert.equal(a.status, 0, a.stderr);
    const ar = JSON.parse(a.stdout) as AnalysisReport;
    assert.equal(ar.verdict.recipe, 'split');
    assert.equal(ar.options.parent, `${moe}-parent`);
    assert.ok(ar.layers[0]!.provenance && ar.layers[0]!.signal_rank?.gate);
    assert.equal(ar.layers[0]!.verdict.rank_cosine_rule!.type, 'uncertain'); // the seeds' rule cannot see a split
  });

  it('copy-upcycled MXFP4 and FP8 layers: the delta rank above the storage-noise edge is the constructed rank; the verdict is copy', async () => {
    const specs = [
      { family: 'gpt_oss' as const, dtype: 'MXFP4' as const, hidden: 64, intermediate: 64 },
      { family: 'deepseek_v3' as const, dtype: 'FP8' as const, hidden: 96, intermediate: 64 },
    ];
    for (const sp of specs) {
      const dir = join(root, sp.dtype);
      // default delta scale 0.3: 4-bit rounding noise puts the 95%-energy rank far above the constructed 2
      await generateSyntheticCheckpoint(dir, { ...sp, numLayers: 2, numExperts: 6, structure: { kind: 'upcycled', ranks: { gate: 2, up: 3, down: 2 } }, seed: 5 });
      const r = cli('analyze', '-m', dir, '--json');
      assert.equal(r.status, 0, r.stderr);
      const rep = JSON.parse(r.stdout) as AnalysisReport;
      const l = rep.layers[0]!;
      assert.equal(l.verdict.type, 'upcycled');
      assert.equal(l.verdict.recipe, 'copy');
      assert.deepEqual(l.signal_rank!.gate!.per_expert, Array(6).fill(2), `${sp.dtype} energy ranks ${JSON.stringify(l.projections.gate!.effective_rank['0.95'])}`);
      assert.deepEqual(l.signal_rank!.up!.per_expert, Array(6).fill(3));
    }
  });

  it('compare shows recipe and neuron-matching rows side by side', async () => {
    const a = join(root, 'perm');
    const b = join(root, 'nat');
    assert.equal(cli('synth', '--family', 'mixtral', '--out', a, '--recipe', 'permuted-copy', '--reinit', '0.5', '--experts', '6', '--hidden', '64', '--intermediate', '32', '--layers', '1').status, 0);
    assert.equal(cli('synth', '--family', 'mixtral', '--out', b, '--recipe', 'native', '--experts', '6', '--hidden', '64', '--intermediate', '32', '--layers', '1').status, 0);
    const out = join(root, 'cmp.json');
    const r = cli('compare', '-m', a, '-c', b, '-o', out);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /\| Recipe\s+\| permuted r=0\.50\s+\| native\s+\|/);
    assert.match(r.stdout, /\| Pairs sharing neurons\s+\| 15\/15\s+\| 0\/15\s+\|/);
    const rep = JSON.parse(readFileSync(out, 'utf8')) as CompareReport;
    assert.deepEqual(rep.models.map((m) => m.layers[0]!.verdict.recipe), ['permuted-copy', 'native']);
  });

  it('--pair-experts N pairs N evenly spaced experts and says so; "all" and N are recorded in options; bad values are usage errors', () => {
    const moe = join(root, 'perm');
    const p = cli('provenance', '-m', moe, '--pair-experts', '3', '--json');
    assert.equal(p.status, 0, p.stderr);
    const l = (JSON.parse(p.stdout) as ProvenanceReport).layers[0]!;
    assert.deepEqual(l.pair_experts, [0, 2, 4]);
    assert.equal(l.summary.pairs, 3);
    assert.equal(l.shared_share.length, 3);
    assert.equal(l.expert_reads, 3);
    assert.deepEqual(l.groups, [[0, 2, 4]]); // permuted copies: every paired expert shares with the others
    const text = cli('provenance', '-m', moe, '--pair-experts', '3');
    assert.match(text.stdout, /pairs sharing neurons:\s+3 \/ 3 \(among 3 evenly spaced experts; --pair-experts\)/);
    const all = cli('analyze', '-m', moe, '--pair-experts', 'all', '--json');
    assert.equal(all.status, 0, all.stderr);
    const ar = JSON.parse(all.stdout) as AnalysisReport;
    assert.equal(ar.options.pair_experts, 'all');
    assert.equal(ar.layers[0]!.provenance!.pair_experts, undefined);
    assert.equal(ar.layers[0]!.provenance!.summary.pairs, 15);
    for (const bad of [['--pair-experts', '1'], ['--pair-experts', 'some'], ['--pair-experts', '4', '--no-provenance']]) {
      const u = cli('analyze', '-m', moe, ...bad);
      assert.equal(u.status, 2, `${bad.join(' ')}: ${u.stderr}`);
      assert.match(u.stderr, /--pair-experts/);
      assert.doesNotMatch(u.stderr, /\n\s+at /);
    }
  });

  it('a parent of another hidden size is one clear error naming the tensor; --parent with --no-provenance is a usage error', async () => {
    const moe = join(root, 'split');
    const other = join(root, 'other');
    assert.equal(cli('synth', '--family', 'mixtral', '--out', join(root, 'wide'), '--recipe', 'copy', '--experts', '2', '--hidden', '96', '--intermediate', '32', '--layers', '1', '--parent-out', other).status, 0);
    const r = cli('provenance', '-m', moe, '--parent', other);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /model\.layers\.0\.mlp\.(gate|up)_proj\.weight/);
    assert.match(r.stderr, /expected \[32, 64\]|hidden size 64/);
    assert.doesNotMatch(r.stderr, /\n\s+at /); // no stack trace
    const u = cli('analyze', '-m', moe, '--parent', other, '--no-provenance');
    assert.equal(u.status, 2);
    assert.match(u.stderr, /--parent needs the provenance pass/);
  });

  it('the parent can be a hub model: read by byte range from a loopback hub, only its FFN of the layer', async () => {
    const moe = join(root, 'hub-moe');
    const parentDir = join(root, 'hub-parent');
    await generateSyntheticCheckpoint(moe, { family: 'mixtral', dtype: 'BF16', numLayers: 10, numExperts: 4, hidden: 64, intermediate: 32, structure: { kind: 'recipe', recipe: { kind: 'permuted-copy', reinit: 0.25 } }, seed: 9 }, { parentDir });
    const hub = await new FakeHub().start();
    try {
      hub.repos.set('acme/dense-parent', { dir: parentDir, refs: { main: COMMIT_A } });
      const env = { ...process.env, ...hubEnv(hub.url, join(root, 'hub-home')), ORT_DISABLE_TELEMETRY: '1' };
      // async: the fake hub answers from this process's event loop
      const r = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
        execFile(process.execPath, [CLI, 'provenance', '-m', moe, '--parent', 'acme/dense-parent', '--layer', '8', '--json'], { env }, (err, stdout, stderr) => resolve({ code: err ? Number(err.code) : 0, stdout, stderr })),
      );
      assert.equal(r.code, 0, r.stderr);
      const rep = JSON.parse(r.stdout) as ProvenanceReport;
      assert.deepEqual(rep.parent, { source: 'acme/dense-parent', revision: COMMIT_A });
      assert.equal(rep.layers[0]!.verdict.recipe, 'permuted-copy');
      assert.ok(Math.abs(rep.layers[0]!.verdict.reinit_share! - 0.25) <= 0.05);
      const ranges = hub.log.filter((l) => l.method === 'GET' && /safetensors/.test(l.path)).map((l) => l.range);
      assert.ok(ranges.every((x) => x !== undefined && x !== null), 'every safetensors read is a Range request');
      // the header probe (first 100 000 bytes) and the layer-8 FFN (3 x 32 x 64 BF16 = 12 288 bytes), not the whole file
      const fileBytes = statSync(join(parentDir, 'model.safetensors')).size;
      assert.ok(fileBytes > 400_000 && hub.bytesSent <= 100_001 + 12_288 + 4096, `${hub.bytesSent} of ${fileBytes} bytes sent`);
    } finally {
      await hub.stop();
    }
  });
});
