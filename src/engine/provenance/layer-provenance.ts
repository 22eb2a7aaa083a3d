/**
 * Provenance of one MoE layer, its own pass over the layer's experts through the layout's expert
 * readers: every expert's FFN read once (gate, up, down), turned into unit neuron vectors
 * (neurons.ts), sketched by a fixed random projection in ONNX Runtime, matched one-to-one against
 * the dense parent's FFN (when given) and against every other expert (match.ts), each accepted
 * match re-checked with the full vectors. Memory: the sketches of the paired experts (P x I x k
 * floats) and the full neuron vectors of at most `heldBytes` worth of experts; pairs beyond that
 * are done block by block, re-reading the experts of later blocks (counted in expert_reads).
 *
 * Pairs grow as E^2 and, past the held budget, so do the re-reads: at most `pairExperts` experts
 * (default 64, evenly spaced) are paired, so a 256- or 384-expert layer costs what a 64-expert one
 * does; the report then names them (`pair_experts`). Against the parent every expert is matched
 * (E matches, no re-reads).
 */
import { sampledExperts } from '../analysis/layer-selection';
import { MoeInspectorError } from '../errors';
import type { MoeLayerLayout, MoeModel, Projection, WeightEncoding } from '../layouts/types';
import { ort, type ComputeBackend } from '../numerics/backend';
import { collectGarbage } from '../numerics/collect-garbage';
import { throwIfCancelled } from '../numerics/cancel';
import type { LayerProvenance, ParentProvenance } from '../report/schema';
import { fillGaussian, hashKey } from '../synth/random';
import type { DenseParent } from './dense-parent';
import { sketchGraph } from './graphs';
import { contiguity, kendallTau, matchNeurons, mean, type MatchResult, type Sketch } from './match';
import { neuronMatrix, type FfnMatrices, type NeuronMatrix } from './neurons';
import { DEFAULT_ALPHA, matchThreshold, minSharedCount } from './null-threshold';
import { noiseEdge, roundingVariance } from './noise-edge';

export interface ProvenanceOptions {
  readonly alpha?: number;
  /** Sketch dimension k (default 256). */
  readonly sketchDim?: number;
  /** Bytes of full neuron vectors held at once (default 1 GiB). */
  readonly heldBytes?: number;
  /** At most this many experts (evenly spaced) are matched pair by pair (default 64; 'all': every pair). */
  readonly pairExperts?: number | 'all';
  readonly parent?: DenseParent;
  readonly signal?: AbortSignal;
  readonly onProgress?: (message: string) => void;
}

const MAX_SKETCH = 256;
const MIN_SKETCH = 64;
/** Sketches of all paired experts are held: their total is kept under this by a smaller k (64 paired experts of 2048 neurons: k = 256). */
const SKETCH_BYTES = 256 * 2 ** 20;
const DEFAULT_HELD = 2 ** 30;
/** 2016 pairs: at the DeepSeek-V3 shape (2048 neurons, hidden 7168) well under the time of a 256-expert layer's spectra. */
export const DEFAULT_PAIR_EXPERTS = 64;

/** The experts the pair pass covers: all when E <= limit, else floor(i E / limit), i < limit (the --sample-experts rule). */
export function pairedExperts(experts: number, limit: number | 'all' = DEFAULT_PAIR_EXPERTS): number[] {
  if (limit === 'all') return sampledExperts(experts, null);
  if (!(limit >= 2)) throw new MoeInspectorError('usage', `the pair pass needs at least 2 experts (got ${limit})`);
  return sampledExperts(experts, limit);
}

/** k: 256, halved while E * I * k floats exceed SKETCH_BYTES, never below 64. */
export function defaultSketchDim(experts: number, neurons: number): number {
  let k = MAX_SKETCH;
  while (k > MIN_SKETCH && experts * neurons * k * 4 > SKETCH_BYTES) k /= 2;
  return k;
}

/**
 * Bytes the pass holds at most: the paired experts' sketches (P I k floats), the held neuron vectors (at most the
 * budget), and while an expert is read its three matrices plus its neuron vectors, plus the I x I
 * candidate matrix inside ORT. (The parent, when given, adds its neurons P D and sketch P k.)
 */
