/**
 * The report panel. Receives the whole PanelState from the host, keeps it with setState (so it
 * survives the panel being hidden without retainContextWhenHidden, and a window reload through the
 * serializer), and redraws from it. Charts: Vega-Lite compiled in the page and rendered by
 * vega-embed with the vega-interpreter (ast mode), because the panel's CSP forbids eval.
 * UI components: @vscode-elements/elements (the successor of the archived @vscode/webview-ui-toolkit).
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-badge/index.js';
import '@vscode-elements/elements/dist/vscode-progress-ring/index.js';
import embed, { type Result } from 'vega-embed';
import { expressionInterpreter } from 'vega-interpreter';
import type { FromPanel, PanelState, ToPanel } from '../src/extension/panel-protocol';
import type { AnalysisReport, LayerAnalysis } from '../src/engine/report/schema';
import { layerCharts, overlayErrorChart, overlayStorageChart, summaryCharts, type ChartSpec } from './charts';
import { layerLine, modelFacts, overlayLine, verdictLine } from './summary';
import { currentTheme, onThemeChange } from './theme';
import { standaloneHtml } from './report-export';

interface VsCodeApi {
  postMessage(m: FromPanel): void;
  getState(): unknown;
  setState(s: unknown): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

const vscode = acquireVsCodeApi();
let state: PanelState | null = (vscode.getState() as PanelState | null) ?? null;
const views = new Map<string, Result>();
let renderSeq = 0;

const post = (m: FromPanel) => vscode.postMessage(m);

function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) e.append(c);
  return e;
}

function button(label: string, onClick: () => void, attrs: Record<string, string> = {}): HTMLElement {
  const b = document.createElement('vscode-button');
  for (const [k, v] of Object.entries(attrs)) b.setAttribute(k, v);
  b.textContent = label;
  b.addEventListener('click', onClick);
  return b;
}

function setPanelState(next: PanelState): void {
  state = next;
  vscode.setState(next);
  void render();
}

/** Layers of model `i`: the finished report's, or those streamed so far. */
function layersOf(s: PanelState, i: number): readonly LayerAnalysis[] {
  const r = s.compare?.models[i] ?? (i === 0 ? s.analysis : null);
  return r ? r.layers : (s.partial[i] ?? []);
}

function reportOf(s: PanelState, i: number): AnalysisReport | null {
  return s.compare?.models[i] ?? (i === 0 ? s.analysis : null);
}

function statusSection(s: PanelState): HTMLElement {
  const sec = el('section', { id: 'status' });
  switch (s.status.kind) {
    case 'running':
      sec.append(el('div', { class: 'running' }, document.createElement('vscode-progress-ring'), el('span', { id: 'progress-text' }, `${s.status.what}${s.progress ? ` — ${s.progress}` : ''}`)));
      break;
    case 'error':
      sec.append(el('div', { class: 'error', id: 'error', role: 'alert' }, el('strong', {}, `Error (${s.status.code}): `), s.status.message));
      break;
    case 'cancelled':
      sec.append(el('div', { class: 'cancelled', id: 'cancelled' }, 'Cancelled. Layers finished before the cancel are shown below.'));
      break;
    case 'done':
      break;
  }
  return sec;
}

function summarySection(s: PanelState, i: number): HTMLElement {
  const sec = el('section', { class: 'summary', id: `summary-${i}` });
  const r = reportOf(s, i);
  sec.append(el('h2', {}, s.sources[i] ?? ''));
  if (r) {
    const badge = document.createElement('vscode-badge');
    badge.textContent = r.verdict.type;
    sec.append(el('p', { class: `verdict verdict-${r.verdict.type}`, id: i === 0 ? 'verdict' : `verdict-${i}` }, 'Verdict: ', badge, ` ${verdictLine(r)}`));
    const table = el('table', { class: 'facts' });
    for (const [k, v] of modelFacts(r)) table.append(el('tr', {}, el('th', {}, k), el('td', {}, v)));
    sec.append(table);
  }
  const list = el('ul', { class: 'layers' });
  for (const l of layersOf(s, i)) {
    const item = el('li', { 'data-layer': String(l.layer) }, el('a', { href: '#' }, layerLine(l)));
    item.addEventListener('click', (e) => {
      e.preventDefault();
      selectLayer(l.layer);
    });
    list.append(item);
  }
  sec.append(list);
  return sec;
}

function chartBox(c: ChartSpec): HTMLElement {
  const box = el('div', { class: 'chart', 'data-chart-id': c.id, 'data-marks': String(c.dataMarks), 'data-mark-class': c.markClass });
  const head = el('div', { class: 'chart-head' }, el('span', { class: 'chart-title' }, c.title));
  head.append(button('SVG', () => void exportChart(c.id, 'svg'), { secondary: '', title: 'Save this chart as SVG' }));
  head.append(button('PNG', () => void exportChart(c.id, 'png'), { secondary: '', title: 'Save this chart as PNG' }));
  box.append(head, el('div', { class: 'vega', id: `vega-${c.id}` }));
  return box;
}

async function exportChart(id: string, format: 'svg' | 'png'): Promise<void> {
  const v = views.get(id);
  if (!v) return;
  const data = format === 'svg' ? await v.view.toSVG() : await v.view.toImageURL('png', 2);
  post({ type: 'chartImage', chart: id, format, data });
}

function selectLayer(layer: number | null): void {
  if (!state) return;
  post({ type: 'selectLayer', layer });
  setPanelState({ ...state, selectedLayer: layer });
}

