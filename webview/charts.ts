/**
 * Vega-Lite specifications for every chart the report shows. Pure functions of report data, so the
 * webview (vega-embed) and the HTML export (static SVG) draw the same charts, and tests can check
 * that a chart holds exactly one mark per data point.
 *
 * Colour choices: projections use three Okabe-Ito colours (blue, orange, reddish purple: no
 * red/green pair, distinct for the common colour-vision deficiencies); continuous values use
 * viridis (perceptually uniform, colour-blind safe, readable in light and dark themes); experts
 * get Okabe-Ito up to 8, above that a viridis gradient by expert index (a categorical palette
 * cannot give 64 distinguishable colours: the per-expert table and the selection highlight do that).
 */
import type { TopLevelSpec } from 'vega-lite';
import type { LayerAnalysis, OverlayReport, VerdictThresholds } from '../src/engine/report/schema';
import type { LayerSummary } from '../src/shared/report-summary';
import { expertIds, extent, PROJECTIONS, type Proj } from './stats';
import type { CanvasHeatmap } from './canvas-heatmap';

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

/** Okabe & Ito (2008), "Color Universal Design": safe for protan, deutan and tritan readers. */
export const OKABE_ITO = ['#0072B2', '#E69F00', '#CC79A7', '#009E73', '#56B4E9', '#D55E00', '#F0E442', '#999999'] as const;

export const EXPORT_THEME: ChartTheme = {
  foreground: '#1f1f1f',
  background: '#ffffff',
  grid: '#e5e5e5',
  font: 'system-ui, sans-serif',
  fontSize: 12,
  accent: '#D55E00',
  band: '#999999',
  palette: OKABE_ITO,
};

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';

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
    concat: { spacing: 6 },
  };
}

const projScale = () => ({ domain: [...PROJECTIONS], range: OKABE_ITO.slice(0, 3) });

export interface ChartSpec {
  /** Stable id: DOM id in the webview, file name in exports, key in 'rendered' counts. */
  readonly id: string;
  readonly title: string;
  readonly spec: TopLevelSpec;
  /** How many data marks the chart draws (symbols, bars or cells): checked against the rendered SVG. */
  readonly dataMarks: number;
  /** The SVG mark class those data marks get (vega: g.mark-<type>). */
  readonly markClass: 'mark-symbol' | 'mark-rect' | 'mark-line' | 'mark-rect.cells_marks';
  /** Big charts draw on a canvas (thousands of SVG nodes would slow the panel down). */
  readonly renderer?: 'svg' | 'canvas';
  /** What a click on a mark means (the webview wires it). */
  readonly click?: 'layer' | 'layer-expert' | 'expert';
  /** A few words under the chart: what it shows and how to read it. */
  readonly help?: string;
  /** Big heatmaps: drawn directly on a canvas in the panel (the spec still serves exports). */
  readonly canvas?: CanvasHeatmap;
}

/** Above this many cells a heatmap is drawn directly on a canvas in the panel. */
const CANVAS_HEATMAP_ABOVE = 1024;

/** Above this many marks a chart draws on a canvas. */
const CANVAS_ABOVE = 4000;

export type OverviewMetric = { readonly key: string; readonly label: string; readonly format: string; readonly get: (l: LayerSummary, p: Proj) => number | null; readonly thresholds: readonly { value: number; label: string }[]; readonly log?: boolean };

export function rankMetric(th: VerdictThresholds): OverviewMetric {
  return {
    key: 'rank',
    label: 'rank ratio (mean r95 / max rank)',
    format: '.1%',
    get: (l, p) => l.projections[p]?.rank_ratio ?? null,
    thresholds: [
      { value: th.upcycled_max_rank_ratio, label: `upcycled below ${fmtPct(th.upcycled_max_rank_ratio)} (gate)` },
      { value: th.native_min_rank_ratio, label: `native above ${fmtPct(th.native_min_rank_ratio)} (gate)` },
    ],
    log: true,
  };
}

export function cosineMetric(th: VerdictThresholds): OverviewMetric {
  return {
    key: 'cosine',
    label: 'mean pairwise cosine of experts',
    format: '.3f',
    get: (l, p) => l.projections[p]?.cosine.mean ?? null,
    thresholds: [
      { value: th.native_max_cosine, label: `native below ${th.native_max_cosine}` },
      { value: th.upcycled_min_cosine, label: `upcycled above ${th.upcycled_min_cosine}` },
    ],
  };
}

