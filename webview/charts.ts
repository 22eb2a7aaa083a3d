/**
 * Vega-Lite specifications for every chart the report shows. Pure functions of report data, so the
 * webview (vega-embed) and the host (static SVG for the HTML export) draw the same charts, and tests
 * can check that a chart holds exactly one mark per data point.
 */
import type { TopLevelSpec } from 'vega-lite';
import type { LayerAnalysis, OverlayReport, ProjectionAnalysis } from '../src/engine/report/schema';

const PROJECTIONS = ['gate', 'up', 'down'] as const;
type Proj = (typeof PROJECTIONS)[number];

/** Colours and fonts taken from the VS Code theme (webview) or a fixed light theme (export). */
export interface ChartTheme {
  readonly foreground: string;
  readonly background: string;
  readonly grid: string;
  readonly font: string;
  readonly fontSize: number;
  readonly accent: string;
  readonly band: string;
  readonly palette: readonly string[];
}

export const EXPORT_THEME: ChartTheme = {
  foreground: '#1f1f1f',
  background: '#ffffff',
  grid: '#e5e5e5',
  font: 'system-ui, sans-serif',
  fontSize: 12,
  accent: '#d13438',
  band: '#999999',
  palette: ['#0078d4', '#e3008c', '#107c10', '#ff8c00', '#5c2d91', '#00b7c3', '#986f0b', '#8764b8'],
};

export function vegaConfig(t: ChartTheme): NonNullable<TopLevelSpec['config']> {
  const text = { labelColor: t.foreground, titleColor: t.foreground, labelFont: t.font, titleFont: t.font };
  return {
    background: t.background,
    font: t.font,
    view: { stroke: t.grid },
    axis: { ...text, gridColor: t.grid, domainColor: t.foreground, tickColor: t.foreground, labelFontSize: t.fontSize - 1, titleFontSize: t.fontSize },
    legend: { ...text, labelFontSize: t.fontSize - 1, titleFontSize: t.fontSize },
    title: { color: t.foreground, font: t.font, fontSize: t.fontSize + 1 },
    header: { labelColor: t.foreground, titleColor: t.foreground },
    range: { category: [...t.palette] },
    text: { color: t.foreground },
  };
}

const projScale = (t: ChartTheme) => ({ domain: [...PROJECTIONS], range: t.palette.slice(0, 3) });

export interface ChartSpec {
  /** Stable id: DOM id in the webview, file name in exports, key in 'rendered' counts. */
  readonly id: string;
  readonly title: string;
  readonly spec: TopLevelSpec;
  /** How many data marks the chart draws (symbols, bars or cells): checked against the rendered SVG. */
  readonly dataMarks: number;
  /** The SVG mark class those data marks get (vega: g.mark-<type>). */
  readonly markClass: 'mark-symbol' | 'mark-rect' | 'mark-line';
}

function projectionsOf(l: LayerAnalysis): [Proj, ProjectionAnalysis][] {
  return PROJECTIONS.flatMap((p) => (l.projections[p] ? [[p, l.projections[p]] as [Proj, ProjectionAnalysis]] : []));
}

/** Effective-rank ratio (mean 95% rank / max rank) per layer and projection. Clicking a point drills down. */
export function rankRatioChart(layers: readonly LayerAnalysis[], t: ChartTheme, id = 'rank-ratio'): ChartSpec {
  const values = layers.flatMap((l) => projectionsOf(l).map(([p, a]) => ({ layer: l.layer, projection: p, rank_ratio: a.rank_ratio, verdict: l.verdict.type })));
  return {
    id,
    title: 'Effective-rank ratio per layer (95% energy)',
    dataMarks: values.length,
    markClass: 'mark-symbol',
    spec: {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      width: 'container',
      height: 220,
      config: vegaConfig(t),
      data: { values },
      encoding: {
        x: { field: 'layer', type: 'ordinal', title: 'MoE layer' },
        y: { field: 'rank_ratio', type: 'quantitative', title: 'rank ratio (r95 / max rank)', scale: { domain: [0, 1] }, axis: { format: '.0%' } },
        color: { field: 'projection', type: 'nominal', scale: projScale(t), title: 'projection' },
      },
      layer: [
        { mark: { type: 'line', strokeWidth: 1.5 } },
        {
          mark: { type: 'point', filled: true, size: 70, cursor: 'pointer' },
          encoding: {
            tooltip: [
              { field: 'layer', type: 'ordinal' },
              { field: 'projection', type: 'nominal' },
              { field: 'rank_ratio', type: 'quantitative', format: '.2%' },
              { field: 'verdict', type: 'nominal' },
            ],
          },
        },
      ],
    },
  };
}

