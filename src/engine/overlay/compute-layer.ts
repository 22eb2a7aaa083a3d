/**
 * One layer's overlay from the checkpoint: base = mean expert, ranks by the chosen rule over ALL
 * experts, then each delta's top-r factors. Weight errors here come from the spectrum (the tail the
 * truncation drops); verify measures them again by actual reconstruction.
 * Two passes, as in the analysis: the bases (one expert in memory at a time; the energy rule then
 * reads every expert again for its spectrum), then each expert read again when its factors are
 * asked for (LayerOverlay.expert): memory does not grow with the expert count.
 */
import { PROJECTIONS, type LayerIndex, type MoeModel, type Projection } from '../layouts/types';
import type { DeltaSolver } from './delta-solver';
import { deltaOf, meanExpert, squaredNorm, subtractInPlace } from './expert-stats';
import type { StepSink } from './report-parts';
import { checkFixedRank, energyKept, energyRankAllExperts, ranksForTargetRatio, type ProjectionRanks } from './rank-rules';
import { OVERLAY_DTYPE_BYTES, type LayerOverlay, type OverlayDtype, type RankRule } from './types';

export interface ComputeLayerOptions {
  readonly rule: RankRule;
  readonly overlayDtype: OverlayDtype;
  /** Stored bytes of each projection's expert weights in this layer (for the target-ratio rule). */
  readonly originalBytes: Readonly<Record<Projection, number>>;
  readonly signal?: AbortSignal;
  readonly onStep?: StepSink;
}

export async function computeLayerOverlay(model: MoeModel, layer: LayerIndex, solver: DeltaSolver, opts: ComputeLayerOptions): Promise<LayerOverlay> {
  const bases = {} as Record<Projection, Awaited<ReturnType<typeof meanExpert>>>;
  for (const p of PROJECTIONS) {
    bases[p] = await meanExpert(model, layer, p, opts.signal, (j) => opts.onStep?.(`layer ${layer}: mean ${p} expert, reading expert ${j + 1}/${model.numExperts}`, { step: `${p}: base`, expert: j, experts: model.numExperts }));
  }
  const ranks = await chooseRanks(model, layer, solver, bases, opts);
  return {
    layer,
    ranks,
    numExperts: model.numExperts,
    bases,
    async expert(p, j, weight) {
      opts.signal?.throwIfAborted();
      opts.onStep?.(`layer ${layer}: ${p} expert ${j} rank-${ranks[p]} factors`, { step: `${p}: factors`, expert: j, experts: model.numExperts });
      // A weight passed in is the caller's (verify compares against it); one read here is ours to overwrite.
      const w = weight ?? (await model.readExpert(layer, p, j));
      const weightEnergy = squaredNorm(w.data);
      const delta = weight ? deltaOf(w, bases[p]) : subtractInPlace(w, bases[p]);
      return { factors: await solver.factors(delta, ranks[p]), deltaEnergy: squaredNorm(delta.data), weightEnergy };
    },
  };
}

async function chooseRanks(
  model: MoeModel,
  layer: LayerIndex,
  solver: DeltaSolver,
  bases: Record<Projection, { rows: number; cols: number; data: Float32Array }>,
  opts: ComputeLayerOptions,
): Promise<ProjectionRanks> {
  const rule = opts.rule;
  switch (rule.kind) {
    case 'fixed':
      return Object.fromEntries(PROJECTIONS.map((p) => [p, checkFixedRank(rule[p], bases[p].rows, bases[p].cols, p)])) as ProjectionRanks;
    case 'target-ratio': {
      const geometry = Object.fromEntries(
        PROJECTIONS.map((p) => [p, { rows: bases[p].rows, cols: bases[p].cols, numExperts: model.numExperts, originalBytes: opts.originalBytes[p] }]),
      ) as Parameters<typeof ranksForTargetRatio>[0];
      return ranksForTargetRatio(geometry, rule.ratio, OVERLAY_DTYPE_BYTES[opts.overlayDtype]);
    }
    case 'energy':
      return (await energyRanks(model, layer, solver, bases, rule.energy, opts)).ranks;
  }
}

/** Per expert at the chosen rank, from the spectrum: share of delta energy kept and ||W - W_r|| / ||W||. */
export interface SpectralErrors {
  readonly energyKept: number[];
  readonly relativeError: number[];
}

export interface EnergyRanks {
  readonly ranks: ProjectionRanks;
  readonly errors: Readonly<Record<Projection, SpectralErrors>>;
}

/** Ranks from this layer's own spectra: every expert of every projection. */
export async function energyRanks(
  model: MoeModel,
  layer: LayerIndex,
  solver: DeltaSolver,
  bases: Record<Projection, { rows: number; cols: number; data: Float32Array }>,
  energy: number,
  opts: Pick<ComputeLayerOptions, 'signal' | 'onStep'>,
): Promise<EnergyRanks> {
  const ranks = {} as Record<Projection, number>;
  const errors = {} as Record<Projection, SpectralErrors>;
  for (const p of PROJECTIONS) {
    const spectra: Float64Array[] = [];
    const totals: number[] = [];
    const weights: number[] = [];
    for (let j = 0; j < model.numExperts; j++) {
      opts.signal?.throwIfAborted();
      opts.onStep?.(`layer ${layer}: ${p} expert ${j} spectrum`, { step: `${p}: spectra`, expert: j, experts: model.numExperts });
      const w = await model.readExpert(layer, p, j);
      weights.push(squaredNorm(w.data));
      const delta = subtractInPlace(w, bases[p]);
      totals.push(squaredNorm(delta.data));
      spectra.push(await solver.spectrum(delta));
    }
    const r = energyRankAllExperts(spectra, totals, energy);
    ranks[p] = r;
    errors[p] = {
      energyKept: spectra.map((s, j) => energyKept(s, totals[j]!, r)),
      relativeError: spectra.map((s, j) => spectralRelativeError(s.subarray(0, r), totals[j]!, weights[j]!)),
    };
  }
  return { ranks, errors };
}

/** ||W - (base + delta_r)|| / ||W|| = sqrt(||delta||^2 - sum_{i<r} s_i^2) / ||W|| (Eckart-Young), clipped at 0. */
export function spectralRelativeError(leading: ArrayLike<number>, deltaEnergy: number, weightEnergy: number): number {
  let kept = 0;
  for (let i = 0; i < leading.length; i++) kept += leading[i]! ** 2;
  return weightEnergy === 0 ? 0 : Math.sqrt(Math.max(0, deltaEnergy - kept) / weightEnergy);
}

/**
 * The overlay with each expert's spectral errors (two numbers) kept as its factors stream past:
 * what the compute report shows, without keeping any factors.
 */
export function recordingErrors(overlay: LayerOverlay): { readonly overlay: LayerOverlay; readonly errors: Readonly<Record<Projection, SpectralErrors>> } {
  const none = (): { energyKept: number[]; relativeError: number[] } => ({ energyKept: [], relativeError: [] });
  const errors = { gate: none(), up: none(), down: none() };
  return {
    errors,
    overlay: {
      ...overlay,
      async expert(p, j, weight) {
        const e = await overlay.expert(p, j, weight);
        const s = e.factors.s ?? [];
        errors[p].energyKept[j] = energyKept(s, e.deltaEnergy ?? 0, overlay.ranks[p]);
        errors[p].relativeError[j] = spectralRelativeError(s, e.deltaEnergy ?? 0, e.weightEnergy ?? 0);
        return e;
      },
    },
  };
}
