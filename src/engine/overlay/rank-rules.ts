/**
 * How overlay ranks are chosen. Every rule looks at ALL experts of a projection (the seeds' tool
 * chose the rank from one expert's spectrum):
 *  - energy e: the smallest r such that EVERY expert's delta keeps >= e of its energy
 *    (max over experts of the per-expert rank), so no expert is reconstructed worse than asked;
 *  - target ratio X: per projection, the largest r whose own byte ratio original / overlay is still
 *    >= X (every projection meets X, so the layer does too).
 */
import { MoeInspectorError } from '../errors';
import { PROJECTIONS, type Projection } from '../layouts/types';

export type ProjectionRanks = Readonly<Record<Projection, number>>;

/**
 * Smallest k with sum_{i<k} s_i^2 >= energy * total, where total = ||delta||_F^2 computed directly
 * (not from s, whose tail may be below the solver's resolution). Zero delta: rank 0.
 */
export function energyRank(singularValues: ArrayLike<number>, totalEnergy: number, energy: number): number {
  if (!(energy > 0 && energy <= 1)) throw new MoeInspectorError('usage', `energy must be in (0, 1], got ${energy}`);
  if (totalEnergy <= 0) return 0;
  const need = energy * totalEnergy;
  let acc = 0;
  for (let k = 0; k < singularValues.length; k++) {
    acc += singularValues[k]! ** 2;
    if (acc >= need) return k + 1;
  }
  return singularValues.length;
}

/** The energy rule over all experts of one projection: the largest per-expert rank. */
export function energyRankAllExperts(spectra: readonly ArrayLike<number>[], totals: readonly number[], energy: number): number {
  let r = 0;
  spectra.forEach((s, j) => (r = Math.max(r, energyRank(s, totals[j]!, energy))));
  return r;
}

/** Share of the delta's energy kept by the first `rank` singular values. */
export function energyKept(singularValues: ArrayLike<number>, totalEnergy: number, rank: number): number {
  if (totalEnergy <= 0) return 1;
  let acc = 0;
  for (let k = 0; k < Math.min(rank, singularValues.length); k++) acc += singularValues[k]! ** 2;
  return Math.min(1, acc / totalEnergy);
}

export interface ProjectionGeometry {
  readonly rows: number; // out
  readonly cols: number; // in
  readonly numExperts: number;
  /** The stored expert weights of this projection in this layer, in bytes (real dtypes, scales included). */
  readonly originalBytes: number;
}

/** Bytes of one projection's overlay: the base plus per-expert factors U [out, r] and V [r, in]. */
export function overlayWeightBytes(g: Pick<ProjectionGeometry, 'rows' | 'cols' | 'numExperts'>, rank: number, bytesPerValue: number): number {
  return (g.rows * g.cols + g.numExperts * rank * (g.rows + g.cols)) * bytesPerValue;
}

/** The largest rank whose overlay keeps original / overlay >= ratio; throws when even rank 0 (base alone) cannot. */
export function rankForTargetRatio(g: ProjectionGeometry, ratio: number, bytesPerValue: number, projection: Projection): number {
  if (!(ratio > 0)) throw new MoeInspectorError('usage', `target ratio must be > 0, got ${ratio}`);
  const budget = g.originalBytes / ratio;
  const baseBytes = g.rows * g.cols * bytesPerValue;
  if (baseBytes > budget) {
    const best = g.originalBytes / baseBytes;
    throw new MoeInspectorError('usage', `target ratio ${ratio} is out of reach for the ${projection} projection: the base alone (${baseBytes} bytes) already gives only ${best.toFixed(3)}x of the ${g.originalBytes} stored bytes`);
  }
  const perRank = g.numExperts * (g.rows + g.cols) * bytesPerValue;
  const r = Math.floor((budget - baseBytes) / perRank);
  return Math.min(r, Math.min(g.rows, g.cols));
}

export function ranksForTargetRatio(geometry: Readonly<Record<Projection, ProjectionGeometry>>, ratio: number, bytesPerValue: number): ProjectionRanks {
  const out = {} as Record<Projection, number>;
  for (const p of PROJECTIONS) out[p] = rankForTargetRatio(geometry[p], ratio, bytesPerValue, p);
  return out;
}

/** Fixed ranks may not exceed min(out, in): a larger rank stores more than the matrix itself. */
export function checkFixedRank(rank: number, rows: number, cols: number, projection: Projection): number {
  if (!Number.isInteger(rank) || rank < 0) throw new MoeInspectorError('usage', `--${projection}-rank must be a non-negative integer, got ${rank}`);
  const max = Math.min(rows, cols);
  if (rank > max) throw new MoeInspectorError('usage', `--${projection}-rank ${rank} exceeds min(out, in) = ${max} of the ${projection} projection [${rows}, ${cols}]`);
  return rank;
}
