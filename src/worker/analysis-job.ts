/**
 * One model's analysis as a run: plan the layers (selection, then shard), continue from the report
 * file when resuming, save the report after every layer (so an interruption loses at most the layer in
 * flight), and end with the report of every planned layer and the model verdict over all of them.
 */
import { MoeInspectorError } from '../engine/errors';
import type { Checkpoint } from '../engine/model/checkpoint';
import { countingCheckpoint } from '../engine/model/counting-checkpoint';
import { emptyTimings, type MetricsTimings } from '../engine/numerics/projection-metrics';
import { checkpointFingerprint } from '../engine/model/fingerprint';
import { transferStatsOf } from '../engine/model/resolve-model';
import { resolveMoeModel } from '../engine/layouts';
import { firstWeightTensor, type MoeModel } from '../engine/layouts/types';
import { analysisModelHeader, analyzeModel } from '../engine/analysis/analyze-model';
import { selectionRecord, selectLayers, shardOf } from '../engine/analysis/layer-selection';
import { asAnalysisReport, assembleAnalysis, describeStatus, layersToDo, type AnalysisHeader } from '../engine/report/analysis-run';
import { layerIdOf, layerKey } from '../engine/report/layer-id';
import { DEFAULT_THRESHOLDS, type AnalysisReport, type AnalysisStages, type LayerAnalysis, type RunState } from '../engine/report/schema';
import { PROGRAM } from '../engine/version';
import type { AnalyzeJob } from '../shared/messages';
import { layerProvenance } from '../engine/provenance/layer-provenance';
import { parentOfLayer, type DenseParent } from '../engine/provenance/dense-parent';
import type { ComputeBackend } from '../engine/numerics/backend';
import type { MoeLayerLayout } from '../engine/layouts/types';
import { backendFor, withCheckpoint, withParent, type JobContext } from './jobs';
import { priorRun, providersOf, saveRun } from './run-file';

export type AnalysisRequest = Pick<AnalyzeJob, 'layers' | 'sampleExperts' | 'device' | 'thresholds' | 'fullSpectra' | 'allowFullDownload' | 'shard' | 'output' | 'parent' | 'provenance' | 'sketchDim' | 'pairExperts'>;

export async function runAnalysis(job: AnalysisRequest, spec: string, modelIndex: number, ctx: JobContext): Promise<AnalysisReport> {
  const started = performance.now();
  const backend = await backendFor(job.device);
  return withParent(job.parent, job, ctx, (parent) => withCheckpoint(spec, job, ctx, async (opened) => {
    // Every byte the run reads, both passes counted, for progress and runtime.checkpoint_bytes_read.
    const counted = countingCheckpoint(opened);
    const ckpt = counted.ckpt;
    const timings = emptyTimings();
    const model = resolveMoeModel(ckpt);
    const planned = shardOf(selectLayers(model, job.layers), job.shard).map(layerIdOf);
    const header = await headerOf(job, spec, ckpt, model);
    const prior = job.output ? await priorRun(job.output, header, asAnalysisReport) : null;
    const done: LayerAnalysis[] = prior ? [...prior.layers] : [];
    for (const l of done) ctx.onPartial(modelIndex, l);
    if (prior) ctx.onProgress({ stage: 'resume', done: done.length, total: planned.length, message: `resuming ${job.output!.path}: ${describeStatus(prior.status!)}` });
    const transferredBefore = prior?.runtime.bytes_read ?? 0;
    const readBefore = prior?.runtime.checkpoint_bytes_read ?? 0;
    // Per layer in the order computed, over all sessions of a resumed run.
    const layerSeconds: number[] = [...(prior?.runtime.layer_seconds ?? [])];
    let layerStart = performance.now();
    const report = (state: RunState): AnalysisReport =>
      assembleAnalysis(header, done, planned, state, {
        execution_provider: backend.executionProvider,
        // Over all sessions of a resumed run.
        seconds: (prior?.runtime.seconds ?? 0) + (performance.now() - started) / 1000,
        checkpoint_bytes: ckpt.totalBytes,
        checkpoint_bytes_read: readBefore + counted.bytesRead(),
        layer_seconds: [...layerSeconds],
        stages: stagesOf(timings, prior?.runtime.stages),
        // Hub models only: bytes actually transferred (0 when the range cache served all).
        ...(transferStatsOf(opened) ? { bytes_read: transferredBefore + transferStatsOf(opened)!.bytesFetched } : {}),
        execution_providers: providersOf(prior && prior.layers.length > 0 ? prior.runtime : undefined, backend.executionProvider),
      });
    await saveRun(job.output, report('running'));
    try {
      await analyzeModel(model, { source: spec, revision: ckpt.revision, sharedExperts: header.model.shared_experts, fingerprint: header.model.fingerprint! }, backend, {
        // By name ("5", "encoder.1"): exactly these layers, where a bare index would pick it in every group.
        layers: { kind: 'list', layers: [], names: layersToDo(planned, done).map(layerKey) },
        sampleExperts: job.sampleExperts,
        thresholds: header.options.thresholds,
        fullSpectra: job.fullSpectra === true,
        signal: ctx.signal,
        onProgress: ctx.onProgress,
        bytesRead: counted.bytesRead,
        layersDoneBefore: done.length,
        timings,
        // A hub model: each expert's bytes once into the range cache, so pass two transfers nothing more.
        prefetch: transferStatsOf(opened) !== null,
        ...(job.provenance !== false ? { provenance: provenancePass(job, model, backend, parent, ctx) } : {}),
        onLayer: async (l) => {
          layerSeconds.push((performance.now() - layerStart) / 1000);
          done.push(l);
          ctx.onPartial(modelIndex, l);
          await saveRun(job.output, report('running'));
          layerStart = performance.now();
        },
      });
      if (ctx.signal.aborted) throw new MoeInspectorError('cancelled', 'analysis cancelled');
    } catch (e) {
      // The finished layers are on disk already; say the run stopped (best effort: a kill skips this).
      await saveRun(job.output, report('interrupted')).catch(() => undefined);
      throw e;
    }
    const final = report('complete');
    await saveRun(job.output, final);
    return final;
  }));
}