/** A statistic another module added to each projection (e.g. provenance): no thresholds known here. */
export function extraMetric(path: string): OverviewMetric {
  const [head, tail] = path.split('.') as [string, string | undefined];
  return {
    key: `x-${path.replace(/\W+/g, '-')}`,
    label: path.replace(/_/g, ' '),
    format: '.3g',
    get: (l, p) => {
      const a = l.projections[p] as Record<string, unknown> | undefined;
      const v = tail === undefined ? a?.[head] : (a?.[head] as Record<string, unknown> | undefined)?.[tail];
      return typeof v === 'number' ? v : null;
    },
    thresholds: [],
  };
}

/** A little room at both ends, so the extreme values are not drawn on the frame. */
function padded([lo, hi]: [number, number], log: boolean): [number, number] {
  if (log) return [lo / 1.25, hi * 1.25];
  const pad = (hi - lo) * 0.04;
  return [lo - pad, hi + pad];
}

/** A number format with enough digits to tell the ends of a narrow range apart (2.3981 vs 2.4012). */
export function rangeFormat([lo, hi]: [number, number]): string {
  const span = Math.abs(hi - lo) / Math.max(Math.abs(hi), Math.abs(lo), 1e-300);
  const digits = Math.min(8, Math.max(3, Math.ceil(-Math.log10(span || 1e-8)) + 2));
  return `.${digits}~g`;
}

/** Percent with enough decimals to tell the ends of a narrow range apart (61.0% vs 61.1% -> 60.97% vs 61.06%). */
export function rangePercentFormat([lo, hi]: [number, number]): string {
  const span = Math.abs(hi - lo) * 100;
  return `.${Math.min(4, Math.max(1, Math.ceil(-Math.log10(span || 1e-4)) + 1))}%`;
}

const fmtPct = (x: number) => `${+(x * 100).toFixed(2)}%`;

/**
 * Layers x projections heatmap of one statistic, coloured over the data's own range, with a strip
 * below that places every value on an axis holding the verdict thresholds as labelled rules: the
 * colour scale is the data's, the thresholds say where the verdict lines lie relative to it.
 * `domain` (compare: both models' values) overrides the data's own range.
 */