export function provenanceMemoryBound(s: { experts: number; neurons: number; hidden: number; gated: boolean; heldBytes?: number; sketchDim?: number; pairExperts?: number | 'all' }): { sketchDim: number; sketches: number; held: number; reading: number; total: number } {
  const paired = pairedExperts(s.experts, s.pairExperts ?? DEFAULT_PAIR_EXPERTS).length;
  const k = s.sketchDim ?? defaultSketchDim(paired, s.neurons);
  const D = (s.gated ? 3 : 2) * s.hidden;
  const perExpert = s.neurons * D * 4;
  const sketches = paired * s.neurons * k * 4;
  const held = Math.min(s.heldBytes ?? DEFAULT_HELD, paired * perExpert);
  const reading = (s.gated ? 3 : 2) * s.neurons * s.hidden * 4 + perExpert + s.neurons * s.neurons * 4;
  return { sketchDim: k, sketches, held, reading, total: sketches + held + reading };
}

export function encodingName(e: WeightEncoding): string {
  return e.kind === 'plain' ? `plain:${e.dtype}` : e.kind === 'mxfp4' ? 'mxfp4' : `fp8-block:${e.dtype}`;
}

/** The fixed Gaussian projection [D, k] (seeded: the same sketch for every run and machine). */
function projection(dim: number, k: number): Float32Array {
  const p = new Float32Array(dim * k);
  fillGaussian(p, hashKey(20261203, `sketch.${dim}.${k}`), 1 / Math.sqrt(k));
  return p;
}

async function sketchOf(backend: ComputeBackend, n: NeuronMatrix, proj: Float32Array, k: number): Promise<Sketch> {
  const out = await backend.run(sketchGraph(), {
    N: new ort.Tensor('float32', n.data, [n.count, n.dim]),
    P: new ort.Tensor('float32', proj, [n.dim, k]),
  });
  return { count: n.count, k, data: Float32Array.from(out['S']!.data as Float32Array) };
}

class NoiseAccumulator {
  private readonly sum = new Map<Projection, { v: number; n: number; known: boolean; rows: number; cols: number }>();
  add(p: Projection, data: Float32Array, rows: number, cols: number, enc: WeightEncoding): void {
    const v = roundingVariance(data, rows, cols, enc);
    const s = this.sum.get(p) ?? { v: 0, n: 0, known: true, rows, cols };
    if (v === null) s.known = false;
    else s.v += v;
    s.n++;
    this.sum.set(p, s);
  }
  report(layout: MoeLayerLayout): LayerProvenance['noise'] {
    const out: Partial<Record<Projection, { encoding: string; sigma: number | null; edge: number | null }>> = {};
    for (const [p, s] of this.sum) {
      const sigma = s.known ? Math.sqrt(s.v / s.n) : null;
      out[p] = { encoding: encodingName(layout.projections[p]!.encoding), sigma, edge: sigma === null ? null : noiseEdge(sigma, s.rows, s.cols, layout.numExperts) };
    }
    return out;
  }
}

async function readFfn(model: MoeModel, layout: MoeLayerLayout, j: number, noise: NoiseAccumulator | null): Promise<FfnMatrices> {
  const read = async (p: Projection) => {
    // By name: in models with layer groups a bare index is ambiguous (encoder.1 / decoder.1).
    const m = await model.readExpert(layout.name, p, j);
    noise?.add(p, m.data, m.rows, m.cols, layout.projections[p]!.encoding);
    return m;
  };
  const gate = layout.projections.gate ? await read('gate') : null;
  return { gate, up: await read('up'), down: await read('down') };
}

