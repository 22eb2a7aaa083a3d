/**
 * Upcycling recipes for the generator: each expert of a layer is built neuron by neuron from a
 * dense parent FFN of the same hidden size (provenance.md section 1). A neuron is the triple
 * (gate row, up row, down column); the FFN is invariant to permuting neurons, so every recipe is
 * described by a NEURON MAP per expert: map[i] = the parent neuron that expert neuron i starts from,
 * or FRESH (-1) for a re-initialised / native neuron. On top of the map:
 *   copy:          map = identity, plus small independent noise (`noise`, relative)
 *   permuted-copy: map = a random permutation per expert; a share `reinit` (Drop-Upcycling r) of
 *                  each expert's neurons re-initialised (FRESH)
 *   noise-copy:    map = a random permutation per expert; a share `reinit` of neurons gets Gaussian
 *                  noise of relative size `noise` added (random-noise upcycling), none re-initialised
 *   split:         parent of S*I neurons cut into S segments of I neurons; R replicas: expert j takes
 *                  segment j mod S; `shuffle` permutes which parent neurons form each segment and
 *                  the order inside each expert (E = S*R)
 *   split-reinit:  Qwen2-57B-A14B style: the parent (P neurons) replicated ceil(E*I/P) times,
 *                  shuffled along the intermediate dimension, sliced into E experts of I neurons,
 *                  `reinit` (default 0.5) of each expert's neurons re-initialised
 *   partition:     LLaMA-MoE style: a parent of E*I neurons randomly partitioned, disjoint
 *   partial:       the first round(fraction*E) experts are copies (identity map + noise), the rest native
 *   native:        every neuron FRESH (a parent is still written: an unrelated dense model)
 * `drift` adds independent Gaussian noise of that relative size to every expert weight (training drift).
 * Relative sizes are against the element standard deviation of the projection.
 */
import { MoeInspectorError } from '../errors';
import type { Projection } from '../layouts/types';
import { fillGaussian, hashKey, uniforms } from './random';

export const RECIPE_KINDS = ['copy', 'permuted-copy', 'noise-copy', 'split', 'split-reinit', 'partition', 'partial', 'native'] as const;
export type RecipeKind = (typeof RECIPE_KINDS)[number];

export interface Recipe {
  readonly kind: RecipeKind;
  /** Share of each expert's neurons re-initialised (permuted-copy, split-reinit) or noised (noise-copy). */
  readonly reinit?: number;
  /** Relative noise: copy's small perturbation (default 0.02), noise-copy's added noise (default 0.5). */
  readonly noise?: number;
  /** split: number of segments S (default E / replicas). */
  readonly segments?: number;
  /** split: replicas R of each segment (default 1). */
  readonly replicas?: number;
  /** split: shuffle neurons before cutting and inside experts (default true). */
  readonly shuffle?: boolean;
  /** split-reinit: parent intermediate size (default 2 * I). */
  readonly parentIntermediate?: number;
  /** partial: share of experts that are copies (default 0.5). */
  readonly fraction?: number;
  /** Training drift: independent noise of this relative size on every expert weight (default 0). */
  readonly drift?: number;
}

export const FRESH = -1;

/** The parent's intermediate size for a recipe with E experts of I neurons. */
export function parentIntermediateOf(r: Recipe, E: number, I: number): number {
  switch (r.kind) {
    case 'split':
      return splitShape(r, E).segments * I;
    case 'split-reinit':
      return r.parentIntermediate ?? 2 * I;
    case 'partition':
      return E * I;
    default:
      return I;
  }
}

function splitShape(r: Recipe, E: number): { segments: number; replicas: number } {
  const replicas = r.replicas ?? (r.segments ? E / r.segments : 1);
  const segments = r.segments ?? E / replicas;
  return { segments, replicas };
}

/** Checks a recipe against the layer's shape; throws a usage error naming the problem. */
export function validateRecipe(r: Recipe, E: number, I: number): void {
  const bad = (p: string): never => {
    throw new MoeInspectorError('usage', `recipe ${r.kind}: ${p}`);
  };
  if (!RECIPE_KINDS.includes(r.kind)) bad(`unknown recipe (one of ${RECIPE_KINDS.join(', ')})`);
  for (const k of ['reinit', 'fraction'] as const) if (r[k] !== undefined && !(r[k]! >= 0 && r[k]! <= 1)) bad(`${k} must be in [0, 1], got ${r[k]}`);
  for (const k of ['noise', 'drift'] as const) if (r[k] !== undefined && !(r[k]! >= 0 && Number.isFinite(r[k]!))) bad(`${k} must be a non-negative number, got ${r[k]}`);
  if (r.kind === 'split') {
    const { segments, replicas } = splitShape(r, E);
    if (!Number.isInteger(segments) || !Number.isInteger(replicas) || segments < 1 || replicas < 1 || segments * replicas !== E) {
      bad(`segments x replicas must equal the ${E} experts (got ${segments} x ${replicas})`);
    }
  }
  if (r.kind === 'split-reinit') {
    const P = parentIntermediateOf(r, E, I);
    if (!Number.isInteger(P) || P < I) bad(`parentIntermediate must be an integer >= the expert size ${I}, got ${P}`);
  }
}

