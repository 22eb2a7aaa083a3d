/**
 * The overlay's spectral path, timed: the energy rule (ranks from every expert's full spectrum,
 * the same kernels as the analysis) for one layer, beside the fixed-rank compute (which needs no
 * spectrum: its energy kept comes from the r computed singular values and ||delta||_F^2).
 */
import { PROJECTIONS, type LayerIndex, type MoeModel, type Projection } from '../src/engine/layouts/types';
import type { ComputeBackend } from '../src/engine/numerics/backend';
import { energyRanks } from '../src/engine/overlay/compute-layer';
import { meanExpert } from '../src/engine/overlay/expert-stats';
import { numericsSolver } from '../src/engine/overlay';

export async function benchEnergyRule(model: MoeModel, layer: LayerIndex, backend: ComputeBackend, energy = 0.95): Promise<string> {
  const t0 = performance.now();
  const bases = {} as Record<Projection, Awaited<ReturnType<typeof meanExpert>>>;
  for (const p of PROJECTIONS) bases[p] = await meanExpert(model, layer, p);
  const r = await energyRanks(model, layer, numericsSolver(backend), bases, energy, {});
  const seconds = (performance.now() - t0) / 1000;
  const kept = PROJECTIONS.map((p) => `${p} ${r.ranks[p]} (min kept ${Math.min(...r.errors[p].energyKept).toFixed(4)})`).join(', ');
  return `overlay energy rule ${energy}: ${model.numExperts * 3} full spectra in ${seconds.toFixed(1)} s; ranks ${kept}`;
}
