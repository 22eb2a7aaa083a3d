/** The overlay module's public surface. */
import type { ComputeBackend } from '../numerics/backend';
import { PROJECTIONS, type LayerIndex, type MoeModel } from '../layouts/types';
import { computeLayerOverlay } from './compute-layer';
import type { DeltaSolver } from './delta-solver';
import { numericsSolver } from './numerics-solver';
import type { ProjectionRanks } from './rank-rules';
import { seededInputs } from './verify-inputs';
import { verifyLayerOverlay, type LayerVerification } from './verify-layer';

export { overlayCompute, type ComputeOptions } from './overlay-compute';
export { overlayVerify, DEFAULT_MAX_ERROR, type VerifyOptions } from './overlay-verify';
export { overlayEstimate, type EstimateOptions } from './overlay-estimate';
export { numericsSolver } from './numerics-solver';
export { readManifest, readLayerOverlay, MANIFEST_FILE } from './overlay-store';
export type { DeltaSolver } from './delta-solver';
export type { RankRule, OverlayDtype } from './types';

export interface ComputeAndVerifyTiming {
  readonly computeSeconds: number;
  readonly verifySeconds: number;
  readonly verification: LayerVerification;
}

/**
 * For `npm run bench`: one layer's overlay at fixed ranks (base + every expert's factors), then its
 * verification (every expert rebuilt, weight errors, expert output error on 256 seeded tokens).
 */
export async function overlayComputeAndVerify(
  model: MoeModel,
  layer: LayerIndex,
  ranks: ProjectionRanks,
  backend: ComputeBackend,
  solver: DeltaSolver = numericsSolver(backend),
): Promise<ComputeAndVerifyTiming> {
  const t0 = performance.now();
  const overlay = await computeLayerOverlay(model, layer, solver, { rule: { kind: 'fixed', ...ranks }, overlayDtype: 'F32', originalBytes: { gate: 0, up: 0, down: 0 } });
  // compute = bases + every expert's factors (solved and dropped, as `overlay compute` does);
  // verify then solves each expert's factors again as it reaches it (nothing is kept in between).
  for (const p of PROJECTIONS) for (let j = 0; j < overlay.numExperts; j++) await overlay.expert(p, j);
  const t1 = performance.now();
  const hidden = model.layers.find((l) => l.layer === layer)!.projections.up.shape[1];
  const verification = await verifyLayerOverlay(model, overlay, backend, [{ label: 'seeded', batch: seededInputs(hidden) }]);
  const t2 = performance.now();
  return { computeSeconds: (t1 - t0) / 1000, verifySeconds: (t2 - t1) / 1000, verification };
}
