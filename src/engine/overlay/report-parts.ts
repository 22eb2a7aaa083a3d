/** Small pieces shared by the compute, verify and estimate reports. */
import type { Checkpoint } from '../model/checkpoint';
import type { MoeLayerLayout, MoeModel, Projection, WeightEncoding } from '../layouts/types';
import type { OverlayReport } from '../report/schema';
import type { Progress } from '../../shared/messages';
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

export function progressStep(onProgress: ProgressSink | undefined, stage: string, done: number, total: number): (message: string) => void {
  return (message) => onProgress?.({ stage, done, total, message });
}
