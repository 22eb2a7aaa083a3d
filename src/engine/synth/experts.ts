/**
 * The generator's experts, with a known structure:
 *  upcycled: W_j = B + sign_j * U_p diag(s) V_p^T + noise_j, p = floor(j/2), sign = +1 for even j and
 *            -1 for odd j. The antithetic pairs make the deltas sum to zero, so the mean expert IS
 *            B + mean(noise), and each expert's delta from the mean (what the analysis computes) has
 *            exactly the constructed singular values s, up to noise and rounding. U_p, V_p have
 *            orthonormal columns (twice-applied Gram-Schmidt in f64), so s ARE the singular values.
 *            With an odd count the last expert has no partner and gets no delta ("base-only").
 *  native:   W_j independent N(0, 1/in).
 *  partial:  the first round(fraction*E) experts upcycled as above, the rest native. Then the mean
 *            includes the native experts, and an upcycled expert's delta from the mean is its
 *            constructed delta PLUS (B - mean): a full-rank shift. The ground truth says so.
 *
 * Spectrum: B ~ N(0, 1/in) so ||B||_F ~ sqrt(out); s_i = c (1 - 0.3 i/(r-1)), c chosen so that
 * ||delta||_F = deltaScale * sqrt(out) (= deltaScale * ||B||_F on average).
 *
 * Defaults (deltaScale 0.3, noise 0.002), and why the 95% rank survives BF16: noise adds
 * 0.002 * sqrt(out) to the Frobenius norm; BF16 rounding errs by at most 2^-9 relative (RMS about
 * 2^-9/sqrt(3) = 0.0011) on entries of RMS ~ 1/sqrt(in), i.e. ~0.0011 * sqrt(out). Together that is
 * (0.0023/0.3)^2 = 6e-5 of the delta's energy, spread over min(out, in) directions, against the
 * >= 1e-3 energy a constructed singular value carries for r <= 64. So the delta's 90/95/99% ranks are
 * those of s alone (recorded as expectedRank, with the margin to the threshold). With this decay the
 * smallest of r values carries >= 5% of the energy for r <= 13, so k95 = r exactly for r <= 13; for
 * larger r, k95 < r (no spectrum of r values can put >= 5% in its smallest once r >= 20).
 * MXFP4 and FP8 quantize far more coarsely (E2M1 errs up to 1/6 relative): their expected ranks hold
 * before quantization only.
 */
import type { Projection } from '../layouts/types';
import { fillGaussian, hashKey, orthonormalColumns } from './random';
import type { Recipe } from './recipes';

export type Ranks = Readonly<Record<Projection, number>>;

export type Structure =
  | { readonly kind: 'upcycled'; readonly ranks: Ranks; readonly deltaScale?: number; readonly noise?: number }
  | { readonly kind: 'native' }
  | { readonly kind: 'partial'; readonly fraction: number; readonly ranks: Ranks; readonly deltaScale?: number; readonly noise?: number }
  /** Built neuron by neuron from a dense parent FFN (synth/recipes.ts). */
  | { readonly kind: 'recipe'; readonly recipe: Recipe };

/** What the generator asks of a layer's expert builder for one projection. */
export interface ExpertSource {
  /** True f32 values of expert j (before the stored format's rounding). */
  expert(j: number): Float32Array;
  /** The constructed delta singular values (empty where the structure has none). */
  readonly singularValues: number[];
}

export const DEFAULT_DELTA_SCALE = 0.3;
export const DEFAULT_NOISE = 0.002;

export function constructedSingularValues(rank: number, out: number, deltaScale: number): number[] {
  const shape = Array.from({ length: rank }, (_, i) => 1 - (0.3 * i) / Math.max(1, rank - 1));
  const c = (deltaScale * Math.sqrt(out)) / Math.sqrt(shape.reduce((a, x) => a + x * x, 0));
  return shape.map((x) => c * x);
}

export const RANK_THRESHOLDS = ['0.9', '0.95', '0.99'] as const;
export type RankThreshold = (typeof RANK_THRESHOLDS)[number];

/** Smallest k with sum_{i<k} s_i^2 >= t * sum s_i^2 (the analysis' definition), for each threshold. */
export function energyRanks(s: readonly number[]): Record<RankThreshold, number> {
  const total = s.reduce((a, x) => a + x * x, 0);
  const rank = (t: number): number => {
    let acc = 0;
    for (let k = 0; k < s.length; k++) {
      acc += s[k]! * s[k]!;
      if (acc >= t * total) return k + 1;
    }
    return s.length;
  };
  return { '0.9': rank(0.9), '0.95': rank(0.95), '0.99': rank(0.99) };
}

