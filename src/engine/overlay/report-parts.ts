/** Small pieces shared by the compute, verify and estimate reports. */
import type { Checkpoint } from '../model/checkpoint';
import type { MoeLayerLayout, MoeModel, Projection, WeightEncoding } from '../layouts/types';
import type { OverlayReport } from '../report/schema';
import type { Progress } from '../../shared/messages';
import type { RunTracker } from '../analysis/run-tracker';
import type { RankRule } from './types';
import { projectionWeightBytes } from './byte-accounting';
import { overlayWeightBytes, type ProjectionRanks } from './rank-rules';
import { OVERLAY_DTYPE_BYTES, type OverlayDtype } from './types';
import { PROJECTIONS } from '../layouts/types';
import { gatedProjections } from './gated';

export type ProgressSink = (p: Progress) => void;

export function encodingName(e: WeightEncoding): string {
  switch (e.kind) {
    case 'plain':
      return `plain:${e.dtype}`;
    case 'mxfp4':
      return 'mxfp4';
    case 'fp8-block':
      return `fp8-block:${e.dtype}:${e.block.join('x')}`;
  }
}

export function modelHeader(ckpt: Checkpoint, model: MoeModel): OverlayReport['model'] {
  return { source: ckpt.source, revision: ckpt.revision, family: model.family };
}

/** Bytes of one layer's routed expert weights: stored vs overlay at the chosen ranks and dtype. */
export function layerBytes(ckpt: Checkpoint, layout: MoeLayerLayout, ranks: ProjectionRanks, dtype: OverlayDtype) {
  const original = projectionWeightBytes(ckpt, layout);
  const overlay = {} as Record<Projection, number>;
  for (const p of PROJECTIONS) {
    const [rows, cols] = gatedProjections(layout)[p].shape;
    overlay[p] = overlayWeightBytes({ rows, cols, numExperts: layout.numExperts }, ranks[p], OVERLAY_DTYPE_BYTES[dtype]);
  }
  const sum = (r: Record<Projection, number>) => r.gate + r.up + r.down;
  return { original, overlay, originalTotal: sum(original), overlayTotal: sum(overlay) };
}

export const ratioOf = (original: number, overlay: number): number => (overlay === 0 ? (original === 0 ? 1 : Infinity) : original / overlay);

/** Where an overlay step stands inside its layer: which step, and the expert just started of how many. */
export interface StepAt {
  readonly step: string;
  readonly expert: number;
  readonly experts: number;
}

export type StepSink = (message: string, at?: StepAt) => void;

/** Where the layer loop of a long overlay run stands, for progress with layers, experts, bytes and an ETA. */
export interface RunContext {
  readonly tracker: RunTracker;
  readonly layer: number;
  /** How many expert-by-expert steps the layer takes (e.g. 3 bases + 3 factor passes); 0: unknown. */
  readonly steps: number;
}

/**
 * A step sink for one layer: plain messages, plus a RunProgress where a run context is given (the
 * layer's share done = (steps finished + expert / experts) / steps, steps counted as their label changes).
 */
export function progressStep(onProgress: ProgressSink | undefined, stage: string, done: number, total: number, run?: RunContext): StepSink {
  let label = '';
  let finished = -1;
  return (message, at) => {
    if (!run || !at) return onProgress?.({ stage, done, total, message });
    if (at.step !== label) {
      label = at.step;
      finished++;
    }
    const share = run.steps > 0 ? Math.min(1, (finished + at.expert / Math.max(1, at.experts)) / run.steps) : 0;
    onProgress?.({ stage, done, total, message, run: run.tracker.position(run.layer, at.step, at.expert, at.experts, share) });
  };
}

/** How many expert-by-expert steps a layer's overlay takes under a rule: bases, spectra (energy rule), then `after`. */
export function overlaySteps(rule: RankRule, after: number): number {
  return PROJECTIONS.length * (rule.kind === 'energy' ? 2 : 1) + after;
}