/** Mean pairwise cosine of raw expert weights per layer and projection. */
export function cosineChart(layers: readonly LayerAnalysis[], t: ChartTheme, id = 'cosine'): ChartSpec {
  const values = layers.flatMap((l) => projectionsOf(l).map(([p, a]) => ({ layer: l.layer, projection: p, cosine: a.cosine.mean, std: a.cosine.std })));
  return {
    id,
    title: 'Mean pairwise cosine similarity of experts per layer',
    dataMarks: values.length,
    markClass: 'mark-rect',
    spec: {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      width: 'container',
      height: 220,
      config: vegaConfig(t),
      data: { values },
      mark: { type: 'bar', cursor: 'pointer' },
      encoding: {
        x: { field: 'layer', type: 'ordinal', title: 'MoE layer' },
        xOffset: { field: 'projection', sort: [...PROJECTIONS] },
        y: { field: 'cosine', type: 'quantitative', title: 'mean cosine', scale: { domain: [Math.min(0, ...values.map((v) => v.cosine)), 1] } },
        color: { field: 'projection', type: 'nominal', scale: projScale(t) },
        tooltip: [
          { field: 'layer', type: 'ordinal' },
          { field: 'projection', type: 'nominal' },
          { field: 'cosine', type: 'quantitative', format: '.4f' },
          { field: 'std', type: 'quantitative', format: '.4f', title: 'std over pairs' },
        ],
      },
    },
  };
}

/**
 * Singular-value decay of each analysed expert's delta (log y), with the mean 90/95/99% ranks as
 * rules and everything under singular_value_floor shaded: below the Gram method's resolution.
 */
export function spectrumChart(layer: LayerAnalysis, proj: Proj, t: ChartTheme): ChartSpec | null {
  const a = layer.projections[proj];
  if (!a) return null;
  const experts = Array.isArray(a.experts_analyzed) ? (a.experts_analyzed as readonly number[]) : a.singular_values.map((_, i) => i);
  const index = a.singular_value_index;
  const values = a.singular_values.flatMap((sv, e) =>
    // log scale: exact zeros cannot be drawn; they lie under the floor band anyway
    sv.flatMap((s, i) => (s > 0 ? [{ expert: `expert ${experts[e] ?? e}`, k: (index ? index[i]! : i) + 1, sigma: s }] : [])),
  );
  const positive = values.map((v) => v.sigma);
  const ymin = positive.length > 0 ? Math.min(...positive, a.singular_value_floor || Infinity) : 1e-8;
  const ranks = (['0.9', '0.95', '0.99'] as const).map((q) => ({ energy: `${Math.round(Number(q) * 100)}%`, k: a.effective_rank_summary[q].mean }));
  const floor = a.singular_value_floor;
  return {
    id: `spectrum-${layer.layer}-${proj}`,
    title: `Layer ${layer.layer} ${proj}: singular values of expert deltas`,
    dataMarks: new Set(values.map((v) => v.expert)).size,
    markClass: 'mark-line',
    spec: {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      width: 'container',
      height: 240,
      config: vegaConfig(t),
      layer: [
        ...(floor > 0
          ? [
              {
                data: { values: [{ lo: ymin / 2, hi: floor, label: 'below resolution' }] },
                mark: { type: 'rect' as const, color: t.band, opacity: 0.18 },
                encoding: { y: { field: 'lo', type: 'quantitative' as const }, y2: { field: 'hi' } },
              },
              {
                data: { values: [{ y: floor, label: 'below resolution' }] },
                mark: { type: 'text' as const, align: 'right' as const, baseline: 'top' as const, dy: 3, x: { expr: 'width - 4' }, color: t.foreground, opacity: 0.7 },
                encoding: { y: { field: 'y', type: 'quantitative' as const }, text: { field: 'label' } },
              },
            ]
          : []),
        {
          data: { values },
          mark: { type: 'line', strokeWidth: 1, opacity: 0.75 },
          encoding: {
            x: { field: 'k', type: 'quantitative', title: 'index k (1-based)', scale: { type: 'log' } },
            y: { field: 'sigma', type: 'quantitative', title: 'singular value', scale: { type: 'log', domain: [ymin / 2, Math.max(...positive, 1e-8) * 1.5] } },
            color: { field: 'expert', type: 'nominal', legend: values.length > 0 && experts.length <= 16 ? {} : null },
            detail: { field: 'expert' },
          },
        },
        {
          data: { values: ranks },
          mark: { type: 'rule', color: t.accent, strokeDash: [4, 3] },
          encoding: { x: { field: 'k', type: 'quantitative' }, tooltip: [{ field: 'energy' }, { field: 'k', title: 'mean rank', format: '.1f' }] },
        },
        {
          data: { values: ranks },
          mark: { type: 'text', color: t.accent, angle: 0, dx: 4, align: 'left', y: 8 },
          encoding: { x: { field: 'k', type: 'quantitative' }, text: { field: 'energy' } },
        },
      ],
    },
  };
}

