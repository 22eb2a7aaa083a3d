/**
 * Intermediate neurons of an FFN as matchable vectors. Neuron i of an expert (or of the dense
 * parent) is the triple (gate row i, up row i, down column i); where there is no gate, (up row i,
 * down column i). Each part is scaled to unit length and the concatenation by 1/sqrt(parts), so a
 * neuron is a unit vector of dimension D = parts * H and the cosine of two neurons is the mean of
 * their part cosines: invariant to how the FFN scales each projection, and to the order of neurons.
 */
import { MoeInspectorError } from '../errors';
import type { ExpertMatrix } from '../layouts/types';

export interface NeuronMatrix {
  /** Number of neurons (rows). */
  readonly count: number;
  /** Length of one neuron vector: parts * hidden. */
  readonly dim: number;
  /** [count, dim] row-major, every row of unit length (or zero where every part is zero). */
  readonly data: Float32Array;
}

/** The FFN of one expert or of the parent: gate [I, H] (optional), up [I, H], down [H, I]. */
export interface FfnMatrices {
  readonly gate: ExpertMatrix | null;
  readonly up: ExpertMatrix;
  readonly down: ExpertMatrix;
}

export function neuronMatrix(ffn: FfnMatrices, what: string): NeuronMatrix {
  const { up, down, gate } = ffn;
  const I = up.rows;
  const H = up.cols;
  if (down.rows !== H || down.cols !== I || (gate && (gate.rows !== I || gate.cols !== H))) {
    throw new MoeInspectorError('layout', `${what}: gate ${gate ? `${gate.rows}x${gate.cols}` : '-'}, up ${up.rows}x${up.cols}, down ${down.rows}x${down.cols} do not form one FFN of ${I} neurons over hidden size ${H}`);
  }
  const parts = gate ? 3 : 2;
  const D = parts * H;
  const out = new Float32Array(I * D);
  const scale = 1 / Math.sqrt(parts);
  const putRow = (src: Float32Array, row: number, offset: number): void => {
    // row `row` of a [I, H] part into neuron `row` at `offset`, unit-normalised
    const at = row * H;
    let s = 0;
    for (let h = 0; h < H; h++) {
      const v = src[at + h]!;
      s += v * v;
    }
    const k = s > 0 ? scale / Math.sqrt(s) : 0;
    const base = row * D + offset;
    for (let h = 0; h < H; h++) out[base + h] = src[at + h]! * k;
  };
  for (let i = 0; i < I; i++) {
    if (gate) putRow(gate.data, i, 0);
    putRow(up.data, i, gate ? H : 0);
  }
  putColumns(down.data, H, I, out, D, (parts - 1) * H, scale);
  return { count: I, dim: D, data: out };
}

const TILE = 64;

/**
 * Column i of `src` ([H, I] row-major) into row i of `out` (row length D) at `offset`, unit-normalised
 * and times `scale`. Norms in one row-order pass, the copy in TILE x TILE tiles: a column-by-column
 * copy strides by I through memory (measured 0.7 s for one DeepSeek-V3-shaped expert's three parts).
 */
function putColumns(src: Float32Array, H: number, I: number, out: Float32Array, D: number, offset: number, scale: number): void {
  const sq = new Float64Array(I);
  for (let h = 0; h < H; h++) {
    const at = h * I;
    for (let i = 0; i < I; i++) {
      const v = src[at + i]!;
      sq[i]! += v * v;
    }
  }
  const k = new Float64Array(I); // a double factor, as for the rows: one rounding, to float32, per element
  for (let i = 0; i < I; i++) k[i] = sq[i]! > 0 ? scale / Math.sqrt(sq[i]!) : 0;
  for (let h0 = 0; h0 < H; h0 += TILE) {
    const h1 = Math.min(H, h0 + TILE);
    for (let i0 = 0; i0 < I; i0 += TILE) {
      const i1 = Math.min(I, i0 + TILE);
      for (let i = i0; i < i1; i++) {
        const base = i * D + offset;
        const ki = k[i]!;
        for (let h = h0; h < h1; h++) out[base + h] = src[h * I + i]! * ki;
      }
    }
  }
}

/** Exact cosine of neuron i of A and neuron j of B (rows are unit vectors: the dot product, in float64). */
export function neuronCosine(a: NeuronMatrix, i: number, b: NeuronMatrix, j: number): number {
  const D = a.dim;
  const x = a.data;
  const y = b.data;
  const oa = i * D;
  const ob = j * D;
  let s = 0;
  for (let k = 0; k < D; k++) s += x[oa + k]! * y[ob + k]!;
  return s;
}

export function bytesOf(n: NeuronMatrix): number {
  return n.data.byteLength;
}
