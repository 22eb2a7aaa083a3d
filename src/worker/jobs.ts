/** Maps a typed Job onto engine calls. The only place that wires formats, layouts, numerics and reports together. */
import type { Checkpoint } from '../engine/model/checkpoint';
import { resolveModel } from '../engine/model/resolve-model';
import { resolveMoeModel } from '../engine/layouts';
import { createComputeBackend, type ComputeBackend } from '../engine/numerics/backend';
import { buildInfoReport } from '../engine/report/info';
import type { LayerAnalysis } from '../engine/report/schema';
import type { DeviceChoice, Job, JobResult, ModelAccess, Progress } from '../shared/messages';
import { runOverlayJob } from './overlay-job';
import { denseParentOf, type DenseParent } from '../engine/provenance/dense-parent';
import { runAnalysis } from './analysis-job';
import { runProvenanceJob } from './provenance-job';

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
      return { kind: 'info', report: await withCheckpoint(job.model, job, ctx, async (ckpt) => buildInfoReport(ckpt, job.headersOnly ? tryResolve(ckpt) : resolveMoeModel(ckpt))) };
    case 'analyze': {
      const report = await runAnalysis(job, job.model, 0, ctx);
      // Saved to a file: every layer went out as a partial already (see JobResult.layersSent).
      return job.output ? { kind: 'analyze', report: { ...report, layers: [] }, layersSent: true } : { kind: 'analyze', report };
    }
    case 'compare': {
      // Progress names the model: two models' "layer 0 done" lines would otherwise look alike.
      const a = await runAnalysis(job, job.models[0], 0, naming(ctx, job.models[0]));
      const b = await runAnalysis(job, job.models[1], 1, naming(ctx, job.models[1]));
      return { kind: 'compare', report: { schema: 'moe-inspector/compare@1', models: [a, b] } };
    }
    case 'overlay':
      return { kind: 'overlay', report: await runOverlayJob(job, ctx) };
    case 'provenance':
      return { kind: 'provenance', report: await runProvenanceJob(job, ctx) };
  }
}

/** The context with every progress message prefixed by the model's short name. */
function naming(ctx: JobContext, spec: string): JobContext {
  const trimmed = spec.replace(/[\\/]+$/, '');
  // A long local path is named by its last component; a hub id (org/name) as written.
  const name = trimmed.length <= 40 ? trimmed : trimmed.slice(trimmed.search(/[^\\/]*$/));
  return { ...ctx, onProgress: (p) => ctx.onProgress({ ...p, message: `${name}: ${p.message}`, ...(p.run ? { run: { ...p.run, model: name } } : {}) }) };
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

/** Runs `fn` with the dense parent opened (or without one when `spec` is undefined), closing it after. */
export async function withParent<T>(spec: string | undefined, access: ModelAccess, ctx: JobContext, fn: (p: DenseParent | undefined, revision: string | null) => Promise<T>): Promise<T> {
  if (spec === undefined) return fn(undefined, null);
  return withCheckpoint(spec, access, ctx, (ckpt) => fn(denseParentOf(ckpt), ckpt.revision));
}