export function overviewHeatmap(layers: readonly LayerSummary[], m: OverviewMetric, t: ChartTheme, id: string, domain?: [number, number]): ChartSpec {
  const values = [...layers]
    .sort((a, b) => a.layer - b.layer)
    .flatMap((l) => PROJECTIONS.flatMap((p) => {
      const v = m.get(l, p);
      return v === null || !Number.isFinite(v) ? [] : [{ layer: l.layer, projection: p, value: v, verdict: l.verdict.type }];
    }));
  const dom = domain ?? extent(values.map((v) => v.value));
  const log = m.log === true && dom[0] > 0 && dom[1] / dom[0] > 8;
  // the strip's axis holds the data and the thresholds, so the reader sees how far the data lie from them
  const stripLog = m.log === true && Math.min(dom[0], ...m.thresholds.map((x) => x.value)) > 0;
  const stripDom = padded(extent([...dom, ...m.thresholds.map((x) => x.value)]), stripLog);
  const rightHalf = (v: number) => (stripLog ? Math.log(v / stripDom[0]) / Math.log(stripDom[1] / stripDom[0]) : (v - stripDom[0]) / (stripDom[1] - stripDom[0])) > 0.6;
  const nLayers = new Set(values.map((v) => v.layer)).size;
  const tooltip = [
    { field: 'layer', type: 'ordinal' as const },
    { field: 'projection', type: 'nominal' as const },
    { field: 'value', type: 'quantitative' as const, format: m.format, title: m.key === 'rank' ? 'rank ratio' : m.key === 'cosine' ? 'mean cosine' : m.label },
    { field: 'verdict', type: 'nominal' as const, title: 'layer verdict' },
  ];
  const legendFormat = m.key === 'rank' ? rangePercentFormat(dom) : rangeFormat(dom);
  const color = { field: 'value', type: 'quantitative' as const, title: null, scale: { scheme: 'viridis', domain: dom, ...(log ? { type: 'log' as const } : {}) }, legend: { orient: 'right' as const, format: legendFormat, gradientLength: 90 } };
  const spec: TopLevelSpec = {
    $schema: SCHEMA,
    config: vegaConfig(t),
    data: { values },
    vconcat: [
      {
        name: 'cells',
        width: 'container',
        height: 3 * 22,
        mark: { type: 'rect', cursor: 'pointer', stroke: t.background === 'transparent' ? null : t.background, strokeWidth: 0.5 },
        encoding: {
          x: { field: 'layer', type: 'ordinal', title: 'MoE layer', axis: nLayers > 40 ? { labelExpr: 'datum.value % 4 === 0 ? datum.label : ""', labelAngle: 0 } : { labelAngle: 0 } },
          y: { field: 'projection', type: 'nominal', sort: [...PROJECTIONS], title: null },
          color,
          tooltip,
        },
      },
      {
        width: 'container',
        height: 34,
        layer: [
          {
            mark: { type: 'tick', thickness: 2, size: 14, cursor: 'pointer' },
            encoding: {
              x: { field: 'value', type: 'quantitative', title: `${m.label}: every layer and projection, with the verdict thresholds`, scale: { domain: stripDom, nice: false, ...(stripLog ? { type: 'log' as const } : {}) }, axis: { format: m.format, tickCount: 6 } },
              color: { ...color, legend: null },
              tooltip,
            },
          },
          ...(m.thresholds.length
            ? [
                { data: { values: m.thresholds }, mark: { type: 'rule' as const, color: t.accent, strokeDash: [4, 3], strokeWidth: 1.5 }, encoding: { x: { field: 'value', type: 'quantitative' as const } } },
                // labels left of rules in the right part of the axis, right of them elsewhere: they stay inside the chart
                ...[false, true].map((right) => ({
                  data: { values: m.thresholds.map((x, i) => ({ ...x, dy: i })).filter((x) => rightHalf(x.value) === right) },
                  mark: { type: 'text' as const, color: t.accent, align: right ? ('right' as const) : ('left' as const), dx: right ? -3 : 3, fontSize: t.fontSize - 2, baseline: 'top' as const },
                  encoding: { x: { field: 'value', type: 'quantitative' as const }, y: { value: 0 }, yOffset: { field: 'dy', type: 'quantitative' as const, scale: { domain: [0, 1], range: [0, 12] }, legend: null }, text: { field: 'label' } },
                })),
              ]
            : []),
        ],
      },
    ],
  } as TopLevelSpec;
  return {
    id,
    title: `${capital(m.label)} — layers x projections`,
    dataMarks: values.length,
    markClass: 'mark-rect.cells_marks',
    click: 'layer',
    spec,
    help:
      m.key === 'rank'
        ? 'Each cell: the mean over experts of the 95%-energy rank of (expert − mean expert), divided by the largest possible rank. Copies of one dense FFN differ by low-rank deltas (small ratio); independently trained experts are full-rank. The verdict reads the gate row. Colours span the data; the strip places each value against the thresholds (dashed). Click a cell to open its layer.'
        : m.key === 'cosine'
          ? 'Each cell: the mean cosine similarity of the flattened raw weights over all expert pairs. Copies of one FFN stay alike (high); independent experts are near 0. The verdict uses the mean over gate, up and down. Colours span the data; the strip shows the thresholds. Click a cell to open its layer.'
          : 'A statistic added to the report by another analysis (see the README for its meaning); colours span the data.',
  };
}

export type ExpertMetric = 'delta_norm' | 'r95' | 'delta_ratio';
export const EXPERT_METRICS: Readonly<Record<ExpertMetric, string>> = { delta_norm: 'delta norm ||W_j − mean||', r95: '95% rank of the delta', delta_ratio: 'delta / weight norm' };

