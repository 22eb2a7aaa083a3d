/**
 * The words the panel shows: the verdict with its evidence, model facts, overlay results. Pure
 * functions of report summaries, shared with the HTML export.
 */
import type { OverlayReport, VerdictThresholds } from '../src/engine/report/schema';
import type { LayerSummary, ReportSummary } from '../src/shared/report-summary';
import { meanCosine } from './stats';

export const pct = (x: number, digits = 1): string => `${(x * 100).toFixed(digits)}%`;

/** Cosines near 0 keep their digits: "-4.2e-5", not "-0.000". */
export const fmtCosine = (c: number): string => (Math.abs(c) < 0.001 && c !== 0 ? c.toExponential(1) : c.toFixed(3));

const mean = (xs: readonly number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);

/** "0-3, 5, 7-9" */
export function layerList(layers: readonly number[]): string {
  const s = [...layers].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < s.length; ) {
    let j = i;
    while (j + 1 < s.length && s[j + 1] === s[j]! + 1) j++;
    parts.push(j > i ? `${s[i]}-${s[j]}` : String(s[i]));
    i = j + 1;
  }
  return parts.join(', ');
}

/** The verdict headline: "Upcycled — confidence 93%". */
export function verdictHeadline(r: ReportSummary): string {
  return `${r.verdict.type.charAt(0).toUpperCase()}${r.verdict.type.slice(1)} — confidence ${pct(r.verdict.confidence, 0)}`;
}

/**
 * The evidence in sentences: how many layers got each verdict, and the numbers behind it against
 * the thresholds (the verdict rule: gate rank ratio r and mean cosine c).
 */
export function verdictEvidence(layers: readonly LayerSummary[], th: VerdictThresholds): string[] {
  if (layers.length === 0) return [];
  const out: string[] = [];
  const groups = (['upcycled', 'native', 'uncertain'] as const).map((v) => ({ v, ls: layers.filter((l) => l.verdict.type === v) })).filter((g) => g.ls.length > 0);
  for (const { v, ls } of groups) {
    const r = mean(ls.flatMap((l) => (l.projections.gate ? [l.projections.gate.rank_ratio] : [])));
    const c = mean(ls.flatMap((l) => { const x = meanCosine(l); return x === null ? [] : [x]; }));
    const which = ls.length === layers.length ? (layers.length === 1 ? 'The analysed layer' : `All ${layers.length} analysed layers`) : `${ls.length} of ${layers.length} layers (${layerList(ls.map((l) => l.layer))})`;
    const nums = `gate rank ratio ${pct(r)} on average, mean expert cosine ${fmtCosine(c)}`;
    if (v === 'upcycled')
      out.push(`${which} look copied from one dense FFN: the experts differ from their mean by low-rank deltas and stay alike (${nums}; upcycled needs rank ratio < ${pct(th.upcycled_max_rank_ratio, 0)} and cosine > ${th.upcycled_min_cosine}).`);
    else if (v === 'native')
      out.push(`${which} look independently trained: full-rank deltas and unrelated weights (${nums}; native needs rank ratio > ${pct(th.native_min_rank_ratio, 0)} and cosine < ${th.native_max_cosine}).`);
    else
      out.push(`${which} meet neither rule (${nums}): between the thresholds, or one test says upcycled and the other native. Open a layer to see its spectra and cosine matrix.`);
  }
  out.push('What this test sees: experts copied from the same dense FFN. Models upcycled by splitting an FFN into pieces look native to it.');
  return out;
}

export function modelFacts(r: ReportSummary): [string, string][] {
  const m = r.model;
  const analysed = r.layers.map((l) => l.layer);
  const facts: [string, string][] = [
    ['source', m.revision ? `${m.source}@${m.revision}` : m.source],
    ['family', m.family],
    ['experts', String(m.num_experts) + (m.shared_experts ? ' + shared' : '')],
    ['MoE layers', `${m.moe_layers.length}; analysed ${analysed.length === m.moe_layers.length ? 'all' : analysed.length === 0 ? 'none' : `${analysed.length} (${layerList(analysed)})`}`],
    ['experts analysed', r.options.sample_experts === null ? 'all' : `${r.options.sample_experts} (sampled)`],
    ['execution provider', r.runtime.execution_provider],
    ['time', `${r.runtime.seconds.toFixed(1)} s`],
  ];
  const status = (r as unknown as { status?: unknown }).status;
  if (typeof status === 'string') facts.push(['report status', status]);
  return facts;
}

export function overlayLine(o: OverlayReport): string {
  const t = o.totals;
  const scope = t.scope === 'whole-model' ? 'whole model (every tensor)' : t.scope === 'expert-weights' ? 'routed expert weights of the listed layers only' : 'scope not stated';
  const parts = [`Overlay ${o.mode}: ${t.original_bytes.toLocaleString('en-US')} → ${t.overlay_bytes.toLocaleString('en-US')} bytes (${t.ratio.toFixed(2)}x), totals over the ${scope}`];
  if (o.options) parts.push(`storage dtype ${o.options.overlay_dtype}`);
  if (o.compressible === false) parts.push('not compressible: the overlay would not be smaller');
  if (o.verification) parts.push(`verify ${o.verification.passed ? 'passed' : 'FAILED'}: worst ${o.verification.criterion.replace('_', ' ')} ${o.verification.worst.toExponential(2)} against the criterion ≤ ${o.verification.max_error}`);
  if (o.saved) parts.push(`saved to ${o.saved.dir}`);
  return parts.join(' · ');
}
