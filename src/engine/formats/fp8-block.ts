/**
 * Block-scaled FP8 (DeepSeek-V3 and kin, fact sheet section 3): W[i, j] * s[floor(i/b0), floor(j/b1)]
 * with the scale grid [ceil(rows/b0), ceil(cols/b1)]; edge tiles are partial. Applied in place.
 *
 * The product of an FP8 value (<= 4 significant bits) and an f32 scale (24 bits) is exact in f64 and
 * rounded once when stored to f32: the same f32 that torch computes for `w.float() * s`. DeepSeek's
 * own conversion script then casts to bf16; we keep the f32.
 * Scales stored as F8_E8M0 ("ue8m0") are decoded with decodeToFloat32 before calling this.
 */
import { MoeInspectorError } from '../errors';

type Where = { file?: string; tensor?: string };

function isPositiveInt(x: number): boolean {
  return Number.isSafeInteger(x) && x > 0;
}

/**
 * @param scaleShape the scale tensor's stored shape, when known: checked to be exactly the grid,
 *   so a transposed grid with the same element count is refused rather than applied to wrong tiles.
 */
export function applyBlockScales(
  weight: Float32Array,
  rows: number,
  cols: number,
  scaleInv: Float32Array,
  block: readonly [number, number],
  where: Where = {},
  scaleShape?: readonly number[],
): void {
  const [b0, b1] = block;
  if (!isPositiveInt(b0) || !isPositiveInt(b1)) throw new MoeInspectorError('layout', `weight_block_size [${b0}, ${b1}] is not a pair of positive integers`, where);
  if (weight.length !== rows * cols) throw new MoeInspectorError('layout', `weight has ${weight.length} values, expected ${rows}x${cols}`, where);
  const gr = Math.ceil(rows / b0);
  const gc = Math.ceil(cols / b1);
  const gridProblem = `block scales must be [${gr}, ${gc}] for a ${rows}x${cols} weight in ${b0}x${b1} blocks`;
  if (scaleShape !== undefined && (scaleShape.length !== 2 || scaleShape[0] !== gr || scaleShape[1] !== gc)) {
    throw new MoeInspectorError('layout', `${gridProblem}, but the scale tensor is [${scaleShape.join(', ')}]`, where);
  }
  if (scaleInv.length !== gr * gc) throw new MoeInspectorError('layout', `${gridProblem}, but ${scaleInv.length} scales were given`, where);
  for (let i = 0; i < rows; i++) {
    const scaleRow = Math.floor(i / b0) * gc;
    const base = i * cols;
    // Walk the row tile by tile so the inner loop has no division.
    for (let t = 0; t < gc; t++) {
      const s = scaleInv[scaleRow + t]!;
      const end = base + Math.min(cols, (t + 1) * b1);
      for (let k = base + t * b1; k < end; k++) weight[k]! *= s;
    }
  }
}
