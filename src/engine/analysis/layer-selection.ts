import { MoeInspectorError } from '../errors';
import type { MoeLayerLayout, MoeModel } from '../layouts/types';
import type { LayerSelection, Shard } from '../../shared/messages';

/**
 * Parses "0,3,8-11" / "all" / "first" into a LayerSelection (CLI and settings share this). In models
 * with layer groups an entry may name a group (encoder, decoder, vision): "encoder.1", "decoder.0-3",
 * or "encoder" (all of it); a bare number selects that layer in every group.
 */
export function parseLayerSpec(spec: string): LayerSelection {
  const s = spec.trim().toLowerCase();
  if (s === 'all') return { kind: 'all' };
  if (s === 'first' || s === '') return { kind: 'first' };
  const layers: number[] = [];
  const names: string[] = [];
  for (const part of s.split(',')) {
    const m = /^(?:(encoder|decoder|vision)(?:\.|$))?(?:(\d+)(?:-(\d+))?)?$/.exec(part.trim());
    if (!m || (m[1] === undefined && m[2] === undefined)) throw new MoeInspectorError('usage', `bad layer list "${spec}": use e.g. 0,3,8-11, all, or encoder.1,decoder.0-3,vision.5 in models with layer groups`);
    if (m[2] === undefined) {
      names.push(`${m[1]}.*`);
      continue;
    }
    const a = Number(m[2]);
    const b = m[3] === undefined ? a : Number(m[3]);
    if (b < a) throw new MoeInspectorError('usage', `bad layer range "${part}" in "${spec}"`);
    for (let i = a; i <= b; i++) {
      if (m[1] === undefined) layers.push(i);
      else names.push(`${m[1]}.${i}`);
    }
  }
  const list = [...new Set(layers)].sort((x, y) => x - y);
  return names.length ? { kind: 'list', layers: list, names: [...new Set(names)] } : { kind: 'list', layers: list };
}

/** The MoE layers a selection names, in the model's order; a named layer that is not a MoE layer is an error listing the MoE layers. */
export function selectLayers(model: MoeModel, sel: LayerSelection): MoeLayerLayout[] {
  if (model.layers.length === 0) throw new MoeInspectorError('not-moe', 'the model has no MoE layers');
  return selectFrom(model.layers, sel, `this ${model.family} model`);
}

/** What a layer list needs to select by index or by name: layouts, or a report's MoE layers. */
interface SelectableLayer {
  readonly layer: number;
  readonly group?: string | null;
  readonly name?: string;
}

/**
 * The selection applied to any list of MoE layers in model order (layouts, or a report's
 * `moe_layers` with `moe_layer_names`), so a run and a merge of its shards agree on what a selection
 * means. A bare index selects that layer in every group; a name selects one layer ("encoder.1") or a
 * whole group ("encoder.*"). The result keeps the model's order.
 */
export function selectFrom<T extends SelectableLayer>(moeLayers: readonly T[], sel: LayerSelection, what = 'the model'): T[] {
  if (sel.kind === 'all') return [...moeLayers];
  if (sel.kind === 'first') return moeLayers.slice(0, 1);
  const picked = new Set<T>();
  const pick = (asked: string, hits: T[]): void => {
    if (hits.length === 0) throw new MoeInspectorError('usage', `layer ${asked} is not a MoE layer of ${what}; MoE layers: ${describeLayerList(moeLayers)}`);
    for (const h of hits) picked.add(h);
  };
  for (const n of sel.layers) pick(String(n), moeLayers.filter((l) => l.layer === n));
  for (const name of sel.names ?? []) pick(name, moeLayers.filter((l) => (name.endsWith('.*') ? `${l.group ?? ''}.*` === name : l.name === name)));
  return moeLayers.filter((l) => picked.has(l));
}

/** A report's MoE layers as selectable layers: index, name and the group its name carries. */
export function reportMoeLayers(model: { readonly moe_layers: readonly number[]; readonly moe_layer_names?: readonly string[] }): SelectableLayer[] {
  return model.moe_layers.map((layer, i) => {
    const name = model.moe_layer_names?.[i] ?? String(layer);
    const dot = name.lastIndexOf('.');
    return { layer, name, group: dot > 0 ? name.slice(0, dot) : null };
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

/** A selection as reports record it: "first", "all" or the list (indices, then names such as "encoder.1" or "vision.*"). */
export type LayerSelectionRecord = 'first' | 'all' | readonly (number | string)[];

export function selectionRecord(sel: LayerSelection): LayerSelectionRecord {
  return sel.kind === 'list' ? [...sel.layers, ...(sel.names ?? [])] : sel.kind;
}

export function selectionFromRecord(r: LayerSelectionRecord): LayerSelection {
  if (r === 'first' || r === 'all') return { kind: r };
  const layers = r.filter((x): x is number => typeof x === 'number');
  const names = r.filter((x): x is string => typeof x === 'string');
  return names.length ? { kind: 'list', layers, names } : { kind: 'list', layers };
}

export function describeLayers(model: MoeModel): string {
  return describeLayerList(model.layers);
}

/** "0-3,5", or per group "encoder.1,3; decoder.1,3" in models with layer groups. */
export function describeLayerList(layers: readonly SelectableLayer[]): string {
  const groups = [...new Set(layers.map((l) => l.group ?? null))];
  return groups
    .map((g) => {
      const ranges = numberRanges(layers.filter((l) => (l.group ?? null) === g).map((l) => l.layer));
      return g === null ? ranges : `${g}.${ranges}`;
    })
    .join('; ');
}

function numberRanges(ns: readonly number[]): string {
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
