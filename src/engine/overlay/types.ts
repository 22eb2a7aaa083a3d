/** The overlay's own vocabulary. */
import type { ExpertMatrix, LayerIndex, Projection } from '../layouts/types';
import type { DeltaFactors } from './delta-solver';
import type { ProjectionRanks } from './rank-rules';

/** How ranks are chosen (see rank-rules.ts for each rule's exact definition). */
export type RankRule =
  | { readonly kind: 'fixed'; readonly gate: number; readonly up: number; readonly down: number }
  | { readonly kind: 'energy'; readonly energy: number }
  | { readonly kind: 'target-ratio'; readonly ratio: number };

export const DEFAULT_RANK_RULE: RankRule = { kind: 'energy', energy: 0.95 };

export const OVERLAY_DTYPES = ['F32', 'F16', 'BF16'] as const;
export type OverlayDtype = (typeof OVERLAY_DTYPES)[number];
export const OVERLAY_DTYPE_BYTES: Readonly<Record<OverlayDtype, number>> = { F32: 4, F16: 2, BF16: 2 };
export const DEFAULT_OVERLAY_DTYPE: OverlayDtype = 'BF16';

/**
 * One layer's overlay as a stream: the bases and ranks at hand, each expert's factors on demand
 * (solved from the checkpoint, or read from a saved overlay, when asked), so no more than one
 * expert's factors are ever in memory however many experts the layer has.
 */
export interface LayerOverlay {
  readonly layer: LayerIndex;
  readonly ranks: ProjectionRanks;
  readonly numExperts: number;
  readonly bases: Readonly<Record<Projection, ExpertMatrix>>;
  /**
   * Expert j's factors for projection p. `weight`: expert j's decoded weight when the caller has
   * read it already (verify does), so a computed overlay does not read the expert a second time.
   */
  expert(p: Projection, j: number, weight?: ExpertMatrix): Promise<ExpertOverlay>;
}

export interface ExpertOverlay {
  readonly factors: Pick<DeltaFactors, 'us' | 'vt'> & { readonly s?: Float64Array };
  /** ||W_j - base||_F^2 and ||W_j||_F^2, where known (computed overlays; not stored in files). */
  readonly deltaEnergy?: number;
  readonly weightEnergy?: number;
}
