/**
 * Messages between the extension host and the report webview. Pure types + one tiny guard: both the
 * host bundle (Node) and the webview bundle (browser) import this file.
 */
import type { AnalysisReport, CompareReport, LayerAnalysis, OverlayReport } from '../engine/report/schema';

/** What the panel is currently about. Everything the webview draws derives from this one value. */
export interface PanelState {
  readonly version: 1;
  /** The model spec(s) the user asked for (path or hub id). */
  readonly sources: readonly string[];
  readonly status: RunStatus;
  /** Layers streamed so far, per model (index 0, and 1 for compare), in arrival order. */
  readonly partial: readonly (readonly LayerAnalysis[])[];
  readonly analysis: AnalysisReport | null;
  readonly compare: CompareReport | null;
  readonly overlay: OverlayReport | null;
  /** Drill-down: the decoder layer the user clicked, per model index 0. */
  readonly selectedLayer: number | null;
  readonly progress: string | null;
}

export type RunStatus =
  | { readonly kind: 'running'; readonly what: string }
  | { readonly kind: 'done' }
  | { readonly kind: 'error'; readonly code: string; readonly message: string }
  | { readonly kind: 'cancelled' };

export const emptyPanelState = (sources: readonly string[], what: string): PanelState => ({
  version: 1,
  sources,
  status: { kind: 'running', what },
  partial: sources.map(() => []),
  analysis: null,
  compare: null,
  overlay: null,
  selectedLayer: null,
  progress: null,
});

/** Host -> webview. */
export type ToPanel =
  | { readonly type: 'state'; readonly state: PanelState }
  | { readonly type: 'selectLayer'; readonly layer: number }
  | { readonly type: 'exportChart'; readonly chart: string; readonly format: 'svg' | 'png' };

export type ChartImageFormat = 'svg' | 'png';

/** Webview -> host. */
export type FromPanel =
  | { readonly type: 'ready' }
  | { readonly type: 'selectLayer'; readonly layer: number | null }
  | { readonly type: 'exportJson' }
  /** The standalone HTML report, built by the webview (see webview/report-export.ts). */
  | { readonly type: 'exportHtml'; readonly html: string }
  /** A chart image the webview rendered (SVG text, or a PNG data URL). */
  | { readonly type: 'chartImage'; readonly chart: string; readonly format: ChartImageFormat; readonly data: string }
  | { readonly type: 'rendered'; readonly charts: Readonly<Record<string, number>> }
  | { readonly type: 'log'; readonly level: 'info' | 'error'; readonly message: string };

export function isFromPanel(m: unknown): m is FromPanel {
  return typeof m === 'object' && m !== null && typeof (m as { type?: unknown }).type === 'string';
}