/** Layers x experts heatmap of one per-expert statistic of one projection. */
export function expertsHeatmap(layers: readonly LayerSummary[], proj: Proj, metric: ExpertMetric, t: ChartTheme, id: string, selected: number | null): ChartSpec {
  const values = [...layers]
    .sort((a, b) => a.layer - b.layer)
    .flatMap((l) => {
      const a = l.projections[proj];
      if (!a) return [];
      return expertIds(a).map((e, j) => {
        const w = a.expert_norms[j] ?? NaN;
        const d = a.delta_norms[j] ?? NaN;
        const v = metric === 'delta_norm' ? d : metric === 'r95' ? (a.effective_rank['0.95'][j] ?? NaN) : w > 0 ? d / w : NaN;
        return { layer: l.layer, expert: e, value: v };
      });
    })
    .filter((v) => Number.isFinite(v.value));
  const nExperts = new Set(values.map((v) => v.expert)).size;
  const nLayers = new Set(values.map((v) => v.layer)).size;
  const big = values.length > CANVAS_ABOVE;
  const dom = extent(values.map((v) => v.value));
  const byCell = new Map(values.map((v) => [`${v.layer}:${v.expert}`, v.value]));
  const fmt = metric === 'r95' ? (v: number) => String(v) : (v: number) => v.toPrecision(Number(rangeFormat(dom).slice(1, -2)));
  return {
    ...(values.length > CANVAS_HEATMAP_ABOVE
      ? {
          canvas: {
            rows: [...new Set(values.map((v) => v.layer))],
            cols: [...new Set(values.map((v) => v.expert))].sort((a, b) => a - b),
            rowTitle: 'layer',
            colTitle: 'expert',
            value: (r: number, c: number) => byCell.get(`${r}:${c}`),
            domain: dom,
            valueLabel: EXPERT_METRICS[metric],
            format: fmt,
            square: false,
            highlight: selected !== null ? { col: selected } : null,
          },
        }
      : {}),
    id,
    title: `${capital(EXPERT_METRICS[metric])} — layers x experts (${proj})`,
    dataMarks: values.length,
    markClass: 'mark-rect',
    renderer: big ? 'canvas' : 'svg',
    click: 'layer-expert',
    help: 'One cell per expert and layer. An expert far from the others (bright column) or a layer whose experts all differ (bright row) stands out. Click a cell to open that layer with the expert selected.',
    spec: {
      $schema: SCHEMA,
      width: 'container',
      height: Math.min(360, Math.max(60, nLayers * 9)),
      config: vegaConfig(t),
      data: { values },
      layer: [
        {
          mark: { type: 'rect', cursor: 'pointer' },
          encoding: {
            x: { field: 'expert', type: 'ordinal', title: 'expert', axis: nExperts > 32 ? { labelExpr: 'datum.value % 16 === 0 ? datum.label : ""', labelAngle: 0 } : { labelAngle: 0 } },
            y: { field: 'layer', type: 'ordinal', title: 'MoE layer', axis: nLayers > 24 ? { labelExpr: 'datum.value % 4 === 0 ? datum.label : ""' } : {} },
            color: { field: 'value', type: 'quantitative', title: null, scale: { scheme: 'viridis', domain: extent(values.map((v) => v.value)) }, legend: { format: metric === 'r95' ? 'd' : rangeFormat(extent(values.map((v) => v.value))), gradientLength: 90 } },
            tooltip: [{ field: 'layer', type: 'ordinal' }, { field: 'expert', type: 'ordinal' }, { field: 'value', type: 'quantitative', format: '.4g', title: EXPERT_METRICS[metric] }],
          },
        },
        ...(selected !== null
          ? [{ data: { values: [{ expert: selected }] }, mark: { type: 'rect' as const, fill: null, stroke: t.accent, strokeWidth: 2 }, encoding: { x: { field: 'expert', type: 'ordinal' as const } } }]
          : []),
      ],
    } as TopLevelSpec,
  };
}

/** Compare: B − A per layer and projection for rank ratio and cosine, on one zero line. */
export function differenceChart(a: readonly LayerSummary[], b: readonly LayerSummary[], t: ChartTheme): ChartSpec {
  const byLayer = new Map(a.map((l) => [l.layer, l]));
  const values = b.flatMap((lb) => {
    const la = byLayer.get(lb.layer);
    if (!la) return [];
    return PROJECTIONS.flatMap((p) => {
      const pa = la.projections[p];
      const pb = lb.projections[p];
      if (!pa || !pb) return [];
      return [
        { layer: lb.layer, projection: p, statistic: 'rank ratio', diff: pb.rank_ratio - pa.rank_ratio, a: pa.rank_ratio, b: pb.rank_ratio },
        { layer: lb.layer, projection: p, statistic: 'mean cosine', diff: pb.cosine.mean - pa.cosine.mean, a: pa.cosine.mean, b: pb.cosine.mean },
      ];
    });
  });
  return {
    id: 'difference',
    title: 'Difference B − A per layer (layers analysed in both)',
    dataMarks: values.length,
    markClass: 'mark-rect',
    help: 'Second model minus first model, per MoE layer and projection. Bars above zero: B has the larger rank ratio (less upcycled-like) or cosine (more alike experts).',
    spec: {
      $schema: SCHEMA,
      config: vegaConfig(t),
      data: { values },
      facet: { row: { field: 'statistic', type: 'nominal', title: null, header: { labelAngle: 0, labelAlign: 'left', labelAnchor: 'start', labelOrient: 'top' } } },
      resolve: { scale: { y: 'independent' } },
      spec: {
        width: 'container',
        height: 110,
        layer: [
          {
            mark: { type: 'bar' },
            encoding: {
              x: { field: 'layer', type: 'ordinal', title: 'MoE layer', axis: { labelAngle: 0 } },
              xOffset: { field: 'projection', sort: [...PROJECTIONS] },
              y: { field: 'diff', type: 'quantitative', title: 'B − A' },
              color: { field: 'projection', type: 'nominal', scale: projScale(), title: 'projection' },
              tooltip: [
                { field: 'layer', type: 'ordinal' },
                { field: 'projection', type: 'nominal' },
                { field: 'a', type: 'quantitative', format: '.4f', title: 'A' },
                { field: 'b', type: 'quantitative', format: '.4f', title: 'B' },
                { field: 'diff', type: 'quantitative', format: '+.4f', title: 'B − A' },
              ],
            },
          },
          { mark: { type: 'rule', color: t.foreground, opacity: 0.6 }, encoding: { y: { datum: 0 } } },
        ],
      },
    } as unknown as TopLevelSpec,
  };
}

