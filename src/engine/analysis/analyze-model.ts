/**
 * Whole-model type detection: for each selected MoE layer and each projection, read ALL experts
 * exactly (biases never folded in), compute the metrics, decide a verdict, and stream the layer out.
 * Memory does not grow with the expert count: each projection is two passes over the checkpoint
 * (streamingProjectionMetrics), and a finished layer is handed to onLayer before the next starts.
 */
import { MoeInspectorError } from '../errors';
import { projectionsOf, type MoeLayerLayout, type MoeModel, type Projection } from '../layouts/types';
import type { ComputeBackend } from '../numerics/backend';
import { collectGarbage } from '../numerics/collect-garbage';
import { streamingProjectionMetrics, type ExpertStream, type MetricsTimings, type ProjectionMetrics } from '../numerics/projection-metrics';
import type { AnalysisReport, LayerAnalysis, ProjectionAnalysis, VerdictThresholds } from '../report/schema';
import type { LayerSelection, Progress } from '../../shared/messages';
import { decideVerdict, meanCosineOf, modelVerdict } from './verdict';
import { sampledExperts, selectLayers } from './layer-selection';
import { downsampleSpectrum } from './spectrum-sampling';
import { PassWeights, RunTracker, runLayerOf } from './run-tracker';
import { withProvenance, withRecipe } from './with-provenance';
import type { LayerProvenance } from '../report/schema';

export interface AnalyzeOptions {
  readonly layers: LayerSelection;
  readonly sampleExperts: number | null;
  readonly thresholds: VerdictThresholds;
  /** Keep every singular value in the report (default: downsampled above 512 values). */
  readonly fullSpectra?: boolean;
  readonly signal?: AbortSignal;
  readonly onProgress?: (p: Progress) => void;
  /** Called as each layer is done; the next layer starts when it settles (a caller may save the layer first). */
  readonly onLayer?: (layer: LayerAnalysis) => void | Promise<void>;
  /** Bytes of the checkpoint read so far (countingCheckpoint), for progress. */
  readonly bytesRead?: () => number;
  /** Layers of the run an earlier session finished (--resume): progress counts them as done. */
  readonly layersDoneBefore?: number;
  /** Read each expert's bytes once before pass one (hub models: both passes then read the range cache). */
  readonly prefetch?: boolean;
  /** Float32 bytes pass one may hold for one block of every expert (default 32 MiB). */
  readonly blockBytes?: number;
  /** Accumulates where the metrics' time goes (the bench). */
  readonly timings?: MetricsTimings;
  /** The provenance pass of a layer (src/engine/provenance), run after its spectra; absent: the rank + cosine rule alone. */
  readonly provenance?: (layout: MoeLayerLayout) => Promise<LayerProvenance>;
}

export interface ModelSource {
  readonly source: string;
  readonly revision: string | null;
  readonly sharedExperts: boolean;
  /** The checkpoint's fingerprint (model/fingerprint.ts), recorded so runs can be resumed and merged. */
  readonly fingerprint?: string;
}

export async function analyzeModel(
  model: MoeModel,
  src: ModelSource,
  backend: ComputeBackend,
  opts: AnalyzeOptions,
): Promise<Omit<AnalysisReport, 'runtime'>> {
  const layers = selectLayers(model, opts.layers);
  // Experts without a gate (nemotron_h, switch_transformers, nllb_moe) have two projections, not three.
  const total = layers.reduce((a, l) => a + projectionsOf(l.projections).length, 0);
  let step = 0;
  const tracker = new RunTracker(layers.length, opts.bytesRead, undefined, opts.layersDoneBefore ?? 0);
  const weights = new PassWeights();
  const results: LayerAnalysis[] = [];
  for (const layout of layers) {
    const projections: Partial<Record<Projection, ProjectionAnalysis>> = {};
    const projs = projectionsOf(layout.projections);
    for (const [pi, proj] of projs.entries()) {
      const label = `layer ${layout.name} ${proj}`;
      // Per layer: layer groups may differ in expert count (ernie4_5_vl_moe text vs vision).
      const analyze = sampledExperts(layout.numExperts, opts.sampleExperts);
      const count = analyze.length;
      // Share of this layer done: whole projections, plus pass one's rows and pass two's experts weighted by measured time.
      const report = (stage: string, what: string, pass1: number, pass2: number, done: number, message: string, of = count) => {
        const w = weights.pass1Share();
        const run = tracker.position(runLayerOf(layout), `${proj}: ${what}`, done, of, (pi + w * pass1 + (1 - w) * pass2) / projs.length);
        opts.onProgress?.({ stage, done: step, total, message, run });
      };
      const t0 = performance.now();
      let t1 = t0;
      const metrics = await streamingProjectionMetrics(backend, expertStream(model, layout, proj), {
        analyze,
        label,
        signal: opts.signal,
        prefetch: opts.prefetch === true,
        ...(opts.blockBytes ? { blockBytes: opts.blockBytes } : {}),
        ...(opts.timings ? { timings: opts.timings } : {}),
        onPrefetch: (d, t) => report('prefetch', 'reading experts into the range cache', 0, 0, d, `${label}: fetched expert ${d}/${t}`, t),
        onBlocks: (d, t) => {
          report('base', 'base and cosines', d / t, 0, 0, `${label}: base, norms and cosines, rows ${d}/${t} of all ${layout.numExperts} experts`);
          if (d === t) t1 = performance.now();
        },
        onProgress: (d, t) => report('spectra', 'spectra', 1, d / t, d, `${label}: spectrum ${d}/${t}`),
      });
      weights.record(t1 - t0, performance.now() - t1);
      projections[proj] = toProjectionAnalysis(metrics, opts.fullSpectra === true);
      step++;
    }
    if (opts.provenance) {
      // The spectra's sessions keep the arenas they grew (~360 MiB at 2048 x 7168) into the
      // provenance pass, whose own peak then adds on top: released here, rebuilt when needed.
      await backend.trim();
      collectGarbage();
    }
    const layer = withProvenance(layerAnalysis(layout, projections, opts.thresholds), await opts.provenance?.(layout));
    results.push(layer);
    await opts.onLayer?.(layer);
    tracker.layerDone();
    opts.onProgress?.({ stage: 'layer-done', done: step, total, message: `layer ${layout.name} done`, run: tracker.position(null, '', 0, 0, 0) });
  }
  return {
    schema: 'moe-inspector/analysis@1',
    model: analysisModelHeader(model, src),
    options: { sample_experts: opts.sampleExperts, thresholds: opts.thresholds },
    verdict: withRecipe(modelVerdict(results.map((l) => l.verdict)), results),
    layers: results,
  };
}

