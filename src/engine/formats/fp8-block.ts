/**
 * Block-scaled FP8 (DeepSeek-V3 and kin, fact sheet section 3): W[i, j] * s[floor(i/b0), floor(j/b1)]
 * with the scale grid [ceil(rows/b0), ceil(cols/b1)]; edge tiles are partial. Applied in place.
 */
import { MoeInspectorError } from '../errors';

export function applyBlockScales(
  weight: Float32Array,
  rows: number,
  cols: number,
  scaleInv: Float32Array,
  block: readonly [number, number],
  where: { file?: string; tensor?: string } = {},
): void {
  const [b0, b1] = block;
  const gr = Math.ceil(rows / b0);
  const gc = Math.ceil(cols / b1);
  if (weight.length !== rows * cols) throw new MoeInspectorError('layout', `weight has ${weight.length} values, expected ${rows}x${cols}`, where);
  if (scaleInv.length !== gr * gc) {
    throw new MoeInspectorError('layout', `block scales hold ${scaleInv.length} values, expected [${gr}, ${gc}] for a ${rows}x${cols} weight in ${b0}x${b1} blocks`, where);
  }
  for (let i = 0; i < rows; i++) {
    const srow = Math.floor(i / b0) * gc;
    const base = i * cols;
    for (let j = 0; j < cols; j++) weight[base + j]! *= scaleInv[srow + Math.floor(j / b1)]!;
  }
}
