/** The columns of the panel's tables (and so of their CSV exports). */
import type { LayerSummary } from '../src/shared/report-summary';
import type { Column } from './table';
import { fmtCosine } from './summary';
import { expertRows, extraExpertLists, meanCosine, PROJECTIONS, projectionsOf, type ExpertRow, type Proj } from './stats';

const pct = (x: number) => (Number.isFinite(x) ? `${(x * 100).toFixed(2)}%` : '—');
const num = (x: number, d = 4) => (Number.isFinite(x) ? x.toPrecision(d) : '—');

export function layerColumns(): Column<LayerSummary>[] {
  const rank = (p: Proj): Column<LayerSummary> => ({
    key: `rank-${p}`,
    label: `${p} rank`,
    help: `${p}: mean over experts of the 95%-energy rank of the delta, divided by the max rank${p === 'gate' ? ' (the verdict reads this one)' : ''}`,
    value: (l) => l.projections[p]?.rank_ratio ?? NaN,
    format: (l) => pct(l.projections[p]?.rank_ratio ?? NaN),
  });
  return [
    { key: 'layer', label: 'layer', help: 'Decoder layer index as the checkpoint numbers it', value: (l) => l.layer },
    { key: 'verdict', label: 'verdict', help: 'upcycled / native / uncertain for this layer', value: (l) => l.verdict.type },
    { key: 'confidence', label: 'conf.', help: 'Confidence of the layer verdict (see README, Verdict rule)', value: (l) => l.verdict.confidence, format: (l) => `${Math.round(l.verdict.confidence * 100)}%` },
    ...PROJECTIONS.map(rank),
    { key: 'cosine', label: 'mean cos', help: 'Mean pairwise cosine of the raw expert weights, averaged over gate, up, down (the verdict\'s c)', value: (l) => meanCosine(l) ?? NaN, format: (l) => { const c = meanCosine(l); return c === null ? '—' : fmtCosine(c); } },
    { key: 'overlay', label: 'overlay est.', help: 'Estimated overlay compression ratio of this layer\'s experts (upcycled layers only)', value: (l) => l.estimated_overlay_ratio ?? NaN, format: (l) => (l.estimated_overlay_ratio === null ? '—' : `${l.estimated_overlay_ratio.toFixed(2)}x`) },
  ];
}

export function expertColumns(extraNames: readonly string[]): Column<ExpertRow>[] {
  return [
    { key: 'expert', label: 'expert', value: (r) => r.expert },
    { key: 'r90', label: 'r90', help: 'Smallest k whose singular values hold 90% of the delta\'s energy (sum of σ²)', value: (r) => r.r90 },
    { key: 'r95', label: 'r95', help: '... 95% of the energy', value: (r) => r.r95 },
    { key: 'r99', label: 'r99', help: '... 99% of the energy', value: (r) => r.r99 },
    { key: 'weight', label: '||W||', help: 'Frobenius norm of the expert\'s raw weight', value: (r) => r.weightNorm, format: (r) => num(r.weightNorm) },
    { key: 'delta', label: '||W − mean||', help: 'Frobenius norm of the expert\'s delta from the mean expert', value: (r) => r.deltaNorm, format: (r) => num(r.deltaNorm) },
    { key: 'ratio', label: 'delta/weight', help: '||W − mean|| / ||W||: how far the expert is from the mean, relative to its size', value: (r) => r.deltaRatio, format: (r) => num(r.deltaRatio, 3) },
    ...extraNames.map((k) => ({ key: `x-${k}`, label: k.replace(/_/g, ' '), help: `${k}: a per-expert statistic of the report (e.g. the matched-neuron share of provenance)`, value: (r: ExpertRow) => r.extra[k] ?? NaN, format: (r: ExpertRow) => num(r.extra[k] ?? NaN, 3) })),
  ];
}

/** Every expert of every layer and projection, for the CSV export. */
export interface ExpertCsvRow extends ExpertRow {
  readonly layer: number;
  readonly projection: Proj;
}

export function allExpertRows(layers: readonly LayerSummary[]): { rows: ExpertCsvRow[]; extras: string[] } {
  const extras = new Set<string>();
  const rows = [...layers]
    .sort((a, b) => a.layer - b.layer)
    .flatMap((l) =>
      projectionsOf(l).flatMap(([p, a]) => {
        for (const k of Object.keys(extraExpertLists(a))) extras.add(k);
        return expertRows(a).map((r) => ({ ...r, layer: l.layer, projection: p }));
      }),
    );
  return { rows, extras: [...extras] };
}

export function expertCsvColumns(extras: readonly string[]): Column<ExpertCsvRow>[] {
  return [
    { key: 'layer', label: 'layer', value: (r) => r.layer },
    { key: 'projection', label: 'projection', value: (r) => r.projection },
    ...(expertColumns(extras) as Column<ExpertCsvRow>[]),
  ];
}

/** The per-layer CSV holds every number of the layer table, unformatted, plus per-projection cosines. */
export function layerCsvColumns(): Column<LayerSummary>[] {
  return [
    ...layerColumns(),
    ...PROJECTIONS.map((p) => ({ key: `cos-${p}`, label: `${p} mean cosine`, value: (l: LayerSummary) => l.projections[p]?.cosine.mean ?? NaN })),
    ...PROJECTIONS.map((p) => ({ key: `cosstd-${p}`, label: `${p} cosine std`, value: (l: LayerSummary) => l.projections[p]?.cosine.std ?? NaN })),
    ...PROJECTIONS.map((p) => ({ key: `r95-${p}`, label: `${p} mean r95`, value: (l: LayerSummary) => l.projections[p]?.effective_rank_summary['0.95'].mean ?? NaN })),
    ...PROJECTIONS.map((p) => ({ key: `max-${p}`, label: `${p} max rank`, value: (l: LayerSummary) => l.projections[p]?.max_rank ?? NaN })),
  ];
}