async function drawCharts(charts: readonly ChartSpec[], seq: number): Promise<void> {
  for (const c of charts) {
    if (seq !== renderSeq) return; // a newer render started: stop drawing into detached nodes
    const target = document.getElementById(`vega-${c.id}`);
    if (!target) continue;
    const result = await embed(target, c.spec, {
      actions: false,
      // vega-embed and vega-tooltip would inject <style> elements, which the CSP blocks: their
      // rules live in media/panel.css instead.
      defaultStyle: false,
      tooltip: { disableDefaultStyle: true },
      renderer: 'svg',
      ast: true,
      expr: expressionInterpreter,
    });
    views.set(c.id, result);
    if (c.id.endsWith('rank-ratio') || c.id.endsWith('cosine')) {
      result.view.addEventListener('click', (_e, item) => {
        const layer = (item as { datum?: { layer?: unknown } } | null | undefined)?.datum?.layer;
        if (typeof layer === 'number' && !c.id.startsWith('b-')) selectLayer(layer);
      });
    }
  }
  const counts: Record<string, number> = {};
  for (const c of charts) {
    counts[c.id] = document.querySelectorAll(`#vega-${CSS.escape(c.id)} g.${c.markClass}.role-mark > path`).length;
  }
  if (seq === renderSeq) {
    document.body.dataset['rendered'] = String(seq);
    post({ type: 'rendered', charts: counts });
  }
}

function chartsSection(id: string, heading: string | null, charts: readonly ChartSpec[]): HTMLElement {
  const sec = el('section', { id, class: 'charts' });
  if (heading) sec.append(el('h3', {}, heading));
  for (const c of charts) sec.append(chartBox(c));
  return sec;
}

async function render(): Promise<void> {
  const seq = ++renderSeq;
  for (const v of views.values()) v.finalize();
  views.clear();
  const root = document.getElementById('app')!;
  root.replaceChildren();
  document.body.dataset['rendered'] = '';
  if (!state) {
    root.append(el('p', { class: 'empty' }, 'Run “MoE Inspector: Analyze MoE...” to fill this panel.'));
    return;
  }
  const s = state;
  const theme = currentTheme();
  const toolbar = el('header', { class: 'toolbar' });
  const finished = s.analysis ?? s.compare ?? s.overlay;
  if (finished) {
    toolbar.append(button('Export JSON', () => post({ type: 'exportJson' }), { id: 'export-json' }));
    toolbar.append(button('Export HTML report', () => void standaloneHtml(s).then((html) => post({ type: 'exportHtml', html })), { id: 'export-html', secondary: '' }));
  }
  root.append(toolbar, statusSection(s));

  const all: ChartSpec[] = [];
  const isCompare = s.sources.length === 2 && (s.compare !== null || s.partial.length === 2);
  if (isCompare) {
    const cols = el('div', { class: 'compare', id: 'compare' });
    for (const i of [0, 1]) {
      const charts = summaryCharts(layersOf(s, i), theme, i === 0 ? 'a-' : 'b-');
      const col = el('div', { class: 'compare-col' }, summarySection(s, i), chartsSection(`charts-${i}`, null, charts));
      cols.append(col);
      all.push(...charts);
    }
    root.append(cols);
  } else if (s.overlay === null || s.analysis !== null || s.partial[0]!.length > 0) {
    root.append(summarySection(s, 0));
    const charts = summaryCharts(layersOf(s, 0), theme);
    root.append(chartsSection('charts', null, charts));
    all.push(...charts);
  }

  const layer = s.selectedLayer === null ? null : layersOf(s, 0).find((l) => l.layer === s.selectedLayer);
  if (layer) {
    const charts = layerCharts(layer, theme);
    const sec = chartsSection('drilldown', `Layer ${layer.layer} — ${layer.verdict.type} (${Math.round(layer.verdict.confidence * 100)}%)`, charts);
    sec.insertBefore(el('ul', { class: 'reasons' }, ...layer.verdict.reasons.map((r) => el('li', {}, r))), sec.children[1] ?? null);
    sec.insertBefore(button('Close layer', () => selectLayer(null), { secondary: '', id: 'close-layer' }), sec.firstChild);
    root.append(sec);
    all.push(...charts);
  }

  if (s.overlay) {
    const charts = [overlayStorageChart(s.overlay, theme), overlayErrorChart(s.overlay, theme)].filter((c) => c.dataMarks > 0);
    const sec = chartsSection('overlay', `Overlay (${s.overlay.mode}) — ${s.overlay.model.source}`, charts);
    sec.insertBefore(el('p', { id: 'overlay-line' }, overlayLine(s.overlay)), sec.children[1] ?? null);
    root.append(sec);
    all.push(...charts);
  }
  await drawCharts(all, seq);
}

window.addEventListener('message', (ev: MessageEvent<ToPanel>) => {
  const m = ev.data;
  switch (m.type) {
    case 'state':
      // keep the user's drill-down across streamed updates of the same run
      setPanelState({ ...m.state, selectedLayer: m.state.selectedLayer ?? (state && state.sources.join() === m.state.sources.join() ? state.selectedLayer : null) });
      return;
    case 'selectLayer':
      if (state) setPanelState({ ...state, selectedLayer: m.layer });
      return;
    case 'exportChart':
      void exportChart(m.chart, m.format);
      return;
  }
});

window.addEventListener('error', (e) => post({ type: 'log', level: 'error', message: String(e.message) }));
document.addEventListener('securitypolicyviolation', (e) => post({ type: 'log', level: 'error', message: `CSP violation: ${e.violatedDirective} ${e.blockedURI}` }));
onThemeChange(() => void render());
void render();
post({ type: 'ready' });