/** Colour encoding of experts: categorical up to 8 (legend sorted by number), a gradient above. */
function expertColor(ids: readonly number[]) {
  return ids.length <= OKABE_ITO.length
    ? { field: 'expert', type: 'ordinal' as const, scale: { domain: [...ids].sort((x, y) => x - y), range: OKABE_ITO.slice(0, ids.length) }, title: 'expert' }
    : { field: 'expert', type: 'quantitative' as const, scale: { scheme: 'viridis', domain: [Math.min(...ids), Math.max(...ids)] }, title: 'expert', legend: { format: 'd', gradientLength: 120 } };
}

/**
 * Singular-value decay of each expert's delta (log-log), x axis ending at the max rank, the mean
 * 90/95/99% ranks as rules whose labels sit on three rows (they never overlap however close the
 * ranks are), everything under singular_value_floor shaded, hover shows expert, k and sigma.
 */
export function spectrumChart(layer: LayerAnalysis, proj: Proj, t: ChartTheme, selected: number | null, prefix = ''): ChartSpec | null {
  const a = layer.projections[proj];
  if (!a) return null;
  const ids = expertIds(a as never);
  const index = a.singular_value_index;
  const values = a.singular_values.flatMap((sv, e) =>
    // log scale: exact zeros cannot be drawn; they lie under the floor band anyway
    sv.flatMap((s, i) => (s > 0 ? [{ expert: ids[e] ?? e, k: (index ? index[i]! : i) + 1, sigma: s }] : [])),
  );
  const sigmas = values.map((v) => v.sigma);
  const floor = a.singular_value_floor;
  const ymin = sigmas.length > 0 ? Math.min(...sigmas, floor > 0 ? floor : Infinity) : 1e-8;
  const ymax = Math.max(...sigmas, 1e-8);
  const ranks = (['0.9', '0.95', '0.99'] as const).map((q, row) => ({ energy: `${Math.round(Number(q) * 100)}%`, k: Math.max(1, a.effective_rank_summary[q].mean), row, label: `${Math.round(Number(q) * 100)}%: ${a.effective_rank_summary[q].mean.toFixed(1)}` }));
  const xdom = [1, Math.max(2, a.max_rank)];
  const manyPoints = values.length > CANVAS_ABOVE;
  const x = { field: 'k', type: 'quantitative' as const, title: `index k (1-based, max rank ${a.max_rank})`, scale: { type: 'log' as const, domain: xdom, nice: false } };
  const y = { field: 'sigma', type: 'quantitative' as const, title: 'singular value σ_k', scale: { type: 'log' as const, domain: [ymin / 2, ymax * 1.5], nice: false } };
  const dim = selected !== null;
  return {
    id: `${prefix}spectrum-${layer.layer}-${proj}`,
    title: `Layer ${layer.layer} ${proj}: singular values of expert deltas`,
    dataMarks: ids.length,
    markClass: 'mark-line',
    renderer: manyPoints || ids.length > 32 ? 'canvas' : 'svg',
    click: 'expert',
    help: 'σ_k of (expert − mean expert), one line per expert. A copied expert has a few large σ then a drop (its delta has low rank); an independent one decays slowly to the max rank. Dashed rules: the mean 90/95/99%-energy ranks. Shaded: below the method\'s resolution. Hover a point for k and σ; click a line to select its expert.',
    spec: {
      $schema: SCHEMA,
      width: 'container',
      height: 260,
      config: vegaConfig(t),
      layer: [
        ...(floor > 0
          ? [
              {
                data: { values: [{ lo: ymin / 2, hi: floor, label: 'below resolution' }] },
                mark: { type: 'rect' as const, color: t.band, opacity: 0.18 },
                encoding: { y: { field: 'lo', type: 'quantitative' as const, scale: y.scale }, y2: { field: 'hi' } },
              },
            ]
          : []),
        {
          data: { values },
          layer: [
            {
              mark: { type: 'line', strokeWidth: 1.2, cursor: 'pointer' },
              encoding: {
                x,
                y,
                color: expertColor(ids),
                detail: { field: 'expert' },
                opacity: dim ? { condition: { test: `datum.expert === ${selected}`, value: 1 }, value: 0.15 } : { value: 0.8 },
                strokeWidth: dim ? { condition: { test: `datum.expert === ${selected}`, value: 2.5 }, value: 1 } : { value: 1.2 },
              },
            },
            {
              // hover targets: every point, drawn nearly transparent, with the numbers as a tooltip
              mark: { type: 'point', filled: true, size: 28, cursor: 'pointer' },
              encoding: {
                x,
                y,
                color: expertColor(ids),
                opacity: { value: 0.01 },
                tooltip: [{ field: 'expert', type: 'ordinal' }, { field: 'k', type: 'quantitative', title: 'k' }, { field: 'sigma', type: 'quantitative', format: '.4e', title: 'σ' }],
              },
            },
          ],
        },
        {
          data: { values: ranks },
          mark: { type: 'rule', color: t.accent, strokeDash: [4, 3] },
          encoding: { x: { field: 'k', type: 'quantitative', scale: x.scale }, tooltip: [{ field: 'energy' }, { field: 'k', title: 'mean rank', format: '.1f' }] },
        },
        {
          data: { values: ranks },
          mark: { type: 'text', color: t.accent, align: 'left', dx: 3, baseline: 'top', fontSize: t.fontSize - 2 },
          encoding: { x: { field: 'k', type: 'quantitative', scale: x.scale }, y: { value: 2 }, yOffset: { field: 'row', type: 'quantitative', scale: { domain: [0, 2], range: [0, 26] }, legend: null }, text: { field: 'label' } },
        },
      ],
      resolve: { scale: { color: 'independent', yOffset: 'independent' } },
    } as TopLevelSpec,
  };
}

