import { MoeInspectorError } from '../errors';
import type { MoeLayerLayout, MoeModel } from '../layouts/types';
import type { LayerSelection } from '../../shared/messages';

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
  if (sel.kind === 'all') return [...model.layers];
  if (sel.kind === 'first') return [model.layers[0]!];
  const picked = new Set<MoeLayerLayout>();
  const pick = (what: string, hits: MoeLayerLayout[]): void => {
    if (hits.length === 0) throw new MoeInspectorError('usage', `layer ${what} is not a MoE layer of this ${model.family} model; MoE layers: ${describeLayers(model)}`);
    for (const h of hits) picked.add(h);
  };
  for (const n of sel.layers) pick(String(n), model.layers.filter((l) => l.layer === n));
  for (const name of sel.names ?? []) pick(name, model.layers.filter((l) => (name.endsWith('.*') ? `${l.group}.*` === name : l.name === name)));
  return model.layers.filter((l) => picked.has(l));
}

/** "0-3,5", or per group "encoder.1,3; decoder.1,3" in models with layer groups. */
export function describeLayers(model: MoeModel): string {
  const groups = [...new Set(model.layers.map((l) => l.group))];
  return groups
    .map((g) => {
      const ranges = numberRanges(model.layers.filter((l) => l.group === g).map((l) => l.layer as number));
      return g === null ? ranges : `${g}.${ranges}`;
    })
    .join('; ');
}

function numberRanges(ns: number[]): string {
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