export async function layerProvenance(model: MoeModel, layout: MoeLayerLayout, backend: ComputeBackend, opts: ProvenanceOptions = {}): Promise<LayerProvenance> {
  const started = performance.now();
  const E = layout.numExperts;
  const members = pairedExperts(E, opts.pairExperts ?? DEFAULT_PAIR_EXPERTS);
  const P = members.length;
  const alpha = opts.alpha ?? DEFAULT_ALPHA;
  let k = opts.sketchDim ?? 0; // set from the first expert's size when not given
  const budget = opts.heldBytes ?? DEFAULT_HELD;
  const say = (m: string): void => opts.onProgress?.(`layer ${layout.name} provenance: ${m}`);
  const noise = new NoiseAccumulator();
  let reads = 0;
  const readNeurons = async (j: number, acc: NoiseAccumulator | null): Promise<NeuronMatrix> => {
    reads++;
    // The previous expert's decoded matrices (and a dropped neuron matrix) are garbage by now:
    // collected before this read allocates its own 2 x (gate + up + down) floats.
    if (reads > 1) collectGarbage();
    return neuronMatrix(await readFfn(model, layout, j, acc), `layer ${layout.name} expert ${j}`);
  };

  // pass 1: neurons, sketches, storage noise, parent matches (every expert). The first block of
  // paired experts (as many as the held budget allows, one expert's room kept free) stays in memory
  // and every later paired expert is matched against it as it is read: block 0 costs no re-reads.
  const sketches: Sketch[] = [];
  const pairs = new Map<string, MatchResult>();
  let first = new Map<number, NeuronMatrix>(); // block 0, by position in `members`
  let proj: Float32Array | null = null;
  let parent: { n: NeuronMatrix; s: Sketch; tau: number; matches: MatchResult[] } | null = null;
  let dim = 0;
  let neurons = 0;
  let tau = 0;
  let blockSize = 1;
  const position = new Map(members.map((j, a) => [j, a]));
  const visit = opts.parent ? Array.from({ length: E }, (_, j) => j) : members;
  for (const [v, j] of visit.entries()) {
    throwIfCancelled(opts.signal);
    say(`expert ${v + 1}/${visit.length}`);
    const n = await readNeurons(j, noise);
    if (v === 0) {
      dim = n.dim;
      neurons = n.count;
      tau = matchThreshold(dim, neurons, alpha);
      blockSize = Math.max(1, Math.floor(budget / Math.max(1, n.data.byteLength)) - 1);
      k ||= Math.min(defaultSketchDim(P, neurons), dim); // a sketch longer than the vector itself buys nothing
      proj = projection(dim, k);
      if (opts.parent) {
        const pn = neuronMatrix(await opts.parent.ffn(layout.layer, n.dim / (layout.projections.gate ? 3 : 2)), `parent ${opts.parent.source} layer ${layout.layer}`);
        if (pn.dim !== dim) throw new MoeInspectorError('layout', `the parent's FFN at layer ${layout.layer} has ${pn.dim === 2 * (dim / 3) ? 'no gate' : 'a gate'} where the MoE's experts ${layout.projections.gate ? 'have one' : 'have none'}`, { file: opts.parent.source });
        parent = { n: pn, s: await sketchOf(backend, pn, proj, k), tau: matchThreshold(dim, pn.count, alpha), matches: [] };
      }
    }
    const s = await sketchOf(backend, n, proj!, k);
    if (parent) parent.matches.push(await matchNeurons(backend, s, parent.s, n, parent.n, parent.tau));
    const b = position.get(j);
    if (b === undefined) continue;
    sketches.push(s);
    for (const [a, na] of first) pairs.set(`${a},${b}`, await matchNeurons(backend, sketches[a]!, s, na, n, tau));
    if (b < blockSize) first.set(b, n);
  }
  first = new Map(); // pass 2 holds its own blocks

  // pass 2: the pairs a < b with a in later blocks; the block's experts are read again, and each
  // expert after the block is re-read as the sweep reaches it (counted in expert_reads)
  for (let a0 = blockSize; a0 < P; a0 += blockSize) {
    const block = new Map<number, NeuronMatrix>();
    for (let a = a0; a < Math.min(P, a0 + blockSize); a++) block.set(a, await readNeurons(members[a]!, null));
    for (let b = a0 + 1; b < P; b++) {
      throwIfCancelled(opts.signal);
      say(`pairs with expert ${members[b]! + 1}/${E}${P < E ? ` (${b + 1} of ${P} paired)` : ''}`);
      const nb = block.get(b) ?? (await readNeurons(members[b]!, null));
      for (const [a, na] of block) {
        if (a >= b) continue;
        pairs.set(`${a},${b}`, await matchNeurons(backend, sketches[a]!, sketches[b]!, na, nb, tau));
      }
    }
  }
  return {
    ...pairStatistics(members, neurons, pairs, alpha),
    ...(P < E ? { pair_experts: members } : {}),
    method: { neuron: layout.projections.gate ? 'gate+up+down' : 'up+down', dim, sketch_dim: k, matching: 'mutual-best-on-sketch+exact-recheck', alpha, threshold: tau, min_shared: minSharedCount(neurons, alpha) },
    neurons,
    ...(parent && opts.parent ? { parent: parentStatistics(opts.parent.source, layout.layer, parent.n.count, parent.tau, parent.matches, neurons, alpha) } : {}),
    noise: noise.report(layout),
    expert_reads: reads,
    seconds: (performance.now() - started) / 1000,
  };
}

type PairPart = Pick<LayerProvenance, 'shared_share' | 'matched_cosine' | 'kendall_tau' | 'identity_share' | 'groups' | 'unshared_experts' | 'summary'>;

