/**
 * Issue 11 end to end through the real worker and CLI: the six new layouts analysed against the
 * generator's ground truth (upcycled with the constructed ranks, native as native; experts without a
 * gate judged on up; encoder/decoder and vision groups named), and `info` on a model it cannot lay out.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WorkerClient } from '../../src/client/worker-client';
import { generateSyntheticCheckpoint, type SynthSpec } from '../../src/engine/synth/generate';
import type { SynthFamily } from '../../src/engine/synth/families';
import type { SynthDtype } from '../../src/engine/synth/encode-matrix';
import type { AnalysisReport, InfoReport } from '../../src/engine/report/schema';
import type { LayerSelection } from '../../src/shared/messages';
import { writeSafetensors } from '../../src/engine/synth/safetensors-writer';
import { CLI, ensureBuilt, WORKER } from './build';

// Up carries the rank test where there is no gate: rank 2 of min(96, 128) (2 of 48 for ERNIE's vision experts) stays under the 5% threshold.
const RANKS = { gate: 2, up: 2, down: 3 };
const CASES: [SynthFamily, SynthDtype][] = [['nemotron_h', 'F32'], ['nemotron_h_fused', 'BF16'], ['switch_transformers', 'BF16'], ['nllb_moe', 'F16'], ['aria', 'BF16'], ['step3p7', 'BF16'], ['ernie4_5_vl_moe', 'F32'], ['ernie4_5_vl_moe_fused', 'BF16']];

function spec(family: SynthFamily, dtype: SynthDtype, structure: 'upcycled' | 'native'): SynthSpec {
  return { family, dtype, numLayers: 2, numExperts: 6, hidden: 128, intermediate: 96, seed: 21, structure: structure === 'native' ? { kind: 'native' } : { kind: 'upcycled', ranks: RANKS } };
}

function cli(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, HF_HUB_OFFLINE: '1' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('the six new layouts through the worker, against the generator\'s ground truth', function () {
  let root: string;
  let client: WorkerClient;
  before(async () => {
    ensureBuilt();
    root = await mkdtemp(join(tmpdir(), 'moe-newfam-'));
    client = WorkerClient.start({ workerPath: WORKER });
  });
  after(async () => {
    client.dispose();
    await rm(root, { recursive: true, force: true });
  });

  // The rank + cosine rule alone (its reasons are checked): provenance in gateless and grouped layers
  // is tested in test/provenance/groups-gateless.test.ts.
  async function analyze(dir: string, layers: LayerSelection = { kind: 'all' }): Promise<AnalysisReport> {
    const r = await client.run({ kind: 'analyze', model: dir, layers, sampleExperts: null, device: 'cpu', provenance: false });
    assert.equal(r.kind, 'analyze');
    return (r as { report: AnalysisReport }).report;
  }

  for (const [family, dtype] of CASES) {
    it(`${family} ${dtype}: upcycled is upcycled with the constructed ranks in every group; native is native`, async () => {
      const up = join(root, `${family}-up`);
      const nat = join(root, `${family}-nat`);
      const truth = await generateSyntheticCheckpoint(up, spec(family, dtype, 'upcycled'));
      await generateSyntheticCheckpoint(nat, spec(family, dtype, 'native'));
      const a = await analyze(up);
      assert.deepEqual(a.model.moe_layer_names, truth.moeLayerNames);
      assert.deepEqual(a.layers.map((l) => l.name), truth.moeLayerNames);
      assert.equal(a.verdict.type, 'upcycled', JSON.stringify(a.layers.map((l) => l.verdict)));
      for (const l of a.layers) {
        const t = truth.layers.find((x) => x.name === l.name)!;
        assert.equal(l.group, t.group);
        assert.equal(l.verdict.type, 'upcycled', `${family} ${l.name}`);
        assert.deepEqual(Object.keys(l.projections).sort(), [...t.projections].sort());
        for (const p of t.projections) {
          // Every delta from the mean is the constructed rank-r delta: exact 95% ranks (biases never folded in).
          assert.deepEqual(l.projections[p]!.effective_rank['0.95'], Array(6).fill(RANKS[p]), `${family} ${l.name} ${p}`);
        }
        const gateless = !t.projections.includes('gate');
        assert.equal(l.verdict.reasons.includes('the experts have no gate projection: the rank test uses up'), gateless);
        assert.match(l.verdict.reasons[0]!, gateless ? /^up rank ratio/ : /^gate rank ratio/);
      }
      const n = await analyze(nat);
      assert.equal(n.verdict.type, 'native', JSON.stringify(n.layers.map((l) => l.verdict)));
      for (const l of n.layers) assert.equal(l.verdict.type, 'native', `${family} ${l.name}`);
    });
  }

  it('--layers selects a group\'s layer by name (decoder.1), a whole group (vision), a bare index in every group', async () => {
    const sw = join(root, 'switch_transformers-up');
    assert.deepEqual((await analyze(sw, { kind: 'list', layers: [], names: ['decoder.1'] })).layers.map((l) => l.name), ['decoder.1']);
    assert.deepEqual((await analyze(sw, { kind: 'list', layers: [1] })).layers.map((l) => l.name), ['encoder.1', 'decoder.1']);
    const ernie = join(root, 'ernie4_5_vl_moe-up');
    assert.deepEqual((await analyze(ernie, { kind: 'list', layers: [], names: ['vision.*'] })).layers.map((l) => l.name), ['vision.1']);
    const r = cli(['analyze', '-m', sw, '--layers', 'decoder.1', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as AnalysisReport;
    assert.deepEqual(report.layers.map((l) => [l.layer, l.group, l.name]), [[1, 'decoder', 'decoder.1']]);
  });

  it('info names groups and says when there is no gate; the overlay commands refuse such models clearly', async () => {
    const r = cli(['info', '-m', join(root, 'nllb_moe-up'), '--json']);
    assert.equal(r.code, 0, r.stderr);
    const info = JSON.parse(r.stdout) as InfoReport;
    assert.deepEqual(info.moe_layer_names, ['encoder.1', 'decoder.1']);
    assert.deepEqual(info.layer_groups.map((g) => [g.group, g.num_experts, g.moe_layers]), [['encoder', 6, [1]], ['decoder', 6, [1]]]);
    assert.equal(info.projections.gate, undefined);
    assert.deepEqual(info.projections.up!.shape, [96, 128]);
    const text = cli(['info', '-m', join(root, 'nemotron_h-up')]);
    assert.match(text.stdout, /no gate projection: the experts are up -> activation -> down/);
    const o = cli(['overlay', 'estimate', '-m', join(root, 'nemotron_h-up')]);
    assert.equal(o.code, 1);
    assert.match(o.stderr, /the overlay commands need gate\/up\/down experts; the nemotron_h experts \(layer 1\) have no gate projection/);
  });
});

describe('info on a model it cannot lay out as MoE', function () {
  let root: string;
  before(async () => {
    ensureBuilt();
    root = await mkdtemp(join(tmpdir(), 'moe-info-'));
  });
  after(async () => rm(root, { recursive: true, force: true }));

  it('exits 1 with the message analyze gives; --headers-only lists the headers and says why in words', async () => {
    const dense = join(root, 'dense');
    await mkdir(dense);
    await writeSafetensors(join(dense, 'model.safetensors'), [
      { name: 'model.layers.0.mlp.up_proj.weight', dtype: 'BF16', shape: [8, 4], produce: async (sink) => sink(new Uint8Array(64)) },
    ]);
    await writeFile(join(dense, 'config.json'), JSON.stringify({ model_type: 'llama', num_hidden_layers: 1 }));
    const info = cli(['info', '-m', dense]);
    const analyze = cli(['analyze', '-m', dense]);
    assert.equal(info.code, 1);
    assert.equal(analyze.code, 1);
    assert.equal(info.stdout, '');
    assert.match(info.stderr, /not a Mixture-of-Experts model: model_type llama/);
    assert.equal(info.stderr, analyze.stderr);
    const headers = cli(['info', '-m', dense, '--headers-only']);
    assert.equal(headers.code, 0, headers.stderr);
    assert.match(headers.stdout, /Experts: +not resolved \(headers only\): .*not a Mixture-of-Experts model: model_type llama/);
    assert.doesNotMatch(headers.stdout, /0 routed/);
    assert.match(headers.stdout, /BF16 +1 tensors/);
    const json = JSON.parse(cli(['info', '-m', dense, '--headers-only', '--json']).stdout) as InfoReport;
    assert.equal(json.moe_error?.code, 'not-moe');
    assert.deepEqual(json.parameters, { total: 32, routed_experts: 0, other: 32 });
  });

  it('a config that contradicts the tensors: info fails as analyze does, naming both sides', async () => {
    const dir = join(root, 'short');
    await generateSyntheticCheckpoint(dir, { family: 'qwen3_moe', dtype: 'BF16', numLayers: 3, numExperts: 2, hidden: 16, intermediate: 8, structure: { kind: 'native' } });
    const cfg = JSON.parse(await (await import('node:fs/promises')).readFile(join(dir, 'config.json'), 'utf8'));
    await writeFile(join(dir, 'config.json'), JSON.stringify({ ...cfg, num_hidden_layers: 2 }));
    const info = cli(['info', '-m', dir]);
    assert.equal(info.code, 1);
    assert.match(info.stderr, /config\.json num_hidden_layers = 2, but model\.layers 2 holds 6 expert tensors/);
    assert.equal(cli(['analyze', '-m', dir]).stderr, info.stderr);
  });
});