function permutation(n: number, seed: number): Int32Array {
  const p = Int32Array.from({ length: n }, (_, i) => i);
  const u = uniforms(seed);
  for (let i = n - 1; i > 0; i--) {
    const k = Math.floor(u() * (i + 1));
    const t = p[i]!;
    p[i] = p[k]!;
    p[k] = t;
  }
  return p;
}

/** A random subset of round(share * n) of 0..n-1, as a membership mask. */
function subset(n: number, share: number, seed: number): Uint8Array {
  const m = new Uint8Array(n);
  const p = permutation(n, seed);
  const count = Math.round(share * n);
  for (let k = 0; k < count; k++) m[p[k]!] = 1;
  return m;
}

/**
 * Neuron maps of one layer: for expert j, map[i] = parent neuron or FRESH, and which neurons get
 * the noise-copy noise. Deterministic in (seed, layer key).
 */
export function neuronMaps(r: Recipe, E: number, I: number, seed: number, key: string): { maps: Int32Array[]; noised: Uint8Array[] } {
  const P = parentIntermediateOf(r, E, I);
  const maps: Int32Array[] = [];
  const noised: Uint8Array[] = [];
  const identity = (): Int32Array => Int32Array.from({ length: I }, (_, i) => i);
  const dropFresh = (m: Int32Array, share: number, j: number): Int32Array => {
    const drop = subset(I, share, hashKey(seed, `${key}.reinit${j}`));
    for (let i = 0; i < I; i++) if (drop[i]) m[i] = FRESH;
    return m;
  };
  switch (r.kind) {
    case 'copy':
      for (let j = 0; j < E; j++) maps.push(identity());
      break;
    case 'permuted-copy':
      for (let j = 0; j < E; j++) maps.push(dropFresh(permutation(I, hashKey(seed, `${key}.perm${j}`)), r.reinit ?? 0.5, j));
      break;
    case 'noise-copy':
      for (let j = 0; j < E; j++) {
        maps.push(permutation(I, hashKey(seed, `${key}.perm${j}`)));
        noised.push(subset(I, r.reinit ?? 0.5, hashKey(seed, `${key}.noised${j}`)));
      }
      break;
    case 'split': {
      const { segments } = splitShape(r, E);
      const shuffle = r.shuffle ?? true;
      const order = shuffle ? permutation(P, hashKey(seed, `${key}.segments`)) : Int32Array.from({ length: P }, (_, i) => i);
      for (let j = 0; j < E; j++) {
        const s = j % segments;
        const seg = order.slice(s * I, (s + 1) * I);
        const inner = shuffle ? permutation(I, hashKey(seed, `${key}.inner${j}`)) : identity();
        maps.push(Int32Array.from(inner, (k) => seg[k]!));
      }
      break;
    }
    case 'split-reinit': {
      const R = Math.ceil((E * I) / P);
      const pool = permutation(R * P, hashKey(seed, `${key}.replicas`)).map((x) => x % P);
      for (let j = 0; j < E; j++) maps.push(dropFresh(pool.slice(j * I, (j + 1) * I), r.reinit ?? 0.5, j));
      break;
    }
    case 'partition': {
      const order = permutation(P, hashKey(seed, `${key}.partition`));
      for (let j = 0; j < E; j++) maps.push(order.slice(j * I, (j + 1) * I));
      break;
    }
    case 'partial': {
      const copies = Math.round((r.fraction ?? 0.5) * E);
      for (let j = 0; j < E; j++) maps.push(j < copies ? identity() : new Int32Array(I).fill(FRESH));
      break;
    }
    case 'native':
      for (let j = 0; j < E; j++) maps.push(new Int32Array(I).fill(FRESH));
      break;
  }
  return { maps, noised };
}

/** The element standard deviation of each projection (parent and fresh neurons alike). */
export function elementStd(p: Projection, hidden: number, intermediate: number): number {
  return 1 / Math.sqrt(p === 'down' ? intermediate : hidden);
}

/**
 * Builds one layer's dense parent FFN and expert matrices from the recipe. Holds the parent's three
 * projections (P x H each) and the neuron maps; experts are produced one at a time.
 */