/**
 * E x E cosine matrix of one projection, coloured over the off-diagonal range (the diagonal is 1),
 * in expert order or grouped by clusters (`order`: the experts' display order).
 */
export function cosineHeatmap(layer: LayerAnalysis, proj: Proj, t: ChartTheme, order: readonly number[] | null, selected: number | null, prefix = ''): ChartSpec | null {
  const a = layer.projections[proj];
  if (!a) return null;
  const ids = expertIds(a as never);
  const m = a.cosine.matrix;
  const values = m.flatMap((row, i) => row.map((c, j) => ({ i: ids[i] ?? i, j: ids[j] ?? j, cosine: c })));
  const off = values.filter((v) => v.i !== v.j).map((v) => v.cosine);
  const dom = extent(off);
  const sort = order ? order.map((k) => ids[k] ?? k) : [...ids];
  const size = Math.max(260, Math.min(560, ids.length * 8));
  const byPair = new Map(values.map((v) => [`${v.i}:${v.j}`, v.cosine]));
  const digits = Number(rangeFormat(dom).slice(1, -2));
  const labels = ids.length > 32 ? { labelExpr: 'datum.value % 8 === 0 ? datum.label : ""', labelAngle: 0 } : { labelAngle: 0 };
  return {
    ...(values.length > CANVAS_HEATMAP_ABOVE
      ? {
          canvas: {
            rows: sort,
            cols: sort,
            rowTitle: 'expert',
            colTitle: 'expert',
            value: (r: number, c: number) => byPair.get(`${r}:${c}`),
            domain: dom,
            valueLabel: 'cosine',
            format: (v: number) => v.toFixed(Math.max(3, digits)),
            square: true,
            highlight: selected !== null ? { col: selected, row: selected } : null,
          },
        }
      : {}),
    id: `${prefix}heatmap-${layer.layer}-${proj}`,
    title: `Layer ${layer.layer} ${proj}: expert cosine similarity${order ? ' (grouped by clusters)' : ''}`,
    dataMarks: values.length,
    markClass: 'mark-rect',
    renderer: values.length > CANVAS_ABOVE / 4 ? 'canvas' : 'svg',
    click: 'expert',
    help: 'Cosine similarity of every pair of experts\' raw weights. Colours span the off-diagonal values (the diagonal is always 1 and is drawn in the top colour). "Group by clusters" orders experts by average-linkage clustering on 1 − cosine, so blocks of related experts show as squares.',
    spec: {
      $schema: SCHEMA,
      width: size,
      height: size,
      config: vegaConfig(t),
      data: { values },
      layer: [
        {
          mark: { type: 'rect', cursor: 'pointer' },
          encoding: {
            x: { field: 'j', type: 'ordinal', title: 'expert', sort, axis: labels },
            y: { field: 'i', type: 'ordinal', title: 'expert', sort, axis: labels },
            color: { field: 'cosine', type: 'quantitative', scale: { scheme: 'viridis', domain: dom, clamp: true }, legend: { format: rangeFormat(dom), gradientLength: 160 } },
            tooltip: [{ field: 'i', title: 'expert i' }, { field: 'j', title: 'expert j' }, { field: 'cosine', type: 'quantitative', format: '.4f' }],
          },
        },
        ...(selected !== null
          ? [
              { data: { values: [{ e: selected }] }, mark: { type: 'rect' as const, fill: null, stroke: t.accent, strokeWidth: 2 }, encoding: { x: { field: 'e', type: 'ordinal' as const, sort } } },
              { data: { values: [{ e: selected }] }, mark: { type: 'rect' as const, fill: null, stroke: t.accent, strokeWidth: 2 }, encoding: { y: { field: 'e', type: 'ordinal' as const, sort } } },
            ]
          : []),
      ],
    } as TopLevelSpec,
  };
}

