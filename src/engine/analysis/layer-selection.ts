import { MoeInspectorError } from '../errors';
import type { MoeLayerLayout, MoeModel } from '../layouts/types';
import type { LayerSelection } from '../../shared/messages';

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
  if (sel.kind === 'all') return [...model.layers];
  if (sel.kind === 'first') return [model.layers[0]!];
  const byIndex = new Map(model.layers.map((l) => [l.layer as number, l]));
  return sel.layers.map((n) => {
    const l = byIndex.get(n);
    if (!l) {
      throw new MoeInspectorError('usage', `layer ${n} is not a MoE layer of this ${model.family} model; MoE layers: ${describeLayers(model)}`);
    }
    return l;
  });
}

export function describeLayers(model: MoeModel): string {
  const ns = model.layers.map((l) => l.layer as number);
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