/** Seconds by stage (schema AnalysisStages), added to a resumed run's earlier sessions. */
function stagesOf(t: MetricsTimings, before?: AnalysisStages): AnalysisStages {
  const s = (ms: number, prev = 0) => Math.round(prev * 1000 + ms) / 1000;
  return {
    reading: s(t.readMs, before?.reading),
    base_and_norms: s(t.normsMs, before?.base_and_norms),
    cosine: s(t.cosineMs, before?.cosine),
    delta_gram: s(t.gramMs, before?.delta_gram),
    stage_one: s(t.panelMs + t.updateMs, before?.stage_one),
    eigen_worker: s(t.chaseMs + t.qlMs, before?.eigen_worker),
  };
}

/** The neuron-matching pass of one layer (src/engine/provenance), against the dense parent where given. */
function provenancePass(job: AnalysisRequest, model: MoeModel, backend: ComputeBackend, parent: DenseParent | undefined, ctx: JobContext) {
  return (layout: MoeLayerLayout) =>
    layerProvenance(model, layout, backend, {
      parent: parentOfLayer(parent, model, layout),
      ...(job.sketchDim ? { sketchDim: job.sketchDim } : {}),
      ...(job.pairExperts ? { pairExperts: job.pairExperts } : {}),
      signal: ctx.signal,
      onProgress: (message) => ctx.onProgress({ stage: 'provenance', done: 0, total: 1, message }),
    });
}

async function headerOf(job: AnalysisRequest, spec: string, ckpt: Checkpoint, model: MoeModel): Promise<AnalysisHeader> {
  const first = model.layers[0]!;
  const fingerprint = await checkpointFingerprint(ckpt, firstWeightTensor(first));
  const sharedExperts = model.layers.some((l) => l.sharedExpertTensors.length > 0);
  return {
    schema: 'moe-inspector/analysis@1',
    program: PROGRAM,
    model: analysisModelHeader(model, { source: spec, revision: ckpt.revision, sharedExperts, fingerprint }),
    options: {
      sample_experts: job.sampleExperts,
      thresholds: job.thresholds ?? DEFAULT_THRESHOLDS,
      full_spectra: job.fullSpectra === true,
      layers: selectionRecord(job.layers),
      shard: job.shard ?? null,
      // Part of the run's identity: a resume or merge refuses a report made with another parent or pass.
      parent: job.parent ?? null,
      provenance: job.provenance !== false,
      ...(job.provenance !== false && job.sketchDim ? { sketch_dim: job.sketchDim } : {}),
      ...(job.provenance !== false && job.pairExperts ? { pair_experts: job.pairExperts } : {}),
    },
  };
}