/** E x E cosine matrix of one projection. */
export function cosineHeatmap(layer: LayerAnalysis, proj: Proj, t: ChartTheme): ChartSpec | null {
  const a = layer.projections[proj];
  if (!a) return null;
  const m = a.cosine.matrix;
  const values = m.flatMap((row, i) => row.map((c, j) => ({ i, j, cosine: c })));
  return {
    id: `heatmap-${layer.layer}-${proj}`,
    title: `Layer ${layer.layer} ${proj}: expert cosine similarity`,
    dataMarks: values.length,
    markClass: 'mark-rect',
    spec: {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      width: 260,
      height: 260,
      config: vegaConfig(t),
      data: { values },
      mark: { type: 'rect' },
      encoding: {
        x: { field: 'j', type: 'ordinal', title: 'expert', axis: m.length > 24 ? { labels: false, ticks: false } : {} },
        y: { field: 'i', type: 'ordinal', title: 'expert', axis: m.length > 24 ? { labels: false, ticks: false } : {} },
        color: { field: 'cosine', type: 'quantitative', scale: { scheme: 'blueorange', domain: [-1, 1] } },
        tooltip: [{ field: 'i', title: 'expert i' }, { field: 'j', title: 'expert j' }, { field: 'cosine', type: 'quantitative', format: '.4f' }],
      },
    },
  };
}

/** Frobenius norms of each expert's raw weight and of its delta from the mean expert. */
export function normsChart(layer: LayerAnalysis, proj: Proj, t: ChartTheme): ChartSpec | null {
  const a = layer.projections[proj];
  if (!a) return null;
  const values = [
    ...a.expert_norms.map((n, e) => ({ expert: e, kind: 'weight', norm: n })),
    ...a.delta_norms.map((n, e) => ({ expert: e, kind: 'delta', norm: n })),
  ];
  return {
    id: `norms-${layer.layer}-${proj}`,
    title: `Layer ${layer.layer} ${proj}: expert norms`,
    dataMarks: values.length,
    markClass: 'mark-rect',
    spec: {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      width: 'container',
      height: 180,
      config: vegaConfig(t),
      data: { values },
      mark: { type: 'bar' },
      encoding: {
        x: { field: 'expert', type: 'ordinal', title: 'expert', axis: a.expert_norms.length > 32 ? { labels: false } : {} },
        xOffset: { field: 'kind' },
        y: { field: 'norm', type: 'quantitative', title: 'Frobenius norm' },
        color: { field: 'kind', type: 'nominal', scale: { domain: ['weight', 'delta'], range: [t.palette[0]!, t.palette[3]!] } },
        tooltip: [{ field: 'expert' }, { field: 'kind' }, { field: 'norm', type: 'quantitative', format: '.4g' }],
      },
    },
  };
}

