import { MoeInspectorError } from '../errors';

/** Checked between experts and between reduction steps, so a cancel lands within one step (well under a second). */
export function throwIfCancelled(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new MoeInspectorError('cancelled', 'analysis cancelled');
}
