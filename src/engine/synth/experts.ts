/**
 * The generator's experts, with a known structure:
 *  upcycled: W_j = B + sign_j * U_p diag(s) V_p^T + noise, p = floor(j/2), sign = +1 for even j and
 *            -1 for odd j. The antithetic pairs make the deltas sum to zero, so the mean expert IS
 *            B (+ mean noise) and each delta from the mean has exactly the constructed singular
 *            values s (up to noise and rounding). An unpaired last expert gets no delta.
 *  native:   W_j independent N(0, 1/in).
 *  partial:  the first round(fraction*E) experts upcycled as above, the rest native.
 * B ~ N(0, 1/in); s_i = c * (1 - 0.3 i/(r-1)), a gentle decay whose smallest value still carries
 * > 5% of the energy, with c so that ||delta||_F = deltaScale * sqrt(out) (= deltaScale * E||B||_F).
 */
import type { Projection } from '../layouts/types';
import { fillGaussian, hashKey, orthonormalColumns } from './random';

export type Ranks = Readonly<Record<Projection, number>>;

export type Structure =
  | { readonly kind: 'upcycled'; readonly ranks: Ranks; readonly deltaScale?: number; readonly noise?: number }
  | { readonly kind: 'native' }
  | { readonly kind: 'partial'; readonly fraction: number; readonly ranks: Ranks; readonly deltaScale?: number; readonly noise?: number };

export const DEFAULT_DELTA_SCALE = 0.3;
export const DEFAULT_NOISE = 0.002;

export function constructedSingularValues(rank: number, out: number, deltaScale: number): number[] {
  const shape = Array.from({ length: rank }, (_, i) => 1 - (0.3 * i) / Math.max(1, rank - 1));
  const c = (deltaScale * Math.sqrt(out)) / Math.sqrt(shape.reduce((a, x) => a + x * x, 0));
  return shape.map((x) => c * x);
}

export function upcycledCount(s: Structure, numExperts: number): number {
  return s.kind === 'native' ? 0 : s.kind === 'upcycled' ? numExperts : Math.round(s.fraction * numExperts);
}

/** Builds expert matrices [out, in] for one layer and projection, caching the shared base and factors. */
export class ExpertFactory {
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
    this.singularValues = structure.kind === 'native' ? [] : constructedSingularValues(structure.ranks[proj], out, structure.deltaScale ?? DEFAULT_DELTA_SCALE);
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
    const s = this.structure as Exclude<Structure, { kind: 'native' }>;
    fillGaussian(w, hashKey(this.seed, `${this.key}.noise${j}`), (s.noise ?? DEFAULT_NOISE) / Math.sqrt(this.inp));
    const base = this.getBase();
    for (let i = 0; i < w.length; i++) w[i]! += base[i]!;
    const pair = j >> 1;
    const paired = (pair * 2 + 1) < upcycledCount(this.structure, this.numExperts);
    if (paired) this.addDelta(w, pair, j % 2 === 0 ? 1 : -1);
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
