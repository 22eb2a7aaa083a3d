/**
 * The report panel. The host sends the run's state (report summaries: no E x E matrices, no
 * spectra) once and then small updates; one layer's full data is fetched when its drill-down is
 * drawn. The page keeps only a pointer with setState (run id, selected layer): hidden and shown
 * again, it asks the host for the state. Sections redraw independently, so a click on a layer
 * draws only the drill-down even while an analysis streams layers into the overview.
 * Charts: Vega-Lite compiled in the page and rendered by vega-embed with the vega-interpreter
 * (ast mode), because the panel's CSP forbids eval.
 */
import '@vscode-elements/elements/dist/vscode-progress-ring/index.js';
import embed, { type Result } from 'vega-embed';
import { expressionInterpreter } from 'vega-interpreter';
import { applyUpdate, layerRefOf, layersOf, savedPanelOf, type FromPanel, type LayerRef, type PanelState, type SavedPanel, type ToPanel } from '../src/extension/panel-protocol';
import type { LayerAnalysis } from '../src/engine/report/schema';
import type { LayerSummary } from '../src/shared/report-summary';
import { errorAdvice, errorTitle } from '../src/extension/error-words';
import { cosineHeatmap, cosineMetric, differenceChart, EXPERT_METRICS, expertsHeatmap, extraMetric, normsChart, overviewHeatmap, rankMetric, spectrumChart, type ChartSpec, type ExpertMetric } from './charts';
import { modelFacts, verdictEvidence, verdictHeadline } from './summary';
import { currentTheme, onThemeChange } from './theme';
import { standaloneHtml } from './report-export';
import { button, el, helpNote, select } from './dom';
import { sortableTable, toCsv } from './table';
import { allExpertRows, expertColumns, expertCsvColumns, layerColumns, layerCsvColumns } from './columns';
import { expertRows, extent, extraExpertLists, extraScalars, PROJECTIONS, projectionsOf, shownProjection, type Proj, type ProjectionSummary } from './stats';
import { clusterOrder } from './cluster';
import { overlaySection, type OverlayUi } from './overlay-view';
import { drawCanvasHeatmap } from './canvas-heatmap';
import { chartToSvg } from './report-export';

