/** The overlay job: opens the model, picks the engine call for the mode, adds the runtime. */
import { MoeInspectorError } from '../engine/errors';
import { resolveMoeModel } from '../engine/layouts';
import { countingCheckpoint } from '../engine/model/counting-checkpoint';
import { assertOverlaySupported } from '../engine/overlay/gated';
import { numericsSolver } from '../engine/overlay/numerics-solver';
import { overlayCompute } from '../engine/overlay/overlay-compute';
import { overlayVerify } from '../engine/overlay/overlay-verify';
import { DEFAULT_OVERLAY_DTYPE, type RankRule } from '../engine/overlay/types';
import type { OverlayReport } from '../engine/report/schema';
import type { OverlayJob } from '../shared/messages';
import { backendFor, withCheckpoint, type JobContext } from './jobs';
import { runEstimate } from './estimate-job';

export async function runOverlayJob(job: OverlayJob, ctx: JobContext): Promise<OverlayReport> {
  const started = performance.now();
  const backend = await backendFor(job.device);
  const solver = numericsSolver(backend);
  const rule: RankRule = job.ranks;
  const overlayDtype = job.overlayDtype ?? DEFAULT_OVERLAY_DTYPE;
  const report = await withCheckpoint(job.model, job, ctx, async (opened) => {
    const counted = countingCheckpoint(opened);
    const ckpt = counted.ckpt;
    const common = { rule, overlayDtype, signal: ctx.signal, onProgress: ctx.onProgress, bytesRead: counted.bytesRead };
    const model = resolveMoeModel(ckpt);
    assertOverlaySupported(model);
    switch (job.mode) {
      case 'compute':
        return overlayCompute(ckpt, model, solver, { ...common, layers: job.layers, ...(job.saveDir ? { saveDir: job.saveDir } : {}) });
      case 'verify':
        return overlayVerify(ckpt, model, solver, backend, {
          ...common,
          layers: job.layers,
          ...(job.overlayDir ? { overlayDir: job.overlayDir } : {}),
          ...(job.inputsFile ? { inputsFile: job.inputsFile } : {}),
          ...(job.seed !== undefined ? { seed: job.seed } : {}),
          ...(job.maxError !== undefined ? { maxError: job.maxError } : {}),
        });
      case 'estimate':
        // Resumable, saved after every layer, with its own runtime (over all sessions).
        return runEstimate(job, { ckpt, model, solver, backend, started }, { ...common, fast: job.fast === true }, ctx);
    }
  });
  if (ctx.signal.aborted) throw new MoeInspectorError('cancelled', 'overlay cancelled');
  return report.runtime ? report : { ...report, runtime: { execution_provider: backend.executionProvider, seconds: (performance.now() - started) / 1000 } };
}