/**
 * The pair matrices over `members` (experts in the order of the matrices' rows; pairs keyed by
 * positions "a,b", a < b); groups and unshared experts name experts, not positions.
 */
export function pairStatistics(members: readonly number[], neurons: number, pairs: ReadonlyMap<string, MatchResult>, alpha: number): PairPart {
  const E = members.length;
  const square = <T>(diag: T, off: T) => Array.from({ length: E }, (_, a) => Array.from({ length: E }, (_, b) => (a === b ? diag : off)));
  const share = square(1, 0);
  const cos = square<number | null>(1, null);
  const tauM = square<number | null>(1, null);
  const ident = square<number | null>(1, null);
  const minShared = minSharedCount(neurons, alpha);
  const parentOf = Array.from({ length: E }, (_, i) => i);
  const find = (x: number): number => (parentOf[x] === x ? x : (parentOf[x] = find(parentOf[x]!)));
  const shares: number[] = [];
  const linked = new Set<number>();
  let sharing = 0;
  for (const [key, m] of pairs) {
    const [a, b] = key.split(',').map(Number) as [number, number];
    const s = m.rows.length / neurons;
    const c = mean(m.cosines);
    const t = kendallTau(m.rows, m.cols);
    let same = 0;
    for (let q = 0; q < m.rows.length; q++) if (m.rows[q] === m.cols[q]) same++;
    const id = m.rows.length ? same / m.rows.length : null;
    share[a]![b] = share[b]![a] = s;
    cos[a]![b] = cos[b]![a] = c;
    tauM[a]![b] = tauM[b]![a] = t;
    ident[a]![b] = ident[b]![a] = id;
    shares.push(s);
    if (m.rows.length >= minShared) {
      sharing++;
      linked.add(a).add(b);
      parentOf[find(a)] = find(b);
    }
  }
  const comps = new Map<number, number[]>();
  for (let j = 0; j < E; j++) if (linked.has(j)) comps.set(find(j), [...(comps.get(find(j)) ?? []), members[j]!]);
  // summary means over the pairs that share neurons: a chance match in an unrelated pair says nothing about how copies were kept
  const sharingPair = (a: number, b: number): boolean => Math.round(share[a]![b]! * neurons) >= minShared;
  const offDiag = (m: (number | null)[][]) => m.flatMap((row, a) => row.filter((x, b): x is number => a < b && x !== null && sharingPair(a, b)));
  const sorted = [...shares].sort((x, y) => x - y);
  return {
    shared_share: share,
    matched_cosine: cos,
    kendall_tau: tauM,
    identity_share: ident,
    groups: [...comps.values()].sort((x, y) => x[0]! - y[0]!),
    unshared_experts: members.filter((_, j) => !linked.has(j)),
    summary: {
      pairs: shares.length,
      pairs_sharing: sharing,
      median_pair_share: sorted.length ? sorted[Math.floor((sorted.length - 1) / 2)]! : 0,
      mean_pair_share: mean(shares) ?? 0,
      mean_matched_cosine: mean(offDiag(cos)),
      mean_kendall_tau: mean(offDiag(tauM)),
      mean_identity_share: mean(offDiag(ident)),
    },
  };
}

function parentStatistics(source: string, layer: number, parentNeurons: number, tau: number, matches: readonly MatchResult[], neurons: number, alpha: number): ParentProvenance {
  const uses = new Uint32Array(parentNeurons);
  for (const m of matches) for (const c of m.cols) uses[c]!++;
  let covered = 0;
  let once = 0;
  let total = 0;
  for (const u of uses) {
    if (u === 0) continue;
    covered++;
    total += u;
    if (u === 1) once++;
  }
  const minShared = minSharedCount(neurons, alpha);
  return {
    source,
    layer,
    neurons: parentNeurons,
    threshold: tau,
    expert_share: matches.map((m) => m.rows.length / neurons),
    expert_matched_cosine: matches.map((m) => mean(m.cosines)),
    expert_kendall_tau: matches.map((m) => kendallTau(m.rows, m.cols)),
    expert_contiguity: matches.map((m) => contiguity(m.rows, m.cols)),
    coverage: covered / parentNeurons,
    multiplicity: covered ? total / covered : null,
    disjoint_share: covered ? once / covered : null,
    experts_from_parent: matches.flatMap((m, j) => (m.rows.length >= minShared ? [j] : [])),
  };
}
