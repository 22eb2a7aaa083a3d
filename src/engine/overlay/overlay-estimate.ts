/**
 * overlay estimate: whole-model bytes, stored vs overlay, from the tensors' real byte lengths. Every
 * MoE layer gets ranks from its own spectra (the energy rule) unless `fast`, which measures the first
 * MoE layer only and reuses its ranks (the bytes of every layer are still counted exactly).
 * Everything that is not a routed expert weight (attention, router, embeddings, norms, biases,
 * shared experts, dense MLPs) is kept as stored and shown separately.
 */
import type { Checkpoint } from '../model/checkpoint';
import { PROJECTIONS, type MoeModel, type Projection } from '../layouts/types';
import type { OverlayProjectionReport, OverlayReport } from '../report/schema';
import { checkpointBytes } from './byte-accounting';
import { energyRanks, type SpectralErrors } from './compute-layer';
import type { DeltaSolver } from './delta-solver';
import { meanExpert } from './expert-stats';
import { checkFixedRank, ranksForTargetRatio, type ProjectionRanks } from './rank-rules';
import { notCompressibleNote } from './overlay-compute';
import { encodingName, layerBytes, modelHeader, overlaySteps, progressStep, ratioOf, type ProgressSink } from './report-parts';
import { RunTracker } from '../analysis/run-tracker';
import { OVERLAY_DTYPE_BYTES, type OverlayDtype, type RankRule } from './types';
import { layerIdOf, layerKey } from '../report/layer-id';
import { gatedProjections } from './gated';

export interface EstimateOptions {
  readonly rule: RankRule;
  readonly overlayDtype: OverlayDtype;
  readonly fast?: boolean;
  readonly signal?: AbortSignal;
  readonly onProgress?: ProgressSink;
  /** Bytes of the checkpoint read so far (countingCheckpoint), for progress. */
  readonly bytesRead?: () => number;
  /** Layers an earlier run of the same estimate finished (--resume): kept as they are, not measured again. */
  readonly previous?: readonly EstimateLayer[];
  /** The report so far, after each measured layer; the next layer starts when it settles (a caller may save it first). */
  readonly onLayer?: (partial: OverlayReport) => void | Promise<void>;
}

export type EstimateLayer = OverlayReport['layers'][number];

/** The report's `options`: what must match for a run to be resumed. */
export function estimateOptionsRecord(opts: Pick<EstimateOptions, 'rule' | 'overlayDtype' | 'fast'>): NonNullable<OverlayReport['options']> {
  return { rank_rule: opts.rule, overlay_dtype: opts.overlayDtype, fast: opts.fast === true };
}

