/** Progress of long runs: layers done, experts done in the layer in flight, bytes read and an ETA, one format for CLI and VS Code. */
import { strict as assert } from 'node:assert';
import { RunTracker } from '../../src/engine/analysis/run-tracker';
import { formatDuration, formatRun } from '../../src/shared/progress-format';
import { progressPrinter } from '../../src/cli/progress';
import { generateSyntheticCheckpoint } from '../../src/engine/synth/generate';
import { openCheckpoint } from '../../src/engine/model/open-checkpoint';
import { countingCheckpoint } from '../../src/engine/model/counting-checkpoint';
import { resolveMoeModel } from '../../src/engine/layouts';
import { PROJECTIONS, projectionsOf } from '../../src/engine/layouts/types';
import { createComputeBackend } from '../../src/engine/numerics/backend';
import { analyzeModel } from '../../src/engine/analysis/analyze-model';
import { DEFAULT_THRESHOLDS } from '../../src/engine/report/schema';
import type { Progress } from '../../src/shared/messages';
import { withTempDir } from '../layouts/helpers';
import { numericsSolver, overlayCompute } from '../../src/engine/overlay';

describe('progress of long runs', function () {
  this.timeout(60_000);

  it('ETA = elapsed * (1 - f) / f from the share done; none before a second has passed', () => {
    let now = 0;
    const t = new RunTracker(4, () => 123, () => now);
    now = 500;
    assert.equal(t.position(0, 'gate: spectra', 1, 8, 0.5).etaSeconds, null);
    now = 10_000;
    t.layerDone();
    const p = t.position(1, 'up: spectra', 3, 8, 0.0); // 1 of 4 layers in 10 s
    assert.equal(p.etaSeconds, 30);
    assert.deepEqual([p.layersDone, p.layersTotal, p.layer, p.expertsDone, p.expertsTotal, p.bytesRead], [1, 4, 1, 3, 8, 123]);
    assert.equal(t.position(1, '', 0, 0, 1).etaSeconds, 10); // 2 of 4 layers after 10 s: 10 s left
  });

  it('a resumed run counts the earlier session\'s layers as done, and its ETA from this session\'s own rate', () => {
    let now = 0;
    const t = new RunTracker(2, () => 0, () => now, 6); // 6 of 8 layers done before
    now = 10_000;
    t.layerDone(); // this session: 1 of its 2 layers in 10 s
    const p = t.position('decoder.3', 'up: spectra', 0, 4, 0);
    assert.deepEqual([p.layersDone, p.layersTotal, p.layer, p.etaSeconds], [7, 8, 'decoder.3', 10]);
  });

  it('compare: the line names its model; a line whose message names it already can leave it out', () => {
    const r = { model: 'org/a', layersDone: 0, layersTotal: 1, layer: 'encoder.1', step: '', expertsDone: 0, expertsTotal: 0, bytesRead: 0, etaSeconds: null };
    assert.equal(formatRun(r), 'org/a: layer encoder.1 · 0/1 layers done · 0 B read · ETA …');
    assert.equal(formatRun(r, false), 'layer encoder.1 · 0/1 layers done · 0 B read · ETA …');
  });

  it('one line: layer, layers done, step with experts, bytes read, ETA', () => {
    const line = formatRun({ layersDone: 2, layersTotal: 58, layer: 3, step: 'up: spectra', expertsDone: 120, expertsTotal: 256, bytesRead: 4.21e9, etaSeconds: 4320 });
    assert.equal(line, 'layer 3 · 2/58 layers done · up: spectra, experts 120/256 · 4.21 GB read · ETA 1h12m');
    assert.equal(formatDuration(59.6), '1m00s');
    assert.match(formatRun({ layersDone: 0, layersTotal: 1, layer: null, step: '', expertsDone: 0, expertsTotal: 0, bytesRead: 0, etaSeconds: null }), /^0\/1 layers done · 0 B read · ETA …$/);
  });

  it('analyze reports every layer, every expert of pass two, and the bytes both passes read; a log gets one line per layer', async () => {
    await withTempDir(async (dir) => {
      await generateSyntheticCheckpoint(dir, { family: 'qwen3_moe', dtype: 'BF16', numLayers: 2, numExperts: 4, hidden: 32, intermediate: 16, structure: { kind: 'native' }, seed: 2 });
      const raw = await openCheckpoint(dir);
      const counted = countingCheckpoint(raw);
      const backend = await createComputeBackend('cpu');
      const seen: Progress[] = [];
      const lines: string[] = [];
      const printer = progressPrinter({ isTTY: false, write: (s: string) => lines.push(s) } as unknown as NodeJS.WriteStream);
      try {
        const model = resolveMoeModel(counted.ckpt);
        await analyzeModel(model, { source: dir, revision: null, sharedExperts: false }, backend, {
          layers: { kind: 'all' },
          sampleExperts: null,
          thresholds: DEFAULT_THRESHOLDS,
          bytesRead: counted.bytesRead,
          onProgress: (p) => {
            seen.push(p);
            printer.update(p);
          },
        });
        const expertBytes = model.layers.flatMap((l) => projectionsOf(l.projections).flatMap((p) => l.projections[p]!.tensors)).reduce((a, n) => a + counted.ckpt.tensors.get(n)!.byteLength, 0);
        assert.equal(counted.bytesRead(), 2 * expertBytes, 'each expert byte is read once per pass');
        const done = seen.filter((p) => p.stage === 'layer-done').map((p) => p.run!);
        assert.deepEqual(done.map((r) => [r.layersDone, r.layersTotal]), [[1, 2], [2, 2]]);
        assert.equal(done[1]!.bytesRead, 2 * expertBytes);
        for (const layer of [0, 1]) {
          for (const proj of PROJECTIONS) {
            const spectra = seen.filter((p) => p.stage === 'spectra' && p.run?.layer === layer && p.run.step === `${proj}: spectra`).map((p) => p.run!.expertsDone);
            assert.deepEqual(spectra, [1, 2, 3, 4], `layer ${layer} ${proj}`);
          }
        }
        const bytes = seen.filter((p) => p.run).map((p) => p.run!.bytesRead);
        assert.ok(bytes.every((b, i) => i === 0 || b >= bytes[i - 1]!), 'bytes read never decrease');
        assert.equal(lines.length, 2, lines.join(''));
        assert.match(lines[1]!, /^layer 1 done · 2\/2 layers done · [\d.]+ kB read · ETA \S+\n$/);
      } finally {
        await raw.close();
        await backend.dispose();
      }
    });
  });

  it('overlay compute reports its steps per layer (bases, spectra, factors) with experts done and a growing share of the run', async () => {
    await withTempDir(async (dir) => {
      await generateSyntheticCheckpoint(dir, { family: 'olmoe', dtype: 'BF16', numLayers: 2, numExperts: 4, hidden: 32, intermediate: 16, structure: { kind: 'upcycled', ranks: { gate: 2, up: 2, down: 2 } }, seed: 3 });
      const raw = await openCheckpoint(dir);
      const counted = countingCheckpoint(raw);
      const backend = await createComputeBackend('cpu');
      const runs: NonNullable<Progress['run']>[] = [];
      try {
        const model = resolveMoeModel(counted.ckpt);
        await overlayCompute(counted.ckpt, model, numericsSolver(backend), {
          layers: { kind: 'all' },
          rule: { kind: 'energy', energy: 0.9 },
          overlayDtype: 'F32',
          bytesRead: counted.bytesRead,
          onProgress: (p) => p.run && runs.push(p.run),
        });
        const steps = [...new Set(runs.filter((r) => r.layer === 1).map((r) => r.step))];
        assert.deepEqual(steps, ['gate: base', 'up: base', 'down: base', 'gate: spectra', 'up: spectra', 'down: spectra', 'gate: factors', 'up: factors', 'down: factors']);
        assert.deepEqual(runs.filter((r) => r.layer === 0 && r.step === 'up: factors').map((r) => r.expertsDone), [0, 1, 2, 3]);
        assert.deepEqual([...new Set(runs.map((r) => r.layersDone))], [0, 1]);
        // reported as each expert starts: the last report precedes the last expert's read
        assert.ok(runs.every((r, i) => i === 0 || r.bytesRead >= runs[i - 1]!.bytesRead));
        assert.ok(runs.at(-1)!.bytesRead > 0 && runs.at(-1)!.bytesRead < counted.bytesRead());
      } finally {
        await raw.close();
        await backend.dispose();
      }
    });
  });
});
