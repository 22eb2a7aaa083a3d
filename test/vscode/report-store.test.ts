/**
 * The worker's report store (what keeps the VS Code extension host small): with `store`, the worker
 * writes every full layer and the full report to files and sends summaries only. Checked against the
 * same job run without a store (the reference): the files hold exactly the layers the caller would
 * otherwise have received, and the summaries are those layers without their arrays of arrays.
 */
import { strict as assert } from 'node:assert';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { WorkerClient } from '../../src/client/worker-client';
import { generateSyntheticCheckpoint } from '../../src/engine/synth/generate';
import type { AnalysisReport, LayerAnalysis } from '../../src/engine/report/schema';
import { slim, type LayerSummary } from '../../src/shared/report-summary';
import { REPO } from './code-server';

describe('worker report store (summaries to the caller, full layers on disk)', function () {
  this.timeout(120_000);
  let tmp: string;
  let client: WorkerClient;

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'moe-store-'));
    if (!existsSync(join(REPO, 'dist', 'worker.js'))) execFileSync('node', ['esbuild.mjs'], { cwd: REPO });
    await generateSyntheticCheckpoint(join(tmp, 'm'), { family: 'olmoe', dtype: 'BF16', numLayers: 3, numExperts: 6, hidden: 48, intermediate: 32, structure: { kind: 'upcycled', ranks: { gate: 2, up: 3, down: 2 } }, seed: 3 });
    client = WorkerClient.start({ workerPath: join(REPO, 'dist', 'worker.js') });
  });

  after(() => {
    client?.dispose();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  /** Two runs are equal but for the provenance pass's own wall-clock seconds. */
  const untimed = (l: LayerAnalysis) => ({ ...l, ...(l.provenance ? { provenance: { ...l.provenance, seconds: 0 } } : {}) });

  it('writes each full layer and the report; sends summaries without E x E matrices or spectra', async () => {
    const base = { kind: 'analyze' as const, model: join(tmp, 'm'), layers: { kind: 'all' as const }, sampleExperts: null, device: 'cpu' as const };
    const reference = await client.run(base);
    assert.equal(reference.kind, 'analyze');
    const refReport = (reference as { report: AnalysisReport }).report;

    const dir = join(tmp, 'store');
    const streamed: { layer: LayerSummary; file: string }[] = [];
    const full: LayerAnalysis[] = [];
    const r = await client.run({ ...base, store: { dir } }, {
      onPartial: (_m, l) => full.push(l),
      onStoredLayer: (_m, layer, file) => streamed.push({ layer, file }),
    });
    assert.equal(full.length, 0, 'no full layer reaches the caller');
    assert.equal(r.kind, 'stored');
    if (r.kind !== 'stored') return;
    assert.deepEqual(streamed.map((s) => s.layer.layer), [0, 1, 2]);
    for (const [i, s] of streamed.entries()) {
      const onDisk = JSON.parse(readFileSync(s.file, 'utf8')) as LayerAnalysis;
      assert.deepEqual(untimed(onDisk), untimed(refReport.layers[i]!), 'the stored layer is the layer the worker would have sent');
      assert.deepEqual(s.layer, slim(onDisk));
      const g = s.layer.projections.gate as Record<string, unknown> & { cosine: Record<string, unknown> };
      assert.equal(g['singular_values'], undefined);
      assert.equal(g.cosine['matrix'], undefined);
      assert.equal(typeof g.cosine['mean'], 'number');
      assert.deepEqual(g['delta_norms'], refReport.layers[i]!.projections.gate!.delta_norms, 'per-expert lists stay');
    }
    const stored = JSON.parse(readFileSync(r.files[0]!, 'utf8')) as AnalysisReport;
    assert.deepEqual(stored.layers.map(untimed), refReport.layers.map(untimed));
    assert.deepEqual(stored.verdict, refReport.verdict);
    assert.equal(r.reports[0]!.layers.length, 3);
    assert.deepEqual(r.reports[0]!.verdict, refReport.verdict);
    // the summary is far smaller than the report: the matrices and spectra stayed on disk
    assert.ok(JSON.stringify(r.reports[0]).length * 3 < JSON.stringify(refReport).length);
  });

  it('paces progress when asked: only the first step of a run arrives when the interval is longer than the run', async () => {
    const job = { kind: 'analyze' as const, model: join(tmp, 'm'), layers: { kind: 'all' as const }, sampleExperts: null, device: 'cpu' as const };
    let every = 0;
    await client.run(job, { onProgress: () => every++ });
    let paced = 0;
    await client.run({ ...job, progressEveryMs: 3_600_000 }, { onProgress: () => paced++ });
    assert.ok(every > 10, `unpaced: ${every} progress messages`);
    assert.equal(paced, 1);
  });
});