export async function overlayEstimate(ckpt: Checkpoint, model: MoeModel, solver: DeltaSolver, opts: EstimateOptions): Promise<OverlayReport> {
  const bytes = checkpointBytes(ckpt, model);
  const previous = new Map((opts.previous ?? []).map((l) => [layerKey(layerIdOf(l)), l]));
  const layers: EstimateLayer[] = [];
  let fastRanks: ProjectionRanks | null = null;
  // Layers resumed from an earlier session count as done, but not in this session's rate.
  const resumed = model.layers.filter((l) => previous.has(layerKey(layerIdOf(l)))).length;
  const tracker = new RunTracker(model.layers.length - resumed, opts.bytesRead, undefined, resumed);
  for (const [i, layout] of model.layers.entries()) {
    const kept = previous.get(layerKey(layerIdOf(layout)));
    if (kept) {
      layers.push(kept);
      fastRanks ??= kept.ranks ?? null;
      continue;
    }
    const measured = opts.rule.kind === 'energy' && !(opts.fast && i > 0);
    const step = progressStep(opts.onProgress, 'estimate', i, model.layers.length, { tracker, layer: layout.layer, steps: measured ? overlaySteps(opts.rule, 0) : 0 });
    const original = layerBytes(ckpt, layout, { gate: 0, up: 0, down: 0 }, opts.overlayDtype).original;
    let ranks: ProjectionRanks;
    let errors: Readonly<Record<Projection, SpectralErrors>> | null = null;
    const rule = opts.rule;
    if (rule.kind === 'fixed') {
      ranks = Object.fromEntries(PROJECTIONS.map((p) => [p, checkFixedRank(rule[p], ...gatedProjections(layout)[p].shape, p)])) as ProjectionRanks;
    } else if (rule.kind === 'target-ratio') {
      const geometry = Object.fromEntries(PROJECTIONS.map((p) => [p, { rows: gatedProjections(layout)[p].shape[0], cols: gatedProjections(layout)[p].shape[1], numExperts: layout.numExperts, originalBytes: original[p] }]));
      ranks = ranksForTargetRatio(geometry as Parameters<typeof ranksForTargetRatio>[0], rule.ratio, OVERLAY_DTYPE_BYTES[opts.overlayDtype]);
    } else if (opts.fast && fastRanks) {
      ranks = fastRanks;
    } else {
      const bases = {} as Record<Projection, Awaited<ReturnType<typeof meanExpert>>>;
      for (const p of PROJECTIONS) bases[p] = await meanExpert(model, layout.layer, p, opts.signal, (j) => step(`layer ${layout.layer}: mean ${p} expert, reading expert ${j + 1}/${model.numExperts}`, { step: `${p}: base`, expert: j, experts: model.numExperts }));
      const er = await energyRanks(model, layout.layer, solver, bases, rule.energy, { ...(opts.signal ? { signal: opts.signal } : {}), onStep: step });
      ranks = fastRanks = er.ranks;
      errors = er.errors;
    }
    const b = layerBytes(ckpt, layout, ranks, opts.overlayDtype);
    const projections = {} as Record<Projection, OverlayProjectionReport>;
    for (const p of PROJECTIONS) {
      projections[p] = {
        rank: ranks[p],
        original_bytes: b.original[p],
        overlay_bytes: b.overlay[p],
        relative_error: errors?.[p].relativeError ?? [],
        energy_kept: errors?.[p].energyKept ?? [],
        output_error: null,
        shape: gatedProjections(layout)[p].shape as [number, number],
        encoding: encodingName(gatedProjections(layout)[p].encoding),
        error_source: 'spectrum',
      };
    }
    tracker.layerDone();
    layers.push({ layer: layout.layer, projections, ranks, original_bytes: b.originalTotal, overlay_bytes: b.overlayTotal, ratio: ratioOf(b.originalTotal, b.overlayTotal) });
    await opts.onLayer?.(estimateReport(ckpt, model, bytes, layers, opts));
  }
  return estimateReport(ckpt, model, bytes, layers, opts);
}

/** The estimate over the layers measured so far; layers not yet measured count at their stored size (the note says so). */
function estimateReport(ckpt: Checkpoint, model: MoeModel, bytes: ReturnType<typeof checkpointBytes>, layers: readonly EstimateLayer[], opts: EstimateOptions): OverlayReport {
  const expertOriginal = layers.reduce((a, l) => a + l.original_bytes!, 0);
  const expertOverlay = layers.reduce((a, l) => a + l.overlay_bytes!, 0);
  const kept = bytes.tensorBytes - expertOriginal;
  const total = { original: bytes.tensorBytes, overlay: kept + expertOverlay };
  const compressible = expertOverlay < expertOriginal;
  const notes = [
    ...(compressible ? [] : [notCompressibleNote(expertOriginal, expertOverlay)]),
    ...(opts.fast && opts.rule.kind === 'energy' && model.layers.length > 1 ? [`--fast: ranks measured on layer ${model.layers[0]!.layer} only and reused for all ${model.layers.length} MoE layers`] : []),
    ...(layers.length < model.layers.length ? [`partial: ${layers.length} of ${model.layers.length} MoE layers measured so far; the others are counted at their stored size`] : []),
  ];
  return {
    schema: 'moe-inspector/overlay@1',
    model: modelHeader(ckpt, model),
    mode: 'estimate',
    layers: [...layers],
    totals: { original_bytes: total.original, overlay_bytes: total.overlay, ratio: ratioOf(total.original, total.overlay), scope: 'whole-model' },
    options: estimateOptionsRecord(opts),
    non_expert_bytes: bytes.nonExpert,
    expert_bytes: { original: expertOriginal, overlay: expertOverlay },
    compressible,
    ...(notes.length ? { note: notes.join('; ') } : {}),
  };
}