/** Frobenius norms of each expert's raw weight and of its delta from the mean expert. */
export function normsChart(layer: LayerSummary, proj: Proj, t: ChartTheme, selected: number | null, prefix = ''): ChartSpec | null {
  const a = layer.projections[proj];
  if (!a) return null;
  const ids = expertIds(a);
  const values = [
    ...a.expert_norms.map((n, j) => ({ expert: ids[j] ?? j, kind: 'weight', norm: n })),
    ...a.delta_norms.map((n, j) => ({ expert: ids[j] ?? j, kind: 'delta', norm: n })),
  ];
  return {
    id: `${prefix}norms-${layer.layer}-${proj}`,
    title: `Layer ${layer.layer} ${proj}: expert norms`,
    dataMarks: values.length,
    markClass: 'mark-rect',
    click: 'expert',
    help: 'Frobenius norm of each expert\'s weight and of its delta from the mean expert. Copied experts have deltas much smaller than their weights.',
    spec: {
      $schema: SCHEMA,
      width: 'container',
      height: 170,
      config: vegaConfig(t),
      data: { values },
      mark: { type: 'bar', cursor: 'pointer' },
      encoding: {
        x: { field: 'expert', type: 'ordinal', title: 'expert', axis: ids.length > 32 ? { labelExpr: 'datum.value % 8 === 0 ? datum.label : ""', labelAngle: 0 } : { labelAngle: 0 } },
        xOffset: { field: 'kind', sort: ['weight', 'delta'] },
        y: { field: 'norm', type: 'quantitative', title: 'Frobenius norm' },
        color: { field: 'kind', type: 'nominal', scale: { domain: ['weight', 'delta'], range: [OKABE_ITO[0], OKABE_ITO[1]] }, title: null },
        opacity: selected !== null ? { condition: { test: `datum.expert === ${selected}`, value: 1 }, value: 0.3 } : { value: 1 },
        tooltip: [{ field: 'expert' }, { field: 'kind' }, { field: 'norm', type: 'quantitative', format: '.4g' }],
      },
    },
  };
}

