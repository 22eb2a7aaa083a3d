/** `moe-inspect provenance`: the neuron-matching pass of every selected layer, without spectra. */
import { resolveMoeModel } from '../engine/layouts';
import { selectLayers } from '../engine/analysis/layer-selection';
import { decideRecipe } from '../engine/analysis/verdict';
import { layerProvenance } from '../engine/provenance/layer-provenance';
import { parentOfLayer } from '../engine/provenance/dense-parent';
import type { ProvenanceReport } from '../engine/report/schema';
import type { ProvenanceJob } from '../shared/messages';
import { backendFor, withCheckpoint, withParent, type JobContext } from './jobs';

export async function runProvenanceJob(job: ProvenanceJob, ctx: JobContext): Promise<ProvenanceReport> {
  const started = performance.now();
  const backend = await backendFor(job.device);
  return withParent(job.parent, job, ctx, (parent, parentRevision) =>
    withCheckpoint(job.model, job, ctx, async (ckpt) => {
      const model = resolveMoeModel(ckpt);
      const layouts = selectLayers(model, job.layers);
      const layers: ProvenanceReport['layers'][number][] = [];
      for (const [i, layout] of layouts.entries()) {
        const prov = await layerProvenance(model, layout, backend, {
          parent: parentOfLayer(parent, model, layout),
          ...(job.sketchDim ? { sketchDim: job.sketchDim } : {}),
          ...(job.pairExperts ? { pairExperts: job.pairExperts } : {}),
          signal: ctx.signal,
          onProgress: (message) => ctx.onProgress({ stage: 'provenance', done: i, total: layouts.length, message }),
        });
        layers.push({ layer: layout.layer, name: layout.name, ...prov, verdict: decideRecipe({ provenance: prov, signalRankRatio: null }) });
      }
      return {
        schema: 'moe-inspector/provenance@1',
        model: { source: job.model, revision: ckpt.revision, family: model.family, num_experts: model.numExperts, moe_layers: model.layers.map((l) => l.layer as number), moe_layer_names: model.layers.map((l) => l.name) },
        parent: job.parent !== undefined ? { source: job.parent, revision: parentRevision } : null,
        layers,
        runtime: { execution_provider: backend.executionProvider, seconds: (performance.now() - started) / 1000 },
      };
    }),
  );
}