export class RecipeLayer {
  readonly parentIntermediate: number;
  readonly maps: Int32Array[];
  private readonly noised: Uint8Array[];
  private readonly parents = new Map<Projection, Float32Array>();

  constructor(
    readonly recipe: Recipe,
    private readonly seed: number,
    private readonly key: string, // e.g. "L3"
    readonly numExperts: number,
    readonly hidden: number,
    readonly intermediate: number,
  ) {
    validateRecipe(recipe, numExperts, intermediate);
    this.parentIntermediate = parentIntermediateOf(recipe, numExperts, intermediate);
    ({ maps: this.maps, noised: this.noised } = neuronMaps(recipe, numExperts, intermediate, seed, key));
  }

  /** The parent's projection in linear [out, in] orientation: gate/up [P, H], down [H, P]. */
  parent(p: Projection): Float32Array {
    let w = this.parents.get(p);
    if (!w) {
      w = new Float32Array(this.parentIntermediate * this.hidden);
      fillGaussian(w, hashKey(this.seed, `${this.key}.parent.${p}`), elementStd(p, this.hidden, this.intermediate));
      this.parents.set(p, w);
    }
    return w;
  }

  /** Expert j's projection, [out, in]: gate/up [I, H], down [H, I]. */
  expert(p: Projection, j: number): Float32Array {
    const H = this.hidden;
    const I = this.intermediate;
    const P = this.parentIntermediate;
    const std = elementStd(p, H, I);
    const map = this.maps[j]!;
    const w = new Float32Array(I * H);
    fillGaussian(w, hashKey(this.seed, `${this.key}.fresh.${p}.${j}`), std); // FRESH neurons keep these values
    const parent = this.parent(p);
    const copyNoise = this.recipe.kind === 'copy' || this.recipe.kind === 'partial' ? (this.recipe.noise ?? 0.02) : 0;
    const noise = new Float32Array(I * H);
    fillGaussian(noise, hashKey(this.seed, `${this.key}.noise.${p}.${j}`), std);
    const noisedShare = this.noised[j];
    const extra = this.recipe.noise ?? 0.5;
    for (let i = 0; i < I; i++) {
      const src = map[i]!;
      if (src === FRESH) continue;
      const amp = copyNoise + (noisedShare?.[i] ? extra : 0);
      for (let h = 0; h < H; h++) {
        // gate/up: neuron i is row i; down: neuron i is column i
        const at = p === 'down' ? h * I + i : i * H + h;
        const from = p === 'down' ? h * P + src : src * H + h;
        w[at] = parent[from]! + amp * noise[at]!;
      }
    }
    const drift = this.recipe.drift ?? 0;
    if (drift > 0) {
      fillGaussian(noise, hashKey(this.seed, `${this.key}.drift.${p}.${j}`), drift * std);
      for (let k = 0; k < w.length; k++) w[k]! += noise[k]!;
    }
    return w;
  }

  /** Ground truth of the layer: what each expert inherits, and the expected shared-neuron counts. */
  truth(): RecipeTruth {
    const E = this.numExperts;
    const I = this.intermediate;
    const inherited = this.maps.map((m) => m.reduce((a, x) => a + (x === FRESH ? 0 : 1), 0) / I);
    const sets = this.maps.map((m) => new Set(Array.from(m).filter((x) => x !== FRESH)));
    const shared = Array.from({ length: E }, (_, a) =>
      Array.from({ length: E }, (_, b) => (a === b ? 1 : [...sets[a]!].filter((x) => sets[b]!.has(x)).length / I)),
    );
    const covered = new Set(sets.flatMap((s) => [...s])).size / this.parentIntermediate;
    return {
      recipe: this.recipe,
      parentIntermediate: this.parentIntermediate,
      inheritedShare: inherited,
      sharedShare: shared,
      parentCoverage: covered,
      identityMap: this.maps.map((m) => m.every((x, i) => x === i)),
      ...(E * I <= 1 << 16 ? { maps: this.maps.map((m) => Array.from(m)) } : {}),
    };
  }
}

export interface RecipeTruth {
  readonly recipe: Recipe;
  readonly parentIntermediate: number;
  /** Per expert: share of its neurons that start from a parent neuron. */
  readonly inheritedShare: number[];
  /** E x E: share of expert a's neurons whose parent neuron expert b also inherits. */
  readonly sharedShare: number[][];
  /** Share of parent neurons inherited by at least one expert. */
  readonly parentCoverage: number;
  /** Per expert: whether neuron i comes from parent neuron i for every i. */
  readonly identityMap: boolean[];
  /** The neuron maps (parent index or -1), when small enough to record. */
  readonly maps?: number[][];
}