/** The report's `model` block: what was analysed. */
export function analysisModelHeader(model: MoeModel, src: ModelSource): AnalysisReport['model'] {
  return {
    source: src.source,
    revision: src.revision,
    family: model.family,
    num_experts: model.numExperts,
    moe_layers: model.layers.map((l) => l.layer as number),
    moe_layer_names: model.layers.map((l) => l.name),
    shared_experts: src.sharedExperts,
    ...(src.fingerprint !== undefined ? { fingerprint: src.fingerprint } : {}),
  };
}

/** One projection of one layer as the two passes read it: row blocks, then whole experts. */
function expertStream(model: MoeModel, layout: MoeLayerLayout, proj: Projection): ExpertStream {
  const [rows, cols] = layout.projections[proj]!.shape;
  return {
    numExperts: layout.numExperts,
    rows,
    cols,
    blocks: model.rowBlocks(layout.name, proj),
    readExpert: async (j) => (await model.readExpert(layout.name, proj, j)).data,
  };
}

function layerAnalysis(
  layout: MoeLayerLayout,
  projections: Partial<Record<Projection, ProjectionAnalysis>>,
  thresholds: VerdictThresholds,
): LayerAnalysis {
  // The rank test reads the gate; experts without a gate are judged on up (the verdict says so).
  const rankProjection = projections.gate ? 'gate' : 'up';
  const primary = projections[rankProjection];
  if (!primary) throw new MoeInspectorError('layout', `layer ${layout.name}: no gate or up projection to judge`);
  const verdict = decideVerdict(
    {
      gateRankRatio: primary.rank_ratio,
      rankProjection,
      meanCosine: meanCosineOf(Object.fromEntries(Object.entries(projections).map(([k, v]) => [k, v.cosine.mean]))),
    },
    thresholds,
  );
  return {
    layer: layout.layer,
    group: layout.group,
    name: layout.name,
    verdict,
    projections,
    estimated_overlay_ratio: verdict.type === 'upcycled' ? overlayRatio(layout.numExperts, projections) : null,
  };
}

/**
 * Storage ratio of the overlay at each projection's mean 95% rank, base included:
 * sum E*m*n / sum (m*n + E*r95*(m+n)). (The seeds' tool left the base out.)
 */
export function overlayRatio(numExperts: number, projections: Partial<Record<Projection, ProjectionAnalysis>>): number {
  let original = 0;
  let overlay = 0;
  for (const p of Object.values(projections)) {
    const [m, n] = p.shape;
    const r = Math.ceil(p.effective_rank_summary['0.95'].mean);
    original += numExperts * m * n;
    overlay += m * n + numExperts * r * (m + n);
  }
  return overlay === 0 ? 0 : original / overlay;
}

const THRESHOLDS = ['0.9', '0.95', '0.99'] as const;

export function toProjectionAnalysis(m: ProjectionMetrics, fullSpectra: boolean): ProjectionAnalysis {
  const summary = Object.fromEntries(
    THRESHOLDS.map((t) => {
      const ranks = m.effectiveRank[t];
      return [t, { mean: ranks.reduce((a, b) => a + b, 0) / ranks.length, min: Math.min(...ranks), max: Math.max(...ranks) }];
    }),
  ) as ProjectionAnalysis['effective_rank_summary'];
  const spectra = downsampleSpectrum(m.singularValues, fullSpectra ? Infinity : 512, 256);
  return {
    shape: m.shape,
    max_rank: m.maxRank,
    experts_analyzed: m.expertsAnalyzed,
    effective_rank: m.effectiveRank,
    effective_rank_summary: summary,
    rank_ratio: summary['0.95'].mean / m.maxRank,
    cosine: m.cosine,
    expert_norms: m.expertNorms,
    delta_norms: m.deltaNorms,
    singular_values: spectra.values,
    singular_values_sampling: spectra.sampling,
    ...(spectra.index ? { singular_value_index: spectra.index } : {}),
    singular_value_floor: m.singularValueFloor,
  };
}
