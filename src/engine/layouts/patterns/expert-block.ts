/** Finding a layer's one expert block by a tensor name; two blocks of the same kind are never half-read. */
import { MoeInspectorError } from '../../errors';
import type { LayerTensors, PatternContext } from './types';

/**
 * The one name (without the layer prefix) in `layer` that `test` accepts, or null. Several are an
 * error naming them: reading the first would silently leave the other experts out.
 */
export function expertBlockKey(layer: LayerTensors, ctx: PatternContext, test: (rest: string, full: string) => boolean): string | null {
  const keys = [...layer.rest.entries()].filter(([k, full]) => test(k, full)).map(([k]) => k);
  if (keys.length > 1) {
    throw new MoeInspectorError('layout', `several expert blocks of one kind in this layer (${keys.map((k) => layer.prefix + k).join(', ')}): only one per layer (or text_moe / vision_moe) is read`, { file: ctx.ckpt.source, tensor: layer.prefix + keys[1] });
  }
  return keys[0] ?? null;
}
