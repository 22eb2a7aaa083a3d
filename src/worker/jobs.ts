/** Maps a typed Job onto engine calls. The only place that wires formats, layouts, numerics and reports together. */
import { MoeInspectorError } from '../engine/errors';
import type { Checkpoint } from '../engine/model/checkpoint';
import { resolveModel, transferStatsOf } from '../engine/model/resolve-model';
import { resolveMoeModel } from '../engine/layouts';
import { countingCheckpoint } from '../engine/model/counting-checkpoint';
import { createComputeBackend, type ComputeBackend } from '../engine/numerics/backend';
import { analyzeModel } from '../engine/analysis/analyze-model';
import { emptyTimings, type MetricsTimings } from '../engine/numerics/projection-metrics';
import { buildInfoReport } from '../engine/report/info';
import { DEFAULT_THRESHOLDS, type AnalysisReport, type AnalysisStages, type LayerAnalysis } from '../engine/report/schema';
import type { AnalyzeJob, DeviceChoice, Job, JobResult, ModelAccess, Progress } from '../shared/messages';
import { runOverlayJob } from './overlay-job';

export interface JobContext {
  readonly signal: AbortSignal;
  readonly onProgress: (p: Progress) => void;
  readonly onPartial: (modelIndex: number, layer: LayerAnalysis) => void;
}

const backends = new Map<DeviceChoice, Promise<ComputeBackend>>();

/** Backends (and their ONNX Runtime sessions) live as long as the worker: later jobs reuse them. */
export function backendFor(device: DeviceChoice): Promise<ComputeBackend> {
  let b = backends.get(device);
  if (!b) {
    b = createComputeBackend(device);
    b.catch(() => backends.delete(device));
    backends.set(device, b);
  }
  return b;
}

export async function openModel(spec: string, access: ModelAccess, ctx: JobContext): Promise<Checkpoint> {
  return resolveModel(spec, {
    signal: ctx.signal,
    allowFullDownload: access.allowFullDownload === true || process.env['MOE_ALLOW_FULL_DOWNLOAD'] === '1',
    onBytes: (fetched, needed) =>
      ctx.onProgress({ stage: 'fetching', done: fetched, total: needed, message: `fetched ${fetched} of ${needed} bytes`, bytesFetched: fetched, bytesNeeded: needed }),
  });
}

export async function runJob(job: Job, ctx: JobContext): Promise<JobResult> {
  switch (job.kind) {
    case 'info':
      return { kind: 'info', report: await withCheckpoint(job.model, job, ctx, async (ckpt) => buildInfoReport(ckpt, tryResolve(ckpt))) };
    case 'analyze':
      return { kind: 'analyze', report: await analyzeOne(job, job.model, 0, ctx) };
    case 'compare': {
      const a = await analyzeOne(job, job.models[0], 0, ctx);
      const b = await analyzeOne(job, job.models[1], 1, ctx);
      return { kind: 'compare', report: { schema: 'moe-inspector/compare@1', models: [a, b] } };
    }
    case 'overlay':
      return { kind: 'overlay', report: await runOverlayJob(job, ctx) };
  }
}

function tryResolve(ckpt: Checkpoint) {
  try {
    return resolveMoeModel(ckpt);
  } catch (e) {
    return e instanceof Error ? e : new Error(String(e));
  }
}

export async function withCheckpoint<T>(spec: string, access: ModelAccess, ctx: JobContext, fn: (c: Checkpoint) => Promise<T>): Promise<T> {
  const ckpt = await openModel(spec, access, ctx);
  try {
    return await fn(ckpt);
  } finally {
    await ckpt.close();
  }
}

async function analyzeOne(job: Pick<AnalyzeJob, 'layers' | 'sampleExperts' | 'device' | 'thresholds' | 'fullSpectra' | 'allowFullDownload'>, spec: string, modelIndex: number, ctx: JobContext): Promise<AnalysisReport> {
  const started = performance.now();
  const backend = await backendFor(job.device);
  return withCheckpoint(spec, job, ctx, async (ckpt) => {
    const counted = countingCheckpoint(ckpt);
    const timings = emptyTimings();
    const layerSeconds: number[] = [];
    let layerStart = performance.now();
    const model = resolveMoeModel(counted.ckpt);
    const report = await analyzeModel(
      model,
      { source: spec, revision: ckpt.revision, sharedExperts: model.layers.some((l) => l.sharedExpertTensors.length > 0) },
      backend,
      {
        layers: job.layers,
        sampleExperts: job.sampleExperts,
        thresholds: job.thresholds ?? DEFAULT_THRESHOLDS,
        fullSpectra: job.fullSpectra === true,
        signal: ctx.signal,
        onProgress: ctx.onProgress,
        onLayer: (l) => {
          layerSeconds.push((performance.now() - layerStart) / 1000);
          layerStart = performance.now();
          ctx.onPartial(modelIndex, l);
        },
        bytesRead: counted.bytesRead,
        timings,
        // A hub model: each expert's bytes once into the range cache, so pass two transfers nothing more.
        prefetch: transferStatsOf(ckpt) !== null,
      },
    );
    if (ctx.signal.aborted) throw new MoeInspectorError('cancelled', 'analysis cancelled');
    return {
      ...report,
      runtime: {
        execution_provider: backend.executionProvider,
        seconds: (performance.now() - started) / 1000,
        checkpoint_bytes: ckpt.totalBytes,
        checkpoint_bytes_read: counted.bytesRead(),
        layer_seconds: layerSeconds,
        stages: stagesOf(timings),
        // Hub models only: bytes actually transferred this run (0 when the range cache served all).
        ...(transferStatsOf(ckpt) ? { bytes_read: transferStatsOf(ckpt)!.bytesFetched } : {}),
      },
    };
  });
}

function stagesOf(t: MetricsTimings): AnalysisStages {
  const s = (ms: number) => Math.round(ms) / 1000;
  return { reading: s(t.readMs), base_and_norms: s(t.normsMs), cosine: s(t.cosineMs), delta_gram: s(t.gramMs), stage_one: s(t.panelMs + t.updateMs), eigen_worker: s(t.chaseMs + t.qlMs) };
}