interface VsCodeApi {
  postMessage(m: FromPanel): void;
  getState(): unknown;
  setState(s: unknown): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

const vscode = acquireVsCodeApi();
const post = (m: FromPanel) => vscode.postMessage(m);
const restored: SavedPanel | null = savedPanelOf(vscode.getState());

let state: PanelState | null = null;
/** Drill-down: which model's which layer (compare: either model). */
let selected: { model: number; layer: LayerRef } | null = restored?.selected ?? null;
/** Full layers fetched for the drill-down (only the selected ones are kept). */
const loaded = new Map<string, LayerAnalysis | { error: string }>();
/** View choices that are not part of the report. */
const ui = {
  proj: 'gate' as Proj,
  expert: null as number | null,
  clustered: false,
  expertMetric: 'delta_norm' as ExpertMetric,
  expertProj: 'gate' as Proj,
  extraMetric: '' as string,
  layerSort: { key: 'layer', desc: false },
  expertSort: { key: 'expert', desc: false },
  overlay: {} as OverlayUi,
};
const sectionViews = new Map<string, Result[]>();
const sectionSeq = new Map<string, number>();
const allViews = new Map<string, Result>();
/** Heatmaps drawn on a plain canvas (too big for vega to draw quickly), with their specs for SVG export. */
const canvases = new Map<string, { canvas: HTMLCanvasElement; spec: ChartSpec }>();

function onCanvasClick(c: ChartSpec, row: number | string, col: number): void {
  const model = c.id.startsWith('b-') ? 1 : 0;
  if (c.click === 'layer-expert') selectLayer(model, String(row), col);
  else if (c.click === 'expert') selectExpert(col);
}

const loadedKey = (model: number, layer: LayerRef) => `${model}:${layer}`;
/** A layer was just chosen: scroll to its drill-down again once its data arrived. */
let scrollOnLoad = false;
/** When the last layer was asked for, and how long its data took to arrive (shown as data-load-ms: diagnostics and the E2E's timings). */
let loadAsked = 0;
let lastLoadMs = 0;
/**
 * Diagnostics of a drill-down's time (read by the E2E): how long the click waited for the page's
 * thread (input lag), and how many overview redraws ran between the click and the drill-down drawn.
 */
let lastInputLag = 0;
let overviewRedraws = 0;
let redrawsAtSelect = 0;
/**
 * From a click on a layer until its drill-down has drawn: overview redraws wait (at most
 * DRILL_PRIORITY_MS). Why: while a run streams layers, an overview redraw (two vega heatmaps with
 * their threshold strips, the experts heatmap, the layer table) interleaves with the drill-down's
 * charts and with the click itself, and the user waits for the layer they asked for.
 */
let drillPendingSince: number | null = null;
/** Wall-clock (epoch ms) of the last layer selection, for the E2E's breakdown against its own clock. */
let selectedAt = 0;
const DRILL_PRIORITY_MS = 8000;
document.addEventListener('click', (e) => { lastInputLag = Math.max(0, performance.now() - e.timeStamp); }, true);

function saveState(): void {
  if (!state) return;
  const s: SavedPanel = { version: 2, runId: state.runId, sources: state.sources, selected };
  vscode.setState(s);
}

// ---------------------------------------------------------------- charts

async function drawCharts(section: string, host: HTMLElement, charts: readonly ChartSpec[]): Promise<void> {
  const seq = (sectionSeq.get(section) ?? 0) + 1;
  sectionSeq.set(section, seq);
  for (const v of sectionViews.get(section) ?? []) v.finalize();
  const views: Result[] = [];
  sectionViews.set(section, views);
  host.dataset['drawn'] = '';
  const drawStart = performance.now();
  // callers build a section and attach it right after this call: draw once it is in the page
  await Promise.resolve();
  for (const [k, c] of charts.entries()) {
    // between charts, let the page handle clicks and keys (one chart at a time blocks it)
    if (k > 0) await new Promise((r) => setTimeout(r, 0));
    if (sectionSeq.get(section) !== seq) return; // a newer draw of this section started
    const target = host.querySelector<HTMLElement>(`#vega-${CSS.escape(c.id)}`);
    if (!target || !target.isConnected) continue;
    let result: Result;
    const t0 = performance.now();
    if (c.canvas) {
      const theme = currentTheme();
      const canvas = drawCanvasHeatmap(target, { ...c.canvas, onClick: (row, col) => onCanvasClick(c, row, col) }, { foreground: theme.foreground, accent: theme.accent });
      canvases.set(c.id, { canvas, spec: c });
      target.parentElement!.dataset['ms'] = String(Math.round(performance.now() - t0));
      continue;
    }
    try {
      result = await embed(target, c.spec, {
        actions: false,
        // vega-embed and vega-tooltip would inject <style> elements, which the CSP blocks: their
        // rules live in media/panel.css instead.
        defaultStyle: false,
        tooltip: { disableDefaultStyle: true },
        renderer: c.renderer ?? 'svg',
        ast: true,
        expr: expressionInterpreter,
      });
    } catch (e) {
      target.replaceChildren(el('p', { class: 'error' }, `This chart could not be drawn: ${(e as Error).message}`));
      post({ type: 'log', level: 'error', message: `chart ${c.id}: ${(e as Error).stack ?? e}` });
      continue;
    }
    views.push(result);
    allViews.set(c.id, result);
    // how long this chart took to draw: read by the end-to-end test and when profiling
    target.parentElement!.dataset['ms'] = String(Math.round(performance.now() - t0));
    if (c.click) wireClick(c, result);
  }
  if (sectionSeq.get(section) === seq) {
    // wall time of the whole section (its charts' own ms plus anything that ran in between)
    host.dataset['wallMs'] = String(Math.round(performance.now() - drawStart));
    if (section === 'drilldown') {
      host.dataset['overviewRedraws'] = String(overviewRedraws - redrawsAtSelect);
      host.dataset['selectedAt'] = String(selectedAt);
      host.dataset['drawnAt'] = String(Date.now());
      drillPendingSince = null;
    }
    host.dataset['drawn'] = String(seq);
    document.body.dataset['rendered'] = String(Number(document.body.dataset['rendered'] || 0) + 1);
  }
}

function wireClick(c: ChartSpec, result: Result): void {
  const model = c.id.startsWith('b-') ? 1 : 0;
  result.view.addEventListener('click', (_e, item) => {
    const d = (item as { datum?: Record<string, unknown> } | null | undefined)?.datum;
    if (!d) return;
    if (c.click === 'layer' && typeof d['layer'] === 'string') selectLayer(model, d['layer']);
    if (c.click === 'layer-expert' && typeof d['layer'] === 'string') selectLayer(model, d['layer'], typeof d['expert'] === 'number' ? d['expert'] : null);
    if (c.click === 'expert') {
      const e = d['expert'] ?? d['i'];
      if (typeof e === 'number') selectExpert(e);
    }
  });
}

function chartBox(c: ChartSpec): HTMLElement {
  const box = el('div', { class: 'chart', 'data-chart-id': c.id, 'data-marks': String(c.dataMarks), 'data-mark-class': c.markClass });
  const head = el('div', { class: 'chart-head' }, el('span', { class: 'chart-title' }, c.title));
  head.append(button('SVG', () => void exportChart(c.id, 'svg'), { class: 'small secondary', title: 'Save this chart as SVG' }));
  head.append(button('PNG', () => void exportChart(c.id, 'png'), { class: 'small secondary', title: 'Save this chart as PNG' }));
  box.append(head, el('div', { class: 'vega', id: `vega-${c.id}` }));
  if (c.help) box.append(helpNote(c.help));
  return box;
}

async function exportChart(id: string, format: 'svg' | 'png'): Promise<void> {
  const drawn = canvases.get(id);
  if (drawn) {
    post({ type: 'chartImage', chart: id, format, data: format === 'png' ? drawn.canvas.toDataURL('image/png') : await chartToSvg(drawn.spec) });
    return;
  }
  const v = allViews.get(id);
  if (!v) return;
  const data = format === 'svg' ? await v.view.toSVG() : await v.view.toImageURL('png', 2);
  post({ type: 'chartImage', chart: id, format, data });
}

// ---------------------------------------------------------------- selection

function selectLayer(model: number, layer: LayerRef | null, expert: number | null = null): void {
  if (!state) return;
  selected = layer === null ? null : { model, layer };
  ui.expert = expert;
  redrawsAtSelect = overviewRedraws;
  drillPendingSince = layer === null ? null : performance.now();
  selectedAt = Date.now();
  post({ type: 'selectLayer', model, layer });
  saveState();
  for (const k of [...loaded.keys()]) if (!selected || k !== loadedKey(selected.model, selected.layer)) loaded.delete(k);
  if (selected && !loaded.has(loadedKey(model, selected.layer))) {
    scrollOnLoad = true;
    loadAsked = performance.now();
    post({ type: 'loadLayer', model, layer: selected.layer });
  }
  renderTables();
  renderDrilldown(true);
}

function selectExpert(e: number | null): void {
  ui.expert = ui.expert === e ? null : e;
  renderDrilldown(false);
  renderExpertsOverview();
}

// ---------------------------------------------------------------- sections

function isCompare(s: PanelState): boolean {
  return s.models.length === 2;
}

function statusSection(s: PanelState): HTMLElement {
  const sec = el('section', { id: 'status' });
  switch (s.status.kind) {
    case 'running': {
      const p = s.progress;
      const done = p?.layersDone ?? layersOf(s, 0).length + layersOf(s, 1).length;
      const total = p?.layersTotal ?? null;
      const text = `${s.status.what}: ${done}${total ? ` of ${total}` : ''} layer${done === 1 ? '' : 's'} done${p?.etaSeconds != null ? ` · about ${fmtSeconds(p.etaSeconds)} left` : ''}${p?.text ? ` · ${p.text}` : ''}`;
      const bar = el('progress', { id: 'progress-bar', max: String(total ?? 1), value: String(total ? done : 0) });
      sec.append(el('div', { class: 'running' }, document.createElement('vscode-progress-ring'), el('span', { id: 'progress-text' }, text), button('Cancel', () => post({ type: 'cancel' }), { id: 'cancel-run', class: 'secondary' })), bar);
      break;
    }
    case 'error': {
      const advice = errorAdvice(s.status.code);
      sec.append(el('div', { class: 'error', id: 'error', role: 'alert' }, el('strong', {}, `${errorTitle(s.status.code)}. `), s.status.message, ...(advice ? [el('p', { class: 'advice' }, advice)] : [])));
      break;
    }
    case 'cancelled': {
      const n = layersOf(s, 0).length + layersOf(s, 1).length;
      sec.append(el('div', { class: 'cancelled', id: 'cancelled', role: 'status' }, `Cancelled. ${n === 0 ? 'No layer was finished.' : `The ${n} layer${n === 1 ? '' : 's'} finished before the cancel ${n === 1 ? 'is' : 'are'} shown below.`}`));
      break;
    }
    case 'done':
      break;
  }
  return sec;
}

function fmtSeconds(s: number): string {
  return s < 60 ? `${Math.max(1, Math.round(s))} s` : s < 3600 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`;
}

function summarySection(s: PanelState, i: number): HTMLElement {
  const sec = el('section', { class: 'summary', id: `summary-${i}` });
  const m = s.models[i]!;
  sec.append(el('h2', {}, isCompare(s) ? `${'AB'[i]}: ${m.source}` : m.source));
  const r = m.report;
  const layers = layersOf(s, i);
  if (r) {
    sec.append(el('p', { class: `verdict verdict-${r.verdict.type}`, id: i === 0 ? 'verdict' : `verdict-${i}` }, el('span', { class: `badge badge-${r.verdict.type}` }, r.verdict.type), ` ${verdictHeadline(r).replace(/^\w+ — /, '')}`));
  } else if (layers.length > 0) {
    sec.append(el('p', { class: 'verdict pending' }, `Verdict when the run ends. ${layers.length} layer${layers.length === 1 ? '' : 's'} so far.`));
  }
  const words = verdictEvidence(layers, s.thresholds);
  if (words.length) sec.append(el('ul', { class: 'evidence', id: i === 0 ? 'evidence' : `evidence-${i}` }, ...words.map((w) => el('li', {}, w))));
  if (r) {
    const table = el('table', { class: 'facts' });
    for (const [k, v] of modelFacts(r)) table.append(el('tr', {}, el('th', {}, k), el('td', {}, v)));
    sec.append(el('details', { class: 'facts-box' }, el('summary', {}, `${r.model.family}, ${r.model.num_experts} experts, ${r.model.moe_layers.length} MoE layers, ${r.runtime.seconds.toFixed(1)} s`), table));
  }
  return sec;
}

/** Shared colour domains in compare: both models on the same scale. */
function sharedDomain(s: PanelState, get: (l: LayerSummary, p: Proj) => number | null): [number, number] | undefined {
  if (!isCompare(s)) return undefined;
  return extent([0, 1].flatMap((i) => layersOf(s, i).flatMap((l) => PROJECTIONS.flatMap((p) => { const v = get(l, p); return v === null ? [] : [v]; }))));
}

function overviewCharts(s: PanelState, i: number): ChartSpec[] {
  const layers = layersOf(s, i);
  if (layers.length === 0) return [];
  const prefix = isCompare(s) ? `${'ab'[i]}-` : '';
  const theme = currentTheme();
  const rank = rankMetric(s.thresholds);
  const cos = cosineMetric(s.thresholds);
  const charts = [overviewHeatmap(layers, rank, theme, `${prefix}rank-ratio`, sharedDomain(s, rank.get)), overviewHeatmap(layers, cos, theme, `${prefix}cosine`, sharedDomain(s, cos.get))];
  const extra = extraMetricNames(layers);
  if (extra.length) {
    const name = extra.includes(ui.extraMetric) ? ui.extraMetric : extra[0]!;
    const m = extraMetric(name);
    charts.push({ ...overviewHeatmap(layers, m, theme, `${prefix}extra`, sharedDomain(s, m.get)) });
  }
  return charts;
}

function extraMetricNames(layers: readonly LayerSummary[]): string[] {
  const names = new Set<string>();
  for (const l of layers.slice(0, 4)) for (const [, a] of projectionsOf(l)) for (const k of Object.keys(extraScalars(a))) names.add(k);
  return [...names];
}

function overviewSection(s: PanelState, i: number): HTMLElement {
  const sec = el('section', { class: 'overview', id: `overview-${i}` });
  const charts = overviewCharts(s, i);
  for (const c of charts) {
    const box = chartBox(c);
    if (c.id.endsWith('extra')) {
      const names = extraMetricNames(layersOf(s, i));
      box.querySelector('.chart-head')!.prepend(select(`extra-metric-${i}`, names.map((n) => [n, n]), ui.extraMetric || names[0]!, (v) => { ui.extraMetric = v; renderModels(); }, 'statistic'));
    }
    sec.append(box);
  }
  void drawCharts(`overview-${i}`, sec, charts);
  return sec;
}

function expertsOverviewSection(s: PanelState, i: number): HTMLElement {
  const sec = el('section', { class: 'overview-experts', id: `experts-overview-${i}` });
  const layers = layersOf(s, i);
  if (layers.length === 0) return sec;
  const prefix = isCompare(s) ? `${'ab'[i]}-` : '';
  const sel = selected && selected.model === i ? ui.expert : null;
  const proj = shownProjection(layers, ui.expertProj);
  const c = expertsHeatmap(layers, proj, ui.expertMetric, currentTheme(), `${prefix}experts`, sel);
  const box = chartBox(c);
  box.querySelector('.chart-head')!.prepend(
    select(`experts-metric-${i}`, Object.entries(EXPERT_METRICS), ui.expertMetric, (v) => { ui.expertMetric = v as ExpertMetric; renderExpertsOverview(); }, 'show'),
    select(`experts-proj-${i}`, PROJECTIONS.map((p) => [p, p]), proj, (v) => { ui.expertProj = v as Proj; renderExpertsOverview(); }, 'of'),
  );
  sec.append(box);
  void drawCharts(`experts-overview-${i}`, sec, [c]);
  return sec;
}

function layerTableSection(s: PanelState, i: number): HTMLElement {
  const sec = el('section', { class: 'layers', id: `layers-${i}` });
  const layers = layersOf(s, i);
  if (layers.length === 0) return sec;
  sec.append(
    sortableTable({
      id: i === 0 ? 'layer-table' : `layer-table-${i}`,
      columns: layerColumns(),
      rows: layers,
      rowKey: layerRefOf,
      selected: selected && selected.model === i ? selected.layer : null,
      onSelect: (l) => selectLayer(i, layerRefOf(l)),
      sort: ui.layerSort,
      onSort: (x) => { ui.layerSort = x; renderTables(); },
    }),
  );
  return sec;
}

function modelColumn(s: PanelState, i: number): HTMLElement {
  return el('div', { class: 'model-col', id: `model-${i}` }, summarySection(s, i), overviewSection(s, i), expertsOverviewSection(s, i), layerTableSection(s, i));
}

function differenceSection(s: PanelState): HTMLElement {
  const sec = el('section', { id: 'difference' });
  const a = layersOf(s, 0);
  const b = layersOf(s, 1);
  if (!isCompare(s) || a.length === 0 || b.length === 0) return sec;
  const c = differenceChart(a, b, currentTheme());
  if (c.dataMarks === 0) return sec;
  sec.append(el('h3', {}, 'Difference view'), chartBox(c));
  void drawCharts('difference', sec, [c]);
  return sec;
}

function drilldownSection(s: PanelState): HTMLElement {
  const sec = el('section', { id: 'drilldown', class: 'drilldown', 'data-load-ms': String(lastLoadMs), 'data-input-lag-ms': String(Math.round(lastInputLag)) });
  if (!selected) return sec;
  const { model, layer } = selected;
  const summary = layersOf(s, model).find((l) => layerRefOf(l) === layer);
  if (!summary) return sec;
  const title = el('h3', { id: 'drilldown-title', tabindex: '-1' }, `${isCompare(s) ? `${'AB'[model]}: ` : ''}Layer ${layer} — ${summary.verdict.type} (${Math.round(summary.verdict.confidence * 100)}%)`);
  const bar = el('div', { class: 'drill-bar' });
  for (const p of PROJECTIONS) {
    if (!summary.projections[p]) continue;
    bar.append(button(p, () => { ui.proj = p; renderDrilldown(false); }, { id: `proj-${p}`, class: p === ui.proj ? 'toggle on' : 'toggle', 'aria-pressed': String(p === ui.proj) }));
  }
  if (isCompare(s) && layersOf(s, 1 - model).some((l) => layerRefOf(l) === layer)) bar.append(button(`Same layer in ${'AB'[1 - model]}`, () => selectLayer(1 - model, layer), { id: 'other-model', class: 'secondary' }));
  bar.append(button('Close layer', () => selectLayer(model, null), { id: 'close-layer', class: 'secondary' }));
  sec.append(el('div', { class: 'drill-head' }, title, bar));
  sec.append(el('ul', { class: 'reasons' }, ...summary.verdict.reasons.map((r) => el('li', {}, r))));
  const proj = summary.projections[ui.proj] ? ui.proj : projectionsOf(summary)[0]?.[0];
  if (!proj) return sec;
  const a = summary.projections[proj]!;
  // the per-expert table needs only the summary: it shows at once
  const extras = Object.keys(extraExpertLists(a));
  sec.append(
    el('h4', {}, `Experts of ${proj} (${a.shape.join(' x ')}, max rank ${a.max_rank})`, ui.expert !== null ? el('span', { class: 'sel-note' }, ` — expert ${ui.expert} selected`) : ''),
    expertTable(a, extras),
    helpNote('r90/r95/r99: how many singular values of the expert\'s delta (expert − mean expert) hold 90/95/99% of its energy. Click a row to highlight that expert in every chart; click a header to sort.'),
  );
  const full = loaded.get(loadedKey(model, layer));
  if (!full) {
    sec.append(el('p', { class: 'loading', id: 'drill-loading' }, 'Loading the layer\'s spectra and cosine matrix…'));
    return sec;
  }
  if ('error' in full) {
    sec.append(el('div', { class: 'error', role: 'alert' }, full.error));
    return sec;
  }
  const theme = currentTheme();
  const prefix = isCompare(s) ? `${'ab'[model]}-` : '';
  const order = ui.clustered && full.projections[proj] ? clusterOrder(full.projections[proj]!.cosine.matrix) : null;
  const charts = [spectrumChart(full, proj, theme, ui.expert, prefix), cosineHeatmap(full, proj, theme, order, ui.expert, prefix), normsChart(summary, proj, theme, ui.expert, prefix)].filter((c): c is ChartSpec => c !== null);
  const grid = el('div', { class: 'drill-charts' });
  for (const c of charts) {
    const box = chartBox(c);
    if (c.id.includes('heatmap-')) box.querySelector('.chart-head')!.prepend(select('heatmap-order', [['index', 'expert order'], ['cluster', 'grouped by clusters']], ui.clustered ? 'cluster' : 'index', (v) => { ui.clustered = v === 'cluster'; renderDrilldown(false); }, 'order'));
    grid.append(box);
  }
  sec.append(grid);
  void drawCharts('drilldown', sec, charts);
  return sec;
}

// ---------------------------------------------------------------- render

function expertTable(a: ProjectionSummary, extras: readonly string[]): HTMLElement {
  return sortableTable({
    id: 'expert-table',
    columns: expertColumns(extras),
    rows: expertRows(a),
    rowKey: (r) => String(r.expert),
    selected: ui.expert === null ? null : String(ui.expert),
    onSelect: (r) => selectExpert(r.expert),
    sort: ui.expertSort,
    // sorting redraws the table alone, not the charts
    onSort: (x) => {
      ui.expertSort = x;
      document.getElementById('expert-table')?.parentElement?.replaceWith(expertTable(a, extras));
    },
  });
}

// ---------------------------------------------------------------- toolbar

function toolbar(s: PanelState): HTMLElement {
  const bar = el('header', { class: 'toolbar' });
  const finished = s.models.some((m) => m.report) || s.overlay;
  const anyLayers = layersOf(s, 0).length + layersOf(s, 1).length > 0;
  if (finished) {
    bar.append(button('Export JSON', () => post({ type: 'exportJson' }), { id: 'export-json', title: 'The full report(s), every number' }));
    bar.append(button('Export HTML report', () => void exportHtml(s), { id: 'export-html', class: 'secondary', title: 'A standalone page with every chart as SVG and the summary JSON' }));
  }
  if (anyLayers) {
    bar.append(button('CSV: layers', () => exportCsv('layers'), { id: 'export-csv-layers', class: 'secondary', title: 'The layer table, one row per analysed layer' }));
    bar.append(button('CSV: experts', () => exportCsv('experts'), { id: 'export-csv-experts', class: 'secondary', title: 'The expert table of every layer and projection' }));
  }
  return bar;
}

function exportCsv(what: 'layers' | 'experts'): void {
  if (!state) return;
  const multi = isCompare(state);
  const parts: string[] = [];
  for (const [i, m] of state.models.entries()) {
    const layers = layersOf(state, i);
    let csv: string;
    if (what === 'layers') csv = toCsv(layerCsvColumns(), layers);
    else {
      const { rows, extras } = allExpertRows(layers);
      csv = toCsv(expertCsvColumns(extras), rows);
    }
    parts.push(multi ? csv.split('\n').map((line, k) => (line === '' ? line : k === 0 ? `model,${line}` : `${JSON.stringify(m.source)},${line}`)).join('\n') : csv);
  }
  post({ type: 'exportCsv', name: what, csv: multi ? parts[0]! + parts[1]!.split('\n').slice(1).join('\n') : parts[0]! });
}

async function exportHtml(s: PanelState): Promise<void> {
  const html = await standaloneHtml(s, (model, layer) => fetchLayer(model, layer));
  post({ type: 'exportHtml', html });
}

/** For the HTML export: one layer's full data, fetched and not kept. */
const pendingFetch = new Map<string, (l: LayerAnalysis | null) => void>();
function fetchLayer(model: number, layer: LayerRef): Promise<LayerAnalysis | null> {
  return new Promise((resolve) => {
    pendingFetch.set(loadedKey(model, layer), resolve);
    post({ type: 'loadLayer', model, layer });
  });
}

let modelsTimer: ReturnType<typeof setTimeout> | null = null;
let lastModelsRender = 0;
let lastModelsCost = 0;
/** While layers stream in, the overview redraws at most every 1.5 s (the drill-down is never held up). */
function scheduleModels(): void {
  if (modelsTimer) return;
  // redraw no more often than every 1.5 s, and leave the page idle at least 4x as long as a redraw takes
  const wait = Math.max(0, Math.max(1500, 4 * lastModelsCost) - (Date.now() - lastModelsRender));
  const fire = () => {
    if (drillPendingSince !== null && performance.now() - drillPendingSince < DRILL_PRIORITY_MS) {
      modelsTimer = setTimeout(fire, 200);
      return;
    }
    modelsTimer = null;
    renderModels();
    renderStatus();
    renderToolbar();
  };
  modelsTimer = setTimeout(fire, wait);
}

function renderToolbar(): void {
  if (state) document.querySelector('header.toolbar')?.replaceWith(toolbar(state));
}

function renderStatus(): void {
  if (state) document.getElementById('status')?.replaceWith(statusSection(state));
}

function renderModels(): void {
  if (!state) return;
  const started = performance.now();
  // the charts draw asynchronously: their cost is measured when the overview's sections report drawn
  void Promise.resolve().then(() => waitDrawn(['overview-0', 'experts-overview-0']).then(() => (lastModelsCost = performance.now() - started)));
  lastModelsRender = Date.now();
  overviewRedraws++;
  const host = document.getElementById('models');
  if (!host) return;
  const cols = state.models.map((_, i) => modelColumn(state!, i));
  host.replaceChildren(...cols);
  host.className = isCompare(state) ? 'compare' : 'single';
  host.id = 'models';
  if (isCompare(state)) host.setAttribute('data-compare', '');
  document.getElementById('difference')?.replaceWith(differenceSection(state));
}

/** Resolves when the named sections have drawn (or after 10 s). */
function waitDrawn(ids: readonly string[]): Promise<void> {
  const end = Date.now() + 10_000;
  return new Promise((resolve) => {
    const check = () => {
      if (Date.now() > end || ids.every((id) => !!document.getElementById(id)?.dataset['drawn'])) resolve();
      else setTimeout(check, 50);
    };
    check();
  });
}

function renderTables(): void {
  if (!state) return;
  for (const [i] of state.models.entries()) document.getElementById(`layers-${i}`)?.replaceWith(layerTableSection(state, i));
}

function renderExpertsOverview(): void {
  if (!state) return;
  for (const [i] of state.models.entries()) document.getElementById(`experts-overview-${i}`)?.replaceWith(expertsOverviewSection(state, i));
}

function renderDrilldown(scroll: boolean): void {
  if (!state) return;
  const sec = drilldownSection(state);
  const hadFocus = document.activeElement?.id === 'drilldown-title';
  document.getElementById('drilldown')?.replaceWith(sec);
  if (hadFocus) sec.querySelector<HTMLElement>('#drilldown-title')?.focus({ preventScroll: true });
  if (scroll && selected) {
    sec.scrollIntoView({ block: 'start', behavior: 'auto' });
    sec.querySelector<HTMLElement>('#drilldown-title')?.focus({ preventScroll: true });
  }
}

function renderOverlay(): void {
  if (!state) return;
  const { sec, charts } = overlaySection(state, ui.overlay, { post, chartBox, rerender: renderOverlay });
  void drawCharts('overlay', sec, charts);
  document.getElementById('overlay')?.replaceWith(sec);
}

function renderAll(): void {
  const root = document.getElementById('app')!;
  for (const vs of sectionViews.values()) for (const v of vs) v.finalize();
  sectionViews.clear();
  allViews.clear();
  canvases.clear();
  if (!state) {
    root.replaceChildren(el('p', { class: 'empty' }, 'Run “MoE Inspector: Analyze MoE...” to fill this panel.'));
    return;
  }
  root.replaceChildren(toolbar(state), statusSection(state), el('div', { id: 'models' }), el('section', { id: 'difference' }), el('section', { id: 'drilldown' }), el('section', { id: 'overlay' }));
  renderModels();
  renderDrilldown(false);
  renderOverlay();
}

function onLayerData(m: Extract<ToPanel, { type: 'layerData' }>): void {
  const key = loadedKey(m.model, m.layer);
  let parsed: LayerAnalysis | { error: string };
  try {
    parsed = m.json !== null ? (JSON.parse(m.json) as LayerAnalysis) : { error: m.error ?? 'The layer could not be read.' };
  } catch (e) {
    parsed = { error: `The saved layer is damaged (${(e as Error).message}).` };
  }
  const waiting = pendingFetch.get(key);
  if (waiting) {
    pendingFetch.delete(key);
    waiting('error' in parsed ? null : parsed);
  }
  if (selected && loadedKey(selected.model, selected.layer) === key) {
    lastLoadMs = Math.round(performance.now() - loadAsked);
    if ('error' in parsed) drillPendingSince = null; // nothing more will draw
    loaded.set(key, parsed);
    // the section grew: bring its top into view again if the user just chose this layer
    renderDrilldown(scrollOnLoad);
    scrollOnLoad = false;
  }
}

window.addEventListener('message', (ev: MessageEvent<ToPanel>) => {
  const m = ev.data;
  switch (m.type) {
    case 'state': {
      if (modelsTimer) clearTimeout(modelsTimer);
      modelsTimer = null;
      const sameRun = state !== null && state.runId === m.state.runId && state.sources.join() === m.state.sources.join();
      if (!sameRun && !(state === null && restored && restored.runId === m.state.runId)) {
        selected = null;
        loaded.clear();
      }
      const overlayArrived = m.state.overlay !== null && state?.overlay !== m.state.overlay;
      state = m.state;
      saveState();
      renderAll();
      // results of a run started from the overlay form: show them where the user is looking
      if (overlayArrived && ui.overlay.mode !== undefined) document.getElementById('overlay-results')?.scrollIntoView({ block: 'start' });
      if (selected && !loaded.has(loadedKey(selected.model, selected.layer))) post({ type: 'loadLayer', model: selected.model, layer: selected.layer });
      return;
    }
    case 'update':
      if (!state) return;
      state = applyUpdate(state, m.update);
      if (m.update.type === 'progress') {
        const t = document.getElementById('progress-text');
        if (t && state.status.kind === 'running') renderStatus();
      } else if (m.update.type === 'status') {
        // the run ended (cancelled, failed): show every finished layer now, with the status
        if (modelsTimer) clearTimeout(modelsTimer);
        modelsTimer = null;
        renderStatus();
        renderToolbar();
        renderModels();
      } else {
        scheduleModels();
      }
      return;
    case 'layerData':
      onLayerData(m);
      return;
    case 'selectLayer':
      selectLayer(m.model, m.layer);
      return;
    case 'picked':
      ui.overlay = { ...ui.overlay, [m.purpose]: m.path };
      renderOverlay();
      return;
  }
});

window.addEventListener('error', (e) => post({ type: 'log', level: 'error', message: String(e.message) }));
window.addEventListener('unhandledrejection', (e) => post({ type: 'log', level: 'error', message: `unhandled: ${String((e.reason as Error)?.stack ?? e.reason)}` }));
document.addEventListener('securitypolicyviolation', (e) => post({ type: 'log', level: 'error', message: `CSP violation: ${e.violatedDirective} ${e.blockedURI}` }));
onThemeChange(() => renderAll());
renderAll();
post({ type: 'ready' });