/** Overlay: relative reconstruction error of each expert, per layer and projection. */
export function overlayErrorChart(o: OverlayReport, t: ChartTheme): ChartSpec {
  const values = o.layers.flatMap((l) =>
    PROJECTIONS.flatMap((p) => (l.projections[p]?.relative_error ?? []).map((err, e) => ({ layer: `layer ${l.layer}`, projection: p, expert: e, error: err }))),
  );
  return {
    id: 'overlay-error',
    title: 'Overlay: relative weight error per expert',
    dataMarks: values.length,
    markClass: 'mark-symbol',
    spec: {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      width: 'container',
      height: 200,
      config: vegaConfig(t),
      data: { values },
      mark: { type: 'point', filled: true },
      encoding: {
        x: { field: 'expert', type: 'quantitative', title: 'expert' },
        y: { field: 'error', type: 'quantitative', title: 'relative error ||W - W_r|| / ||W||' },
        color: { field: 'projection', type: 'nominal', scale: projScale(t) },
        shape: { field: 'layer', type: 'nominal' },
        tooltip: [{ field: 'layer' }, { field: 'projection' }, { field: 'expert' }, { field: 'error', type: 'quantitative', format: '.3e' }],
      },
    },
  };
}

/** Overlay: stored bytes, original vs overlay, per layer (or the whole model for estimate). */
export function overlayStorageChart(o: OverlayReport, t: ChartTheme): ChartSpec {
  const perLayer = o.layers.flatMap((l) => {
    const orig = l.original_bytes ?? PROJECTIONS.reduce((s, p) => s + (l.projections[p]?.original_bytes ?? 0), 0);
    const over = l.overlay_bytes ?? PROJECTIONS.reduce((s, p) => s + (l.projections[p]?.overlay_bytes ?? 0), 0);
    return [
      { group: `layer ${l.layer}`, kind: 'original', bytes: orig },
      { group: `layer ${l.layer}`, kind: 'overlay', bytes: over },
    ];
  });
  const values = [...perLayer, { group: 'total', kind: 'original', bytes: o.totals.original_bytes }, { group: 'total', kind: 'overlay', bytes: o.totals.overlay_bytes }];
  return {
    id: 'overlay-storage',
    title: `Overlay storage (ratio ${o.totals.ratio.toFixed(2)}x)`,
    dataMarks: values.length,
    markClass: 'mark-rect',
    spec: {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      width: 'container',
      height: 180,
      config: vegaConfig(t),
      data: { values },
      mark: { type: 'bar' },
      encoding: {
        y: { field: 'group', type: 'nominal', title: null, sort: null },
        yOffset: { field: 'kind' },
        x: { field: 'bytes', type: 'quantitative', title: 'bytes', axis: { format: '~s' } },
        color: { field: 'kind', type: 'nominal', scale: { domain: ['original', 'overlay'], range: [t.palette[0]!, t.palette[2]!] } },
        tooltip: [{ field: 'group' }, { field: 'kind' }, { field: 'bytes', type: 'quantitative', format: ',' }],
      },
    },
  };
}

/** The summary charts of one analysis (complete report or streamed layers). */
export function summaryCharts(layers: readonly LayerAnalysis[], t: ChartTheme, prefix = ''): ChartSpec[] {
  if (layers.length === 0) return [];
  const sorted = [...layers].sort((a, b) => a.layer - b.layer);
  return [rankRatioChart(sorted, t, `${prefix}rank-ratio`), cosineChart(sorted, t, `${prefix}cosine`)];
}

/** The drill-down charts of one layer. */
export function layerCharts(layer: LayerAnalysis, t: ChartTheme): ChartSpec[] {
  return PROJECTIONS.flatMap((p) => [spectrumChart(layer, p, t), cosineHeatmap(layer, p, t), normsChart(layer, p, t)]).filter((c): c is ChartSpec => c !== null);
}

