/**
 * One-to-one neuron matching between two neuron sets (two experts, or an expert and the parent).
 * Candidates: MUTUAL best matches on the sketches (row i's best column is j and column j's best row
 * is i), computed in ONNX Runtime; mutual best pairs are one-to-one by construction. Every
 * candidate is then re-checked with the full vectors (exact cosine in float64) and accepted when
 * the exact cosine exceeds the null threshold tau (null-threshold.ts). Why not a full assignment
 * (Hungarian / Jonker-Volgenant): it is O(I^3) per pair (2.4e10 steps per pair at I = 2880, 496
 * pairs a layer) and it only adds pairs that are not each other's best, i.e. pairs whose cosine
 * lies at the null level; a shared neuron (cosine far above tau) is its twin's best match.
 */
import { ort, type ComputeBackend } from '../numerics/backend';
import { bestMatchGraph } from './graphs';
import { neuronCosine, type NeuronMatrix } from './neurons';

export interface Sketch {
  readonly count: number;
  readonly k: number;
  readonly data: Float32Array; // [count, k], unit rows
}

export interface MatchResult {
  /** Accepted matches: row neuron -> column neuron, ascending by row. */
  readonly rows: Int32Array;
  readonly cols: Int32Array;
  /** Their exact cosines. */
  readonly cosines: Float64Array;
  /** Mutual best candidates re-checked (accepted or not). */
  readonly candidates: number;
}

/** Mutual best pairs of two sketches (ORT), then the exact check against tau. */
export async function matchNeurons(backend: ComputeBackend, sa: Sketch, sb: Sketch, na: NeuronMatrix, nb: NeuronMatrix, tau: number): Promise<MatchResult> {
  const out = await backend.run(bestMatchGraph(), {
    A: new ort.Tensor('float32', sa.data, [sa.count, sa.k]),
    B: new ort.Tensor('float32', sb.data, [sb.count, sb.k]),
  });
  const rowArg = out['rowArg']!.data as Float32Array;
  const colArg = out['colArg']!.data as Float32Array;
  const rows: number[] = [];
  const cols: number[] = [];
  const cos: number[] = [];
  let candidates = 0;
  for (let i = 0; i < sa.count; i++) {
    const j = rowArg[i]!;
    if (colArg[j] !== i) continue;
    candidates++;
    const c = neuronCosine(na, i, nb, j);
    if (c > tau) {
      rows.push(i);
      cols.push(j);
      cos.push(c);
    }
  }
  return { rows: Int32Array.from(rows), cols: Int32Array.from(cols), cosines: Float64Array.from(cos), candidates };
}

/** Kendall's tau between row order and column order of the matches (no ties: the matching is one-to-one); null below 2 matches. */
export function kendallTau(rows: Int32Array, cols: Int32Array): number | null {
  const m = rows.length;
  if (m < 2) return null;
  const order = Array.from({ length: m }, (_, k) => k).sort((a, b) => rows[a]! - rows[b]!);
  const seq = order.map((k) => cols[k]!);
  const inversions = countInversions(seq);
  const pairs = (m * (m - 1)) / 2;
  return 1 - (2 * inversions) / pairs;
}

/** Inversions of a sequence by merge sort, O(m log m). */
export function countInversions(a: number[]): number {
  if (a.length < 2) return 0;
  const mid = a.length >> 1;
  const left = a.slice(0, mid);
  const right = a.slice(mid);
  let inv = countInversions(left) + countInversions(right);
  let i = 0;
  let j = 0;
  let k = 0;
  while (i < left.length && j < right.length) {
    if (left[i]! <= right[j]!) a[k++] = left[i++]!;
    else {
      a[k++] = right[j++]!;
      inv += left.length - i;
    }
  }
  while (i < left.length) a[k++] = left[i++]!;
  while (j < right.length) a[k++] = right[j++]!;
  return inv;
}

/** Share of consecutive matched rows (i, i+1) whose columns are consecutive too (j, j+1): contiguous blocks. */
export function contiguity(rows: Int32Array, cols: Int32Array): number | null {
  let pairs = 0;
  let runs = 0;
  for (let k = 1; k < rows.length; k++) {
    if (rows[k] !== rows[k - 1]! + 1) continue;
    pairs++;
    if (cols[k] === cols[k - 1]! + 1) runs++;
  }
  return pairs === 0 ? null : runs / pairs;
}

export function mean(xs: ArrayLike<number>): number | null {
  if (xs.length === 0) return null;
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i]!;
  return s / xs.length;
}
