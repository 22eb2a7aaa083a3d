/** A Checkpoint that counts the tensor bytes read through it, for progress ("4.2 GB read"). */
import type { Checkpoint } from './checkpoint';

export interface CountedCheckpoint {
  readonly ckpt: Checkpoint;
  bytesRead(): number;
}

export function countingCheckpoint(inner: Checkpoint): CountedCheckpoint {
  let bytes = 0;
  const ckpt: Checkpoint = {
    ...inner,
    async readTensorBytes(name, range) {
      const b = await inner.readTensorBytes(name, range);
      bytes += b.length;
      return b;
    },
    close: () => inner.close(),
  };
  return { ckpt, bytesRead: () => bytes };
}
