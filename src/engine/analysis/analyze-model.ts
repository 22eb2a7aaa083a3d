/**
 * Whole-model type detection: for each selected MoE layer and each projection, read ALL experts
 * exactly (biases never folded in), compute the metrics, decide a verdict, and stream the layer out.
 */
import { MoeInspectorError } from '../errors';
import { projectionsOf, type ExpertMatrix, type MoeLayerLayout, type MoeModel, type Projection } from '../layouts/types';
import type { ComputeBackend } from '../numerics/backend';
import { projectionMetrics, type MetricsTimings, type ProjectionMetrics } from '../numerics/projection-metrics';
import type { AnalysisReport, LayerAnalysis, ProjectionAnalysis, VerdictThresholds } from '../report/schema';
import type { LayerSelection, Progress } from '../../shared/messages';
import { decideVerdict, meanCosineOf, modelVerdict } from './verdict';
import { sampledExperts, selectLayers } from './layer-selection';
import { downsampleSpectrum } from './spectrum-sampling';
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
  const results: LayerAnalysis[] = [];
  for (const layout of layers) {
    const projections: Partial<Record<Projection, ProjectionAnalysis>> = {};
    for (const proj of projectionsOf(layout.projections)) {
      const label = `layer ${layout.name} ${proj}`;
      const experts = await readAllExperts(model, layout, proj, opts, (j) =>
        opts.onProgress?.({ stage: 'reading', done: step, total, message: `${label}: reading expert ${j + 1}/${layout.numExperts}` }),
      );
      // reading is done: from here on the time is the metrics' (base, norms, cosine, then spectra)
      opts.onProgress?.({ stage: 'spectra', done: step, total, message: `${label}: base, norms and cosine of ${experts.length} experts` });
      const metrics = await projectionMetrics(backend, experts, {
        // Per layer: layer groups may differ in expert count (ernie4_5_vl_moe text vs vision).
        analyze: sampledExperts(layout.numExperts, opts.sampleExperts),
        label,
        timings: opts.timings,
        signal: opts.signal,
        onProgress: (d, t) => opts.onProgress?.({ stage: 'spectra', done: step, total, message: `${label}: spectrum ${d}/${t}` }),
      });
      projections[proj] = toProjectionAnalysis(metrics, opts.fullSpectra === true);
      step++;
    }
    const layer = withProvenance(layerAnalysis(layout, projections, opts.thresholds), await opts.provenance?.(layout));
    results.push(layer);
    await opts.onLayer?.(layer);
    opts.onProgress?.({ stage: 'layer-done', done: step, total, message: `layer ${layout.name} done` });
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

async function readAllExperts(
  model: MoeModel,
  layout: MoeLayerLayout,
  proj: Projection,
  opts: AnalyzeOptions,
  onExpert: (j: number) => void,
): Promise<ExpertMatrix[]> {
  const experts: ExpertMatrix[] = [];
  for (let j = 0; j < layout.numExperts; j++) {
    if (opts.signal?.aborted) throw new MoeInspectorError('cancelled', 'analysis cancelled');
    onExpert(j);
    experts.push(await model.readExpert(layout.name, proj, j));
  }
  return experts;
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
