/**
 * The token activations overlay verify feeds the experts.
 *  seeded: T = 256 tokens, every element N(0, 1) from a fixed seed (default 0): the unit-RMS scale of
 *          hidden states after RMSNorm, so the gate pre-activations sit where the nonlinearity bends.
 *          Same seed, same numbers on every machine (mulberry32 + Box-Muller, synth/random.ts).
 *  file:   a .safetensors file holding ONE 2-D float tensor [T, H] (or several, one named "inputs").
 */
import { MoeInspectorError } from '../errors';
import { decodeToFloat32 } from '../formats/decode';
import { openCheckpoint } from '../model/open-checkpoint';
import { fillGaussian, hashKey } from '../synth/random';
import type { TokenBatch } from './expert-function';

export const DEFAULT_VERIFY_SEED = 0;
export const DEFAULT_VERIFY_TOKENS = 256;

export function seededInputs(hidden: number, seed = DEFAULT_VERIFY_SEED, tokens = DEFAULT_VERIFY_TOKENS): TokenBatch {
  const data = new Float32Array(tokens * hidden);
  fillGaussian(data, hashKey(seed, 'overlay-verify-inputs'));
  return { tokens, hidden, data };
}

const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16', 'F64']);

export async function inputsFromFile(path: string, hidden: number): Promise<TokenBatch> {
  if (!path.endsWith('.safetensors')) throw new MoeInspectorError('usage', '--inputs must be a .safetensors file holding one [T, H] float tensor', { file: path });
  const ckpt = await openCheckpoint(path);
  try {
    const all = [...ckpt.tensors.values()];
    const t = all.length === 1 ? all[0]! : ckpt.tensors.get('inputs');
    if (!t) throw new MoeInspectorError('format', `holds ${all.length} tensors: expected one, or one named "inputs"`, { file: path });
    const where = { file: path, tensor: t.name };
    if (!FLOAT_DTYPES.has(t.dtype)) throw new MoeInspectorError('dtype', `activations must be F32, F16, BF16 or F64, got ${t.dtype}`, where);
    if (t.shape.length !== 2 || t.shape[0]! < 1) throw new MoeInspectorError('format', `activations must be 2-D [T, H] with T >= 1, got [${t.shape.join(', ')}]`, where);
    if (t.shape[1] !== hidden) throw new MoeInspectorError('format', `activations have H = ${t.shape[1]}, the model's experts take ${hidden}`, where);
    const data = decodeToFloat32(await ckpt.readTensorBytes(t.name), t.dtype, where);
    for (let i = 0; i < data.length; i++) {
      if (!Number.isFinite(data[i]!)) throw new MoeInspectorError('non-finite', `NaN/Inf at element ${i} (token ${Math.floor(i / hidden)})`, where);
    }
    return { tokens: t.shape[0]!, hidden, data };
  } finally {
    await ckpt.close();
  }
}
