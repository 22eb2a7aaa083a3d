import { MoeInspectorError } from '../errors';
import type { MoeLayerLayout, MoeModel } from '../layouts/types';
import type { LayerSelection, Shard } from '../../shared/messages';
import { layerIdOf, layerKey } from '../report/layer-id';

/** Parses "0,3,8-11" / "all" / "first" into a LayerSelection (CLI and settings share this). */
export function parseLayerSpec(spec: string): LayerSelection {
  const s = spec.trim().toLowerCase();
  if (s === 'all') return { kind: 'all' };
  if (s === 'first' || s === '') return { kind: 'first' };
  const layers: number[] = [];
  for (const part of s.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) throw new MoeInspectorError('usage', `bad layer list "${spec}": use e.g. 0,3,8-11 or all`);
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (b < a) throw new MoeInspectorError('usage', `bad layer range "${part}" in "${spec}"`);
    for (let i = a; i <= b; i++) layers.push(i);
  }
  return { kind: 'list', layers: [...new Set(layers)].sort((x, y) => x - y) };
}

/** The MoE layers a selection names; a named layer that is not a MoE layer is an error listing the MoE layers. */
export function selectLayers(model: MoeModel, sel: LayerSelection): MoeLayerLayout[] {
  if (model.layers.length === 0) throw new MoeInspectorError('not-moe', 'the model has no MoE layers');
  return selectFrom(model.layers, sel, `this ${model.family} model`);
}

/**
 * The selection applied to any list of MoE layers in model order (layouts, or a report's
 * `moe_layers`), so a run and a merge of its shards agree on what a selection means.
 */
export function selectFrom<T extends { readonly layer: number }>(moeLayers: readonly T[], sel: LayerSelection, what = 'the model'): T[] {
  if (sel.kind === 'all') return [...moeLayers];
  if (sel.kind === 'first') return moeLayers.slice(0, 1);
  const byId = new Map(moeLayers.map((l) => [layerKey(layerIdOf(l)), l]));
  return sel.layers.map((n) => {
    const l = byId.get(layerKey(n));
    if (!l) throw new MoeInspectorError('usage', `layer ${n} is not a MoE layer of ${what}; MoE layers: ${describeLayerIds(moeLayers.map(layerIdOf))}`);
    return l;
  });
}

/** Parses `--shard i/N`: i is 0-based (0..N-1), as Slurm array and Kubernetes completion indices are by default. */
export function parseShard(spec: string): Shard {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(spec);
  const index = m ? Number(m[1]) : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!m || count < 1) throw new MoeInspectorError('usage', `--shard must be i/N with N >= 1 (got "${spec}")`);
  if (index >= count) throw new MoeInspectorError('usage', `--shard ${index}/${count}: the index is 0-based, 0..${count - 1}`);
  return { index, count };
}

/** Shard i of N: every N-th of the selected MoE layers, starting at the i-th (round robin balances early and late layers). */
export function shardOf<T>(layers: readonly T[], shard: Shard | null | undefined): T[] {
  return shard ? layers.filter((_, k) => k % shard.count === shard.index) : [...layers];
}

/** A selection as reports record it: "first", "all" or the layer list. */
export type LayerSelectionRecord = 'first' | 'all' | readonly number[];

export function selectionRecord(sel: LayerSelection): LayerSelectionRecord {
  return sel.kind === 'list' ? [...sel.layers] : sel.kind;
}

export function selectionFromRecord(r: LayerSelectionRecord): LayerSelection {
  return r === 'first' || r === 'all' ? { kind: r } : { kind: 'list', layers: [...r] };
}

export function describeLayers(model: MoeModel): string {
  return describeLayerIds(model.layers.map((l) => l.layer as number));
}

/** "0-3,8,10-11": runs of consecutive layers shortened. */
export function describeLayerIds(ns: readonly number[]): string {
  const ranges: string[] = [];
  let start = ns[0];
  let prev = ns[0];
  for (const n of [...ns.slice(1), Number.NaN]) {
    if (n === (prev as number) + 1) {
      prev = n;
      continue;
    }
    if (start !== undefined) ranges.push(start === prev ? `${start}` : `${start}-${prev}`);
    start = n;
    prev = n;
  }
  return ranges.join(',');
}

/** The seeds' sampling, kept for reproducibility: indices floor(i*E/N) for i < N (0, E/8, 2E/8, ... for N = 8). */
export function sampledExperts(numExperts: number, sample: number | null): number[] {
  const n = sample === null || sample <= 0 || sample >= numExperts ? numExperts : sample;
  return Array.from({ length: n }, (_, i) => Math.floor((i * numExperts) / n));
}