/** How far the cumulative energy at k95 and at k95 - 1 lie from 0.95: how much noise the rank tolerates. */
export function energyMargin95(s: readonly number[]): number {
  const total = s.reduce((a, x) => a + x * x, 0);
  const k = energyRanks(s)['0.95'];
  const cum = (n: number): number => s.slice(0, n).reduce((a, x) => a + x * x, 0) / total;
  return Math.min(cum(k) - 0.95, 0.95 - cum(k - 1));
}

/** 'derived': a recipe expert that inherits parent neurons. */
export type ExpertKind = 'delta' | 'base-only' | 'native' | 'derived';

/** What each expert of a layer is made of. */
export function expertKinds(s: Structure, numExperts: number): ExpertKind[] {
  const n = upcycledCount(s, numExperts);
  return Array.from({ length: numExperts }, (_, j) => (j >= n ? 'native' : (j >> 1) * 2 + 1 < n ? 'delta' : 'base-only'));
}

export function upcycledCount(s: Structure, numExperts: number): number {
  if (s.kind === 'recipe') throw new Error('recipe layers count derived experts from their neuron maps');
  return s.kind === 'native' ? 0 : s.kind === 'upcycled' ? numExperts : Math.round(s.fraction * numExperts);
}

/** Builds expert matrices [out, in] for one layer and projection, caching the shared base and factors. */
export class ExpertFactory implements ExpertSource {
  private base: Float32Array | null = null;
  private readonly factors = new Map<number, { u: Float64Array; v: Float64Array }>();
  readonly singularValues: number[];

  constructor(
    private readonly seed: number,
    private readonly key: string, // e.g. "L3.gate"
    readonly out: number,
    readonly inp: number,
    private readonly structure: Structure,
    private readonly numExperts: number,
    proj: Projection,
  ) {
    this.singularValues = structure.kind === 'native' || structure.kind === 'recipe' ? [] : constructedSingularValues(structure.ranks[proj], out, structure.deltaScale ?? DEFAULT_DELTA_SCALE);
  }

  private getBase(): Float32Array {
    if (!this.base) {
      this.base = new Float32Array(this.out * this.inp);
      fillGaussian(this.base, hashKey(this.seed, `${this.key}.base`), 1 / Math.sqrt(this.inp));
    }
    return this.base;
  }

  isUpcycled(j: number): boolean {
    return j < upcycledCount(this.structure, this.numExperts);
  }

  /** True f32 values of expert j (before the stored format's rounding). */
  expert(j: number): Float32Array {
    const w = new Float32Array(this.out * this.inp);
    if (!this.isUpcycled(j)) {
      fillGaussian(w, hashKey(this.seed, `${this.key}.native${j}`), 1 / Math.sqrt(this.inp));
      return w;
    }
    const s = this.structure as Extract<Structure, { kind: 'upcycled' | 'partial' }>;
    fillGaussian(w, hashKey(this.seed, `${this.key}.noise${j}`), (s.noise ?? DEFAULT_NOISE) / Math.sqrt(this.inp));
    const base = this.getBase();
    for (let i = 0; i < w.length; i++) w[i]! += base[i]!;
    if (expertKinds(this.structure, this.numExperts)[j] === 'delta') this.addDelta(w, j >> 1, j % 2 === 0 ? 1 : -1);
    return w;
  }

  private addDelta(w: Float32Array, pair: number, sign: number): void {
    const r = this.singularValues.length;
    let f = this.factors.get(pair);
    if (!f) {
      f = { u: orthonormalColumns(this.out, r, hashKey(this.seed, `${this.key}.U${pair}`)), v: orthonormalColumns(this.inp, r, hashKey(this.seed, `${this.key}.V${pair}`)) };
      this.factors.set(pair, f);
    }
    const us = new Float64Array(r);
    for (let i = 0; i < this.out; i++) {
      for (let k = 0; k < r; k++) us[k] = sign * f.u[i * r + k]! * this.singularValues[k]!;
      const row = i * this.inp;
      for (let c = 0; c < this.inp; c++) {
        let acc = 0;
        const vr = c * r;
        for (let k = 0; k < r; k++) acc += us[k]! * f.v[vr + k]!;
        w[row + c]! += acc;
      }
    }
  }
}
