/** Small tensor plans and file helpers shared by the MoE generator and the dense-parent writer. */
import { rename, rm, writeFile } from 'node:fs/promises';
import type { SynthDtype } from './encode-matrix';
import { encodePlain } from './encode-matrix';
import { fillGaussian, hashKey } from './random';
import type { TensorPlan } from './safetensors-writer';

export const AUX_DTYPE = (d: SynthDtype): 'F32' | 'BF16' | 'F16' => (d === 'F32' || d === 'F16' ? d : 'BF16');

export function randomPlan(name: string, shape: number[], dtype: 'F32' | 'BF16' | 'F16', seed: number, std: number): TensorPlan {
  return {
    name,
    dtype,
    shape,
    async produce(sink) {
      const v = new Float32Array(shape.reduce((a, b) => a * b, 1));
      fillGaussian(v, hashKey(seed, name), std);
      await sink(encodePlain(v, dtype).bytes);
    },
  };
}

export function onesPlan(name: string, n: number, dtype: 'F32' | 'BF16' | 'F16'): TensorPlan {
  return { name, dtype, shape: [n], produce: async (sink) => sink(encodePlain(new Float32Array(n).fill(1), dtype).bytes) };
}

export async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.partial-${process.pid}`;
  try {
    await writeFile(tmp, text + '\n');
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}
