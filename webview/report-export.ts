/**
 * The standalone HTML report. Choice: every chart (summary and every layer's drill-down, not only
 * the one on screen) is rendered to static SVG with vega's headless View, using the same Vega-Lite
 * specs as the panel, in a fixed light theme, and inlined together with the report JSON. The file
 * needs no script at all: it opens offline, in any browser or mail client, under any CSP, and is a
 * faithful snapshot; the JSON inside keeps every number for scripts. It is built in the webview
 * (vega is already loaded there; the host stays small) and the host only writes it to disk.
 */
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { expressionInterpreter } from 'vega-interpreter';
import { EXPORT_THEME, layerCharts, overlayErrorChart, overlayStorageChart, summaryCharts, type ChartSpec } from './charts';
import { layerLine, modelFacts, overlayLine, verdictLine } from './summary';
import type { AnalysisReport } from '../src/engine/report/schema';
import type { PanelState } from '../src/extension/panel-protocol';

const EXPORT_WIDTH = 760;

/** 'container' width means nothing without a page: give exported charts a fixed width. */
function fixedWidth(spec: TopLevelSpec): TopLevelSpec {
  return (spec as { width?: unknown }).width === 'container' ? ({ ...spec, width: EXPORT_WIDTH } as TopLevelSpec) : spec;
}

export async function chartToSvg(c: ChartSpec): Promise<string> {
  // ast + interpreter: no code generation, so this also runs under the panel's CSP (no unsafe-eval)
  const view = new vega.View(vega.parse(compile(fixedWidth(c.spec)).spec, undefined, { ast: true }), { renderer: 'none', expr: expressionInterpreter } as vega.ViewOptions);
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

const esc = (s: string) => s.replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]!);

function reportSection(r: AnalysisReport): string {
  const facts = modelFacts(r).map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`).join('');
  const layers = r.layers.map((l) => `<li>${esc(layerLine(l))}<ul>${l.verdict.reasons.map((x) => `<li>${esc(x)}</li>`).join('')}</ul></li>`).join('');
  return `<h2>${esc(r.model.source)}</h2><p class="verdict">Verdict: <b>${esc(verdictLine(r))}</b></p><table>${facts}</table><ul>${layers}</ul>`;
}

async function chartsHtml(charts: readonly ChartSpec[]): Promise<string> {
  const parts: string[] = [];
  for (const c of charts) parts.push(`<figure id="${esc(c.id)}"><figcaption>${esc(c.title)}</figcaption>${await chartToSvg(c)}</figure>`);
  return parts.join('\n');
}

/** Everything the panel shows (summary, every analysed layer's drill-down, overlay, compare) as one HTML file. */
export async function standaloneHtml(s: PanelState): Promise<string> {
  const t = EXPORT_THEME;
  const reports: AnalysisReport[] = s.compare ? [...s.compare.models] : s.analysis ? [s.analysis] : [];
  const body: string[] = [];
  for (const [i, r] of reports.entries()) {
    body.push(reportSection(r));
    body.push(await chartsHtml(summaryCharts(r.layers, t, reports.length > 1 ? `${'ab'[i]}-` : '')));
    for (const l of r.layers) body.push(`<h3>Layer ${l.layer}</h3>`, await chartsHtml(layerCharts(l, t)));
  }
  if (s.overlay) {
    body.push(`<h2>Overlay (${esc(s.overlay.mode)})</h2><p>${esc(overlayLine(s.overlay))}</p>`);
    body.push(await chartsHtml([overlayStorageChart(s.overlay, t), overlayErrorChart(s.overlay, t)].filter((c) => c.dataMarks > 0)));
  }
  const data = JSON.stringify({ analysis: s.analysis, compare: s.compare, overlay: s.overlay }).replace(/</g, '\\u003c');
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="UTF-8"><title>MoE Inspector report — ${esc(s.sources.join(' vs '))}</title>
<style>body{font-family:system-ui,sans-serif;max-width:820px;margin:24px auto;color:#1f1f1f}th{text-align:left;font-weight:normal;color:#666;padding-right:12px}figure{margin:16px 0}figcaption{font-weight:600;margin-bottom:4px}</style>
</head><body>
<h1>MoE Inspector report</h1>
${body.join('\n')}
<script type="application/json" id="moe-inspector-data">${data}</script>
</body></html>
`;
}
