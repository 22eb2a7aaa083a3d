/**
 * Numbers the panel shows, pulled out of report summaries: pure functions, shared by the panel,
 * the CSV export and the HTML export. Fields other modules add later (provenance statistics,
 * per-expert shares) are found generically: numeric scalars and per-expert lists not known here.
 */
import type { LayerSummary } from '../src/shared/report-summary';

export const PROJECTIONS = ['gate', 'up', 'down'] as const;
export type Proj = (typeof PROJECTIONS)[number];
export type ProjectionSummary = NonNullable<LayerSummary['projections'][Proj]>;

export function projectionsOf(l: LayerSummary): [Proj, ProjectionSummary][] {
  return PROJECTIONS.flatMap((p) => (l.projections[p] ? [[p, l.projections[p]!] as [Proj, ProjectionSummary]] : []));
}

/** Expert indices of a projection (experts_analyzed is a list, or a count in old reports). */
export function expertIds(a: ProjectionSummary): number[] {
  const x = a.experts_analyzed as unknown;
  if (Array.isArray(x)) return x as number[];
  const n = typeof x === 'number' ? x : a.expert_norms.length;
  return Array.from({ length: n }, (_, i) => i);
}

/** Mean over projections of the mean pairwise cosine: the verdict's `c`. */
export function meanCosine(l: LayerSummary): number | null {
  const c = projectionsOf(l).map(([, a]) => a.cosine.mean);
  return c.length ? c.reduce((s, x) => s + x, 0) / c.length : null;
}

const KNOWN_SCALARS = new Set(['max_rank', 'rank_ratio', 'singular_value_floor']);
const KNOWN_LISTS = new Set(['expert_norms', 'delta_norms', 'experts_analyzed', 'shape', 'singular_value_index']);

/** Extra per-projection numeric statistics (path -> value), e.g. provenance fields, one object level deep. */
export function extraScalars(a: ProjectionSummary): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(a as Record<string, unknown>)) {
    if (typeof v === 'number' && !KNOWN_SCALARS.has(k)) out[k] = v;
    else if (v && typeof v === 'object' && !Array.isArray(v) && k !== 'cosine' && !k.startsWith('effective_rank')) {
      for (const [k2, v2] of Object.entries(v as Record<string, unknown>)) if (typeof v2 === 'number') out[`${k}.${k2}`] = v2;
    }
  }
  return out;
}

/** Extra per-expert lists (name -> list of length E), e.g. a matched-neuron share per expert. */
export function extraExpertLists(a: ProjectionSummary): Record<string, number[]> {
  const n = expertIds(a).length;
  const out: Record<string, number[]> = {};
  const take = (name: string, v: unknown) => {
    if (Array.isArray(v) && v.length === n && v.every((x) => typeof x === 'number')) out[name] = v as number[];
  };
  for (const [k, v] of Object.entries(a as Record<string, unknown>)) {
    if (KNOWN_LISTS.has(k)) continue;
    if (Array.isArray(v)) take(k, v);
    else if (v && typeof v === 'object' && k !== 'effective_rank' && k !== 'cosine') for (const [k2, v2] of Object.entries(v as Record<string, unknown>)) take(`${k}.${k2}`, v2);
  }
  return out;
}

/** One row of the per-expert table. */
export interface ExpertRow {
  readonly expert: number;
  readonly r90: number;
  readonly r95: number;
  readonly r99: number;
  readonly weightNorm: number;
  readonly deltaNorm: number;
  readonly deltaRatio: number;
  readonly extra: Readonly<Record<string, number>>;
}

export function expertRows(a: ProjectionSummary): ExpertRow[] {
  const ids = expertIds(a);
  const extras = extraExpertLists(a);
  return ids.map((expert, j) => {
    const w = a.expert_norms[j] ?? NaN;
    const d = a.delta_norms[j] ?? NaN;
    const extra: Record<string, number> = {};
    for (const [k, v] of Object.entries(extras)) extra[k] = v[j]!;
    return {
      expert,
      r90: a.effective_rank['0.9'][j] ?? NaN,
      r95: a.effective_rank['0.95'][j] ?? NaN,
      r99: a.effective_rank['0.99'][j] ?? NaN,
      weightNorm: w,
      deltaNorm: d,
      deltaRatio: w > 0 ? d / w : NaN,
      extra,
    };
  });
}

/** [min, max] of finite values, widened when flat so a colour scale still has a range. */
export function extent(values: readonly number[]): [number, number] {
  const v = values.filter(Number.isFinite);
  if (v.length === 0) return [0, 1];
  let lo = Math.min(...v);
  let hi = Math.max(...v);
  if (hi - lo < 1e-12 * Math.max(1, Math.abs(hi))) {
    const pad = Math.abs(hi) * 0.05 || 0.01;
    lo -= pad;
    hi += pad;
  }
  return [lo, hi];
}
