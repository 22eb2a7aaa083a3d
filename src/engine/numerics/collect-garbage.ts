/**
 * A full garbage collection on demand. Large typed arrays (decoded experts, neuron matrices) are
 * external to V8's heap, and with a small JS heap V8 may let hundreds of MiB of them wait as garbage:
 * measured, the provenance pass of a DeepSeek-V3-shaped layer held 2.4 GiB where its live data was
 * about 1.6 GiB. Node does not expose gc without --expose-gc (which worker threads cannot take);
 * the flag set at run time exposes gc to a new context.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let gc: (() => void) | null | undefined;

export function collectGarbage(): void {
  if (gc === undefined) {
    try {
      setFlagsFromString('--expose-gc');
      gc = runInNewContext('gc') as () => void;
    } catch {
      gc = null; // no collection: only memory is at stake
    }
  }
  gc?.();
}
