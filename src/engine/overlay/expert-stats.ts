/** Streaming per-expert arithmetic in float64: the mean expert, deltas and their norms. O(out*in) each. */
import type { ExpertMatrix, LayerIndex, MoeModel, Projection } from '../layouts/types';

/** base = (1/E) sum_j W_j, accumulated in float64 (E up to 256: f32 sums would drift), one expert in memory at a time. */
export async function meanExpert(model: MoeModel, layer: LayerIndex, p: Projection, signal?: AbortSignal, onExpert?: (j: number) => void): Promise<ExpertMatrix> {
  let acc: Float64Array | null = null;
  let rows = 0;
  let cols = 0;
  for (let j = 0; j < model.numExperts; j++) {
    signal?.throwIfAborted();
    onExpert?.(j);
    const w = await model.readExpert(layer, p, j);
    if (!acc) {
      acc = new Float64Array(w.data.length);
      rows = w.rows;
      cols = w.cols;
    }
    for (let i = 0; i < acc.length; i++) acc[i]! += w.data[i]!;
  }
  const data = new Float32Array(acc!.length);
  for (let i = 0; i < data.length; i++) data[i] = acc![i]! / model.numExperts;
  return { rows, cols, data };
}

export function deltaOf(w: ExpertMatrix, base: ExpertMatrix): ExpertMatrix {
  const data = new Float32Array(w.data.length);
  for (let i = 0; i < data.length; i++) data[i] = w.data[i]! - base.data[i]!;
  return { rows: w.rows, cols: w.cols, data };
}

/**
 * delta = w - base written over w's own buffer, for a caller that read w and gives it up: a fresh
 * expert-sized array costs its first-touch page faults (155-175 ms per 56 MiB measured on a VM),
 * more than the subtraction itself.
 */
export function subtractInPlace(w: ExpertMatrix, base: ExpertMatrix): ExpertMatrix {
  const d = w.data;
  const b = base.data;
  for (let i = 0; i < d.length; i++) d[i]! -= b[i]!;
  return w;
}

export function squaredNorm(a: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * a[i]!;
  return s;
}
