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
import { RunStore } from '../../src/extension/run-store';
import { layerRefOf } from '../../src/extension/panel-protocol';
import { summarizeReport } from '../../src/shared/report-summary';

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
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const untimed = <T extends { provenance?: any }>(l: T): T => ({ ...l, ...(l.provenance ? { provenance: { ...l.provenance, seconds: 0 } } : {}) });

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

  it('keys the layers of a grouped model by name: encoder.1 and decoder.1 are stored and loaded separately', async () => {
    const sw = join(tmp, 'sw');
    const truth = await generateSyntheticCheckpoint(sw, { family: 'switch_transformers', dtype: 'BF16', numLayers: 2, numExperts: 4, hidden: 48, intermediate: 32, structure: { kind: 'upcycled', ranks: { gate: 2, up: 3, down: 2 } }, seed: 5 });
    assert.deepEqual(truth.moeLayerNames, ['encoder.1', 'decoder.1'], 'both groups share the index 1: the case the bare index got wrong');
    const base = { kind: 'analyze' as const, model: sw, layers: { kind: 'all' as const }, sampleExperts: null, device: 'cpu' as const };
    const refReport = ((await client.run(base)) as { report: AnalysisReport }).report;
    assert.deepEqual(refReport.layers.map((l) => l.name), ['encoder.1', 'decoder.1']);
    // the two layers' numbers differ (different random weights), so a mix-up would show
    assert.notDeepEqual(refReport.layers[0]!.projections.up!.delta_norms, refReport.layers[1]!.projections.up!.delta_norms);

    // the extension's run store gives the folder; the worker writes into it
    const runs = new RunStore(join(tmp, 'runs'));
    const { id, dir } = await runs.newRun();
    const streamed: { layer: LayerSummary; file: string }[] = [];
    const r = await client.run({ ...base, store: { dir } }, { onStoredLayer: (_m, layer, file) => streamed.push({ layer, file }) });
    assert.equal(r.kind, 'stored');
    if (r.kind !== 'stored') return;
    assert.deepEqual(streamed.map((s) => layerRefOf(s.layer)), ['encoder.1', 'decoder.1']);
    assert.notEqual(streamed[0]!.file, streamed[1]!.file, 'one file per layer, not one overwriting the other');
    for (const ref of ['encoder.1', 'decoder.1']) {
      // what the panel's loadLayer reads: the host's path for (run, model, ref)
      const file = runs.layerFile(id, 0, ref);
      assert.equal(file, streamed.find((s) => layerRefOf(s.layer) === ref)!.file);
      const onDisk = JSON.parse(readFileSync(file, 'utf8')) as LayerAnalysis;
      assert.deepEqual(untimed(onDisk), untimed(refReport.layers.find((l) => l.name === ref)!), `${ref} on disk is the worker's ${ref}`);
    }
    // the side bar's entry keeps the refs (its layer items open the panel at that layer)
    const saved = await runs.save(id, 'analyze', [sw], r.reports);
    assert.deepEqual(saved.models[0]!.layers.map((l) => [l.layer, l.ref]), [[1, 'encoder.1'], [1, 'decoder.1']]);
    assert.deepEqual(r.reports[0]!.layers.map(untimed), summarizeReport(refReport).layers.map(untimed));
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
