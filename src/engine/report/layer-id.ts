/**
 * A layer's identity across runs: what `status.layers_done`, `--resume`, shards and `merge` record,
 * compare and order by. A MoE layer of a single stack is named by its decoder layer index (`layer`);
 * a layer of a group (encoder/decoder stacks, the vision experts of a VL MoE) by its name
 * ("encoder.1"), since the index alone repeats across groups. Every place that records or matches
 * layers of a run goes through these functions.
 */
export type LayerId = number | string;

/** Anything that carries a layer index and, in grouped models, its name (layouts, report layers). */
export interface LayerLike {
  readonly layer: number;
  readonly name?: string;
}

export function layerIdOf(layer: LayerLike): LayerId {
  return layer.name !== undefined && layer.name !== String(layer.layer) ? layer.name : layer.layer;
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
export function inLayerOrder<T extends LayerLike>(items: readonly T[], order: readonly LayerId[]): T[] {
  const pos = new Map(order.map((id, i) => [layerKey(id), i]));
  const at = (t: T): number => pos.get(layerKey(layerIdOf(t))) ?? Number.MAX_SAFE_INTEGER;
  return [...items].sort((a, b) => at(a) - at(b));
}
