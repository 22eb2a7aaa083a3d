/**
 * The standalone HTML report. Choice: every chart (summary and every layer's drill-down, not only
 * the one on screen) is rendered to static SVG with vega's headless View, using the same Vega-Lite
 * specs as the panel, in a fixed light theme, and inlined together with the report summaries as
 * JSON. The file needs no script at all: it opens offline, in any browser or mail client, under any
 * CSP, and is a faithful snapshot (the full numbers: Export JSON). It is built in the webview (vega
 * is already loaded there; the host stays small, one layer's data at a time) and the host writes it.
 */
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { expressionInterpreter } from 'vega-interpreter';
import { cosineHeatmap, cosineMetric, EXPORT_THEME, expertsHeatmap, normsChart, overlayErrorChart, overlayStorageChart, overviewHeatmap, rankMetric, spectrumChart, type ChartSpec } from './charts';
import { modelFacts, overlayLine, verdictEvidence, verdictHeadline } from './summary';
import type { LayerAnalysis } from '../src/engine/report/schema';
import type { ReportSummary } from '../src/shared/report-summary';
import { layersOf, type PanelState } from '../src/extension/panel-protocol';
import { PROJECTIONS } from './stats';

const EXPORT_WIDTH = 760;

/** 'container' width means nothing without a page: give exported charts a fixed width (also inside concatenations). */
function fixedWidth(spec: unknown): unknown {
  if (Array.isArray(spec)) return spec.map(fixedWidth);
  if (spec === null || typeof spec !== 'object') return spec;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(spec)) out[k] = k === 'width' && v === 'container' ? EXPORT_WIDTH : k === 'data' ? v : fixedWidth(v);
  return out;
}

export async function chartToSvg(c: ChartSpec): Promise<string> {
  // ast + interpreter: no code generation, so this also runs under the panel's CSP (no unsafe-eval)
  const view = new vega.View(vega.parse(compile(fixedWidth(c.spec) as TopLevelSpec).spec, undefined, { ast: true }), { renderer: 'none', expr: expressionInterpreter } as vega.ViewOptions);
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

const esc = (s: string) => s.replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]!);

function reportSection(r: ReportSummary, s: PanelState): string {
  const facts = modelFacts(r).map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`).join('');
  const words = verdictEvidence(r.layers, s.thresholds).map((w) => `<li>${esc(w)}</li>`).join('');
  return `<h2>${esc(r.model.source)}</h2><p class="verdict">Verdict: <b>${esc(verdictHeadline(r))}</b></p><ul>${words}</ul><table>${facts}</table>`;
}

async function chartsHtml(charts: readonly ChartSpec[]): Promise<string> {
  const parts: string[] = [];
  for (const c of charts) parts.push(`<figure id="${esc(c.id)}"><figcaption>${esc(c.title)}</figcaption>${await chartToSvg(c)}</figure>`);
  return parts.join('\n');
}

/**
 * Everything the panel can show as one HTML file: per model the verdict and its evidence, the
 * overview heatmaps and every analysed layer's drill-down (fetched one layer at a time through
 * `fetchLayer` and dropped after drawing), the overlay results. The summaries are inlined as JSON;
 * the full numbers are in the JSON export.
 */
export async function standaloneHtml(s: PanelState, fetchLayer: (model: number, layer: number) => Promise<LayerAnalysis | null>): Promise<string> {
  const t = EXPORT_THEME;
  const body: string[] = [];
  for (const [i, m] of s.models.entries()) {
    const layers = layersOf(s, i);
    if (m.report) body.push(reportSection(m.report, s));
    const prefix = s.models.length > 1 ? `${'ab'[i]}-` : '';
    body.push(await chartsHtml([overviewHeatmap(layers, rankMetric(s.thresholds), t, `${prefix}rank-ratio`), overviewHeatmap(layers, cosineMetric(s.thresholds), t, `${prefix}cosine`), expertsHeatmap(layers, 'gate', 'delta_norm', t, `${prefix}experts`, null)]));
    for (const l of layers) {
      const full = await fetchLayer(i, l.layer);
      body.push(`<h3>Layer ${l.layer}</h3><ul>${l.verdict.reasons.map((x) => `<li>${esc(x)}</li>`).join('')}</ul>`);
      const charts = PROJECTIONS.flatMap((p) => [full ? spectrumChart(full, p, t, null, prefix) : null, full ? cosineHeatmap(full, p, t, null, null, prefix) : null, normsChart(l, p, t, null, prefix)]).filter((c): c is ChartSpec => c !== null);
      body.push(await chartsHtml(charts));
    }
  }
  if (s.overlay) {
    body.push(`<h2>Overlay (${esc(s.overlay.mode)})</h2><p>${esc(overlayLine(s.overlay))}</p>`);
    body.push(await chartsHtml([overlayStorageChart(s.overlay, t), overlayErrorChart(s.overlay, t)].filter((c) => c.dataMarks > 0)));
  }
  const data = JSON.stringify({ summaries: s.models.map((m) => m.report ?? { layers: m.layers }), overlay: s.overlay }).replace(/</g, '\\u003c');
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
