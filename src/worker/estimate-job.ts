/**
 * `overlay estimate` as a resumable run: like the analysis (analysis-job.ts), the report is saved after
 * every measured layer when -o is given, and `--resume` keeps the layers a previous run of the same
 * estimate finished. Totals are always recomputed from all layers by the engine.
 */
import { MoeInspectorError } from '../engine/errors';
import type { Checkpoint } from '../engine/model/checkpoint';
import { checkpointFingerprint } from '../engine/model/fingerprint';
import { firstWeightTensor, type MoeModel } from '../engine/layouts/types';
import type { ComputeBackend } from '../engine/numerics/backend';
import type { DeltaSolver } from '../engine/overlay/delta-solver';
import { estimateOptionsRecord, overlayEstimate, type EstimateOptions } from '../engine/overlay/overlay-estimate';
import { modelHeader } from '../engine/overlay/report-parts';
import { describeStatus, runStatus } from '../engine/report/analysis-run';
import { layerIdOf } from '../engine/report/layer-id';
import type { RunHeader } from '../engine/report/run-identity';
import type { OverlayReport, RunState } from '../engine/report/schema';
import { PROGRAM } from '../engine/version';
import type { OverlayJob } from '../shared/messages';
import type { JobContext } from './jobs';
import { priorRun, providersOf, saveRun } from './run-file';

export interface EstimateRun {
  readonly ckpt: Checkpoint;
  readonly model: MoeModel;
  readonly solver: DeltaSolver;
  readonly backend: ComputeBackend;
  readonly started: number;
}

export async function runEstimate(job: OverlayJob, run: EstimateRun, opts: EstimateOptions, ctx: JobContext): Promise<OverlayReport> {
  const { ckpt, model, backend } = run;
  const fingerprint = await checkpointFingerprint(ckpt, model.layers[0] ? firstWeightTensor(model.layers[0]) : null);
  const header: RunHeader & Pick<OverlayReport, 'model'> = {
    schema: 'moe-inspector/overlay@1',
    mode: 'estimate',
    program: PROGRAM,
    model: { ...modelHeader(ckpt, model), fingerprint },
    options: estimateOptionsRecord(opts),
  };
  const prior = job.output ? await priorRun(job.output, header, asEstimateReport) : null;
  if (prior) ctx.onProgress({ stage: 'resume', done: prior.layers.length, total: model.layers.length, message: `resuming ${job.output!.path}: ${describeStatus(prior.status!)}` });
  const planned = model.layers.map((l) => layerIdOf(l));
  const stamp = (r: OverlayReport, state: RunState): OverlayReport => ({
    ...r,
    status: runStatus(state, planned, r.layers),
    program: PROGRAM,
    model: header.model,
    runtime: {
      execution_provider: backend.executionProvider,
      seconds: (prior?.runtime?.seconds ?? 0) + (performance.now() - run.started) / 1000,
      execution_providers: providersOf(prior?.runtime && prior.layers.length > 0 ? prior.runtime : undefined, backend.executionProvider),
    },
  });
  let latest: OverlayReport | null = null;
  try {
    const report = await overlayEstimate(ckpt, model, run.solver, {
      ...opts,
      previous: prior?.layers ?? [],
      onLayer: async (partial) => {
        latest = partial;
        await saveRun(job.output, stamp(partial, 'running'));
      },
    });
    if (ctx.signal.aborted) throw new MoeInspectorError('cancelled', 'overlay cancelled');
    const final = stamp(report, 'complete');
    await saveRun(job.output, final);
    return final;
  } catch (e) {
    if (latest) await saveRun(job.output, stamp(latest, 'interrupted')).catch(() => undefined);
    throw e;
  }
}

/** A parsed JSON value checked to be an estimate report that carries its run identity. */
export function asEstimateReport(raw: unknown, file: string): OverlayReport {
  const r = raw as Partial<OverlayReport> | null;
  if (typeof r !== 'object' || r === null || r.schema !== 'moe-inspector/overlay@1' || r.mode !== 'estimate' || !Array.isArray(r.layers)) {
    throw new MoeInspectorError('format', 'not an overlay estimate report (schema "moe-inspector/overlay@1", mode "estimate")', { file });
  }
  if (!r.program || !r.status || !r.model?.fingerprint) {
    throw new MoeInspectorError('format', 'this report has no run identity (program, status, model fingerprint): it was written before resumable runs; run the estimate again', { file });
  }
  return r as OverlayReport;
}
