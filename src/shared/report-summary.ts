/**
 * The small view of an analysis report that travels to the VS Code extension host and its panel.
 *
 * Why: a report's bulk is its two-dimensional arrays — each projection's E x E cosine matrix and
 * its per-expert singular-value spectra (a 48-layer x 128-expert model's report is ~100 MB of JSON,
 * almost all of it those matrices). The host must stay small, so the worker writes every full layer
 * to disk and sends only this summary: every scalar and every per-expert list (ranks, norms, shares),
 * and no array of arrays. The panel fetches one layer's full data from disk when it draws it.
 *
 * The rule is generic on purpose — "drop arrays of arrays, and lists longer than MAX_LIST" — so
 * fields other modules add to the report later (per-expert provenance shares, further E x E
 * matrices) are summarised correctly without this file knowing them.
 */
import type { AnalysisReport, LayerAnalysis } from '../engine/report/schema';

/** Longer one-dimensional lists stay on disk too (per-neuron data, not per-expert). */
export const MAX_LIST = 1024;

/** `T` without any field whose value is an array of arrays (recursively). */
export type Slim<T> = T extends readonly (infer U)[]
  ? U extends readonly unknown[]
    ? never
    : readonly Slim<U>[]
  : T extends object
    ? { readonly [K in keyof T as [Slim<T[K]>] extends [never] ? never : K]: Slim<T[K]> }
    : T;

export type LayerSummary = Slim<LayerAnalysis>;
export type ReportSummary = Omit<Slim<AnalysisReport>, 'layers'> & { readonly layers: readonly LayerSummary[] };

function isTwoDimensional(a: readonly unknown[]): boolean {
  return a.some((x) => Array.isArray(x));
}

/** Deep copy of a JSON value without its arrays of arrays and over-long lists. */
export function slim(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(slim);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (Array.isArray(v) && (isTwoDimensional(v) || v.length > MAX_LIST)) continue;
    out[k] = slim(v);
  }
  return out;
}

export function summarizeLayer(layer: LayerAnalysis): LayerSummary {
  return slim(layer) as LayerSummary;
}

export function summarizeReport(report: AnalysisReport): ReportSummary {
  const { layers, ...rest } = report;
  return { ...(slim(rest) as Omit<ReportSummary, 'layers'>), layers: layers.map(summarizeLayer) };
}