/** Overlay: each expert's error (output error where verified, else relative weight error) against the criterion. */
export function overlayErrorChart(o: OverlayReport, t: ChartTheme): ChartSpec {
  const verified = o.layers.some((l) => l.expert_output_error?.seeded);
  const values = verified
    ? o.layers.flatMap((l) => (l.expert_output_error?.seeded?.per_expert ?? []).map((err, e) => ({ layer: `layer ${l.layer}`, series: 'whole expert, output', expert: e, error: err })))
    : o.layers.flatMap((l) => PROJECTIONS.flatMap((p) => (l.projections[p]?.relative_error ?? []).map((err, e) => ({ layer: `layer ${l.layer}`, series: p, expert: e, error: err }))));
  const criterion = o.verification?.max_error ?? o.options?.max_error ?? null;
  return {
    id: 'overlay-error',
    title: verified ? 'Overlay: relative output error of each expert (all three projections rebuilt)' : 'Overlay: relative weight error per expert',
    dataMarks: values.length,
    markClass: 'mark-symbol',
    help: verified
      ? 'Each point: ||f(x) − f̂(x)|| / ||f(x)|| of one expert\'s whole function on the seeded tokens. The dashed line is the pass criterion (--max-error).'
      : 'Each point: ||W − Ŵ|| / ||W|| of one expert\'s matrix with the chosen rank.',
    spec: {
      $schema: SCHEMA,
      width: 'container',
      height: 200,
      config: vegaConfig(t),
      layer: [
        {
          data: { values },
          mark: { type: 'point', filled: true },
          encoding: {
            x: { field: 'expert', type: 'quantitative', title: 'expert' },
            y: { field: 'error', type: 'quantitative', title: verified ? 'relative output error' : 'relative error ||W − W_r|| / ||W||' },
            color: verified ? { field: 'layer', type: 'nominal', title: 'layer' } : { field: 'series', type: 'nominal', scale: projScale(), title: 'projection' },
            shape: { field: 'layer', type: 'nominal' },
            tooltip: [{ field: 'layer' }, { field: 'series', title: verified ? 'what' : 'projection' }, { field: 'expert' }, { field: 'error', type: 'quantitative', format: '.3e' }],
          },
        },
        ...(verified && criterion !== null
          ? [
              { data: { values: [{ c: criterion, label: `pass criterion ${criterion}` }] }, mark: { type: 'rule' as const, color: t.accent, strokeDash: [4, 3] }, encoding: { y: { field: 'c', type: 'quantitative' as const } } },
              { data: { values: [{ c: criterion, label: `pass criterion ${criterion}` }] }, mark: { type: 'text' as const, color: t.accent, align: 'left' as const, dy: -6, x: 4 }, encoding: { y: { field: 'c', type: 'quantitative' as const }, text: { field: 'label' } } },
            ]
          : []),
      ],
    } as TopLevelSpec,
  };
}

/** Overlay: stored bytes, original vs overlay, per layer and in total. */
export function overlayStorageChart(o: OverlayReport, t: ChartTheme): ChartSpec {
  const perLayer = o.layers.flatMap((l) => {
    const orig = l.original_bytes ?? PROJECTIONS.reduce((s, p) => s + (l.projections[p]?.original_bytes ?? 0), 0);
    const over = l.overlay_bytes ?? PROJECTIONS.reduce((s, p) => s + (l.projections[p]?.overlay_bytes ?? 0), 0);
    return [
      { group: `layer ${l.layer}`, kind: 'original', bytes: orig },
      { group: `layer ${l.layer}`, kind: 'overlay', bytes: over },
    ];
  });
  const scope = o.totals.scope === 'whole-model' ? 'total (whole model)' : 'total (expert weights)';
  const values = [...perLayer, { group: scope, kind: 'original', bytes: o.totals.original_bytes }, { group: scope, kind: 'overlay', bytes: o.totals.overlay_bytes }];
  return {
    id: 'overlay-storage',
    title: `Overlay storage (ratio ${o.totals.ratio.toFixed(2)}x, ${o.totals.scope === 'whole-model' ? 'whole model' : 'expert weights only'})`,
    dataMarks: values.length,
    markClass: 'mark-rect',
    help: 'Bytes as the checkpoint stores them (original) and as the overlay would (base + per-expert factors at the storage dtype), per layer (expert weights) and in total.',
    spec: {
      $schema: SCHEMA,
      width: 'container',
      height: Math.min(320, 40 + values.length * 9),
      config: vegaConfig(t),
      data: { values },
      mark: { type: 'bar' },
      encoding: {
        y: { field: 'group', type: 'nominal', title: null, sort: null },
        yOffset: { field: 'kind' },
        x: { field: 'bytes', type: 'quantitative', title: 'bytes', axis: { format: '~s' } },
        color: { field: 'kind', type: 'nominal', scale: { domain: ['original', 'overlay'], range: [OKABE_ITO[0], OKABE_ITO[1]] }, title: null },
        tooltip: [{ field: 'group' }, { field: 'kind' }, { field: 'bytes', type: 'quantitative', format: ',' }],
      },
    },
  };
}

function capital(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
