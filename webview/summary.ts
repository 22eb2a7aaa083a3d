/** Plain-text facts the panel shows next to the charts: pure functions, shared with the HTML export. */
import type { AnalysisReport, LayerAnalysis, OverlayReport } from '../src/engine/report/schema';

export const pct = (x: number, digits = 1): string => `${(x * 100).toFixed(digits)}%`;

export function verdictLine(r: AnalysisReport): string {
  return `${r.verdict.type} (confidence ${pct(r.verdict.confidence, 0)})`;
}

export function modelFacts(r: AnalysisReport): [string, string][] {
  const m = r.model;
  return [
    ['source', m.revision ? `${m.source}@${m.revision}` : m.source],
    ['family', m.family],
    ['experts', String(m.num_experts) + (m.shared_experts ? ' + shared' : '')],
    ['MoE layers', `${m.moe_layers.length} (analysed ${r.layers.map((l) => l.layer).join(', ')})`],
    ['sampled experts', r.options.sample_experts === null ? 'all' : String(r.options.sample_experts)],
    ['execution provider', r.runtime.execution_provider],
    ['time', `${r.runtime.seconds.toFixed(1)} s`],
  ];
}

export function layerLine(l: LayerAnalysis): string {
  const g = l.projections.gate;
  const parts = [`layer ${l.layer}: ${l.verdict.type} (${pct(l.verdict.confidence, 0)})`];
  if (g) parts.push(`gate rank ratio ${pct(g.rank_ratio)}`);
  const cos = (['gate', 'up', 'down'] as const).flatMap((p) => (l.projections[p] ? [l.projections[p]!.cosine.mean] : []));
  if (cos.length > 0) parts.push(`mean cosine ${(cos.reduce((a, b) => a + b, 0) / cos.length).toFixed(3)}`);
  if (l.estimated_overlay_ratio !== null) parts.push(`overlay ~${l.estimated_overlay_ratio.toFixed(2)}x`);
  return parts.join(' · ');
}

export function overlayLine(o: OverlayReport): string {
  const t = o.totals;
  const parts = [`overlay ${o.mode}: ${t.original_bytes.toLocaleString('en-US')} → ${t.overlay_bytes.toLocaleString('en-US')} bytes (${t.ratio.toFixed(2)}x)`];
  if (o.compressible === false) parts.push('not compressible: the overlay would not be smaller');
  if (o.verification) parts.push(`verify ${o.verification.passed ? 'PASSED' : 'FAILED'}: worst ${o.verification.criterion} ${o.verification.worst.toExponential(2)} vs max ${o.verification.max_error}`);
  return parts.join(' · ');
}
