/**
 * A layer's identity across runs: what `status.layers_done`, `--resume`, shards and `merge` record,
 * compare and order by. Today a MoE layer is named by its decoder layer index (`layer`); every place
 * that records or matches layers of a run goes through these functions, so a richer identity (an
 * encoder/decoder group, say) changes here only.
 */
export type LayerId = number;

export function layerIdOf(layer: { readonly layer: number }): LayerId {
  return layer.layer;
}

/** A stable key for maps and sets. */
export function layerKey(id: LayerId): string {
  return String(id);
}

/** For messages: "0, 3, 8". */
export function formatLayerIds(ids: readonly LayerId[]): string {
  return ids.map(layerKey).join(', ');
}

/** `items` ordered as their layers appear in `order` (the model's MoE layer order); unknown layers last. */
export function inLayerOrder<T extends { readonly layer: number }>(items: readonly T[], order: readonly LayerId[]): T[] {
  const pos = new Map(order.map((id, i) => [layerKey(id), i]));
  const at = (t: T): number => pos.get(layerKey(layerIdOf(t))) ?? Number.MAX_SAFE_INTEGER;
  return [...items].sort((a, b) => at(a) - at(b));
}
