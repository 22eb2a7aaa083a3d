/** overlay estimate's byte accounting against raw header reads, the native case, and the CLI's exit codes. */
import { strict as assert } from 'node:assert';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSyntheticCheckpoint } from '../../src/engine/synth/generate';
import { openCheckpoint } from '../../src/engine/model/open-checkpoint';
import { resolveMoeModel } from '../../src/engine/layouts';
import { overlayEstimate } from '../../src/engine/overlay/overlay-estimate';
import { overlayCommand } from '../../src/cli/overlay-command';
import { runOverlayJob } from '../../src/worker/overlay-job';
import type { OverlayReport } from '../../src/engine/report/schema';
import { exactSolver, headerOf } from './reference';

describe('overlay estimate and CLI', function () {
  let root: string;
  before(async () => (root = await mkdtemp(join(tmpdir(), 'moe-est-'))));
  after(async () => rm(root, { recursive: true, force: true }));

  it('gpt_oss MXFP4: every byte count equals sums of tensor byte lengths read from the header here', async () => {
    const dir = join(root, 'gptoss');
    await generateSyntheticCheckpoint(dir, { family: 'gpt_oss', dtype: 'MXFP4', numLayers: 2, numExperts: 4, hidden: 64, intermediate: 64, structure: { kind: 'upcycled', ranks: { gate: 2, up: 3, down: 2 } }, seed: 3 });
    const h = headerOf(join(dir, 'model.safetensors'));
    const sum = (f: (n: string) => boolean) => [...h].filter(([n]) => f(n)).reduce((a, [, t]) => a + t.bytes, 0);
    const ckpt = await openCheckpoint(dir);
    try {
      const r = await overlayEstimate(ckpt, resolveMoeModel(ckpt), exactSolver, { rule: { kind: 'fixed', gate: 2, up: 3, down: 2 }, overlayDtype: 'BF16' });
      assert.equal(r.totals.original_bytes, sum(() => true));
      assert.equal(r.expert_bytes!.original, sum((n) => /experts\.(gate_up|down)_proj_(blocks|scales)$/.test(n)));
      assert.equal(r.non_expert_bytes!['expert_biases'], sum((n) => /experts\..*_bias$/.test(n)));
      assert.equal(r.non_expert_bytes!['router'], sum((n) => /mlp\.router\./.test(n)));
      assert.equal(r.non_expert_bytes!['attention'], sum((n) => /self_attn/.test(n)));
      assert.equal(r.non_expert_bytes!['embeddings'], sum((n) => /embed_tokens|lm_head/.test(n)));
      for (const layer of [0, 1]) {
        const l = r.layers.find((x) => x.layer === layer)!;
        assert.equal(l.projections.gate!.original_bytes + l.projections.up!.original_bytes, sum((n) => n.startsWith(`model.layers.${layer}.mlp.experts.gate_up_proj_`) && !n.endsWith('bias')));
        assert.equal(l.projections.down!.original_bytes, sum((n) => n.startsWith(`model.layers.${layer}.mlp.experts.down_proj_`) && !n.endsWith('bias')));
        // overlay: base [64 x 64] + 4 experts x r x (64 + 64), 2 bytes each (BF16)
        assert.equal(l.projections.up!.overlay_bytes, (64 * 64 + 4 * 3 * 128) * 2);
      }
      const kept = Object.values(r.non_expert_bytes!).reduce((a, b) => a + b, 0);
      assert.equal(kept + r.expert_bytes!.original, r.totals.original_bytes, 'every tensor counted exactly once');
      assert.equal(r.totals.overlay_bytes, kept + r.expert_bytes!.overlay);
    } finally {
      await ckpt.close();
    }
  });

  it('a native checkpoint at 95% energy is reported not compressible (ratio <= 1), not with a misleading figure', async () => {
    const dir = join(root, 'native');
    await generateSyntheticCheckpoint(dir, { family: 'olmoe', dtype: 'BF16', numLayers: 2, numExperts: 4, hidden: 40, intermediate: 32, structure: { kind: 'native' }, seed: 9 });
    const ckpt = await openCheckpoint(dir);
    try {
      const r = await overlayEstimate(ckpt, resolveMoeModel(ckpt), exactSolver, { rule: { kind: 'energy', energy: 0.95 }, overlayDtype: 'BF16' });
      assert.equal(r.compressible, false);
      assert.ok(r.expert_bytes!.original / r.expert_bytes!.overlay <= 1);
      assert.match(r.note!, /not compressible/);
      assert.equal(r.layers.length, 2, 'every MoE layer measured');
      for (const l of r.layers) assert.ok(l.projections.gate!.rank > 0.5 * 32, `native gate rank ${l.projections.gate!.rank} of 32`);
    } finally {
      await ckpt.close();
    }
  });

  it('CLI: verify exits 1 when --max-error is not met and 0 when it is (real engine in-process)', async () => {
    const dir = join(root, 'up');
    await generateSyntheticCheckpoint(dir, { family: 'olmoe', dtype: 'F32', numLayers: 1, numExperts: 4, hidden: 32, intermediate: 32, structure: { kind: 'upcycled', ranks: { gate: 2, up: 2, down: 2 } }, seed: 2 });
    const reports: OverlayReport[] = [];
    const ctx = { signal: new AbortController().signal, onProgress: () => undefined, onPartial: () => undefined };
    const deps = {
      emit: async (_v: unknown, report: unknown) => void reports.push(report as OverlayReport),
      formatOverlay: () => '',
      run: async (job: Parameters<typeof runOverlayJob>[0]) => ({ kind: 'overlay' as const, report: await runOverlayJob(job, ctx) }),
    };
    const base = ['verify', '-m', dir, '--device', 'cpu', '--overlay-dtype', 'F32'];
    assert.equal(await overlayCommand([...base, '--gate-rank', '0', '--up-rank', '0', '--down-rank', '0'], deps as never), 1);
    assert.equal(reports[0]!.verification!.passed, false);
    assert.equal(await overlayCommand([...base, '--gate-rank', '2', '--up-rank', '2', '--down-rank', '2', '--max-error', '0.05'], deps as never), 0);
    assert.equal(reports[1]!.verification!.passed, true);
  });
});
