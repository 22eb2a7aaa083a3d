/**
 * Messages between the extension host and the report webview. Pure types + pure functions: both
 * the host bundle (Node) and the webview bundle (browser) import this file.
 *
 * Memory rule (issue #14): the panel state holds report *summaries* only (no E x E matrices, no
 * spectra: see src/shared/report-summary.ts). The host sends the whole state once (a new run, the
 * panel (re)opened, a run finished) and afterwards only small updates, which both sides apply with
 * the same reducer (`applyUpdate`). One layer's full data travels only when the panel draws it
 * ('loadLayer' -> 'layerData', the layer file's text, never parsed by the host).
 */
import type { OverlayReport, VerdictThresholds } from '../engine/report/schema';
import type { LayerSummary, ReportSummary } from '../shared/report-summary';
import type { OverlayJob } from '../shared/messages';

export type Projection = 'gate' | 'up' | 'down';

/** One analysed model in the panel: its finished summary, or the layers streamed so far. */
export interface ModelView {
  readonly source: string;
  readonly report: ReportSummary | null;
  readonly layers: readonly LayerSummary[];
}

export interface ProgressView {
  readonly text: string;
  readonly layersDone: number;
  /** Layers the run will analyse, when the worker says. */
  readonly layersTotal: number | null;
  readonly etaSeconds: number | null;
}

/** What the panel is currently about. Everything the webview draws derives from this value (and loaded layers). */
export interface PanelState {
  readonly version: 2;
  /** The saved run whose files hold the full layers (null: nothing saved yet). */
  readonly runId: string | null;
  /** The model spec(s) the user asked for (path or hub id). */
  readonly sources: readonly string[];
  readonly status: RunStatus;
  readonly models: readonly ModelView[];
  readonly overlay: OverlayReport | null;
  /** The thresholds the verdict used (the report's, or the settings' while running). */
  readonly thresholds: VerdictThresholds;
  readonly progress: ProgressView | null;
}

export type RunStatus =
  | { readonly kind: 'running'; readonly what: string }
  | { readonly kind: 'done' }
  | { readonly kind: 'error'; readonly code: string; readonly message: string }
  | { readonly kind: 'cancelled' };

export function emptyPanelState(sources: readonly string[], what: string, thresholds: VerdictThresholds, runId: string | null): PanelState {
  return {
    version: 2,
    runId,
    sources,
    status: { kind: 'running', what },
    models: sources.map((source) => ({ source, report: null, layers: [] })),
    overlay: null,
    thresholds,
    progress: null,
  };
}

/** Small changes of a PanelState, applied identically by host and webview. */
export type PanelUpdate =
  | { readonly type: 'layer'; readonly model: number; readonly layer: LayerSummary }
  | { readonly type: 'progress'; readonly progress: ProgressView | null }
  | { readonly type: 'status'; readonly status: RunStatus };

export function applyUpdate(s: PanelState, u: PanelUpdate): PanelState {
  switch (u.type) {
    case 'layer':
      return { ...s, models: s.models.map((m, i) => (i === u.model ? { ...m, layers: [...m.layers.filter((l) => l.layer !== u.layer.layer), u.layer] } : m)) };
    case 'progress':
      return { ...s, progress: u.progress };
    case 'status':
      return { ...s, status: u.status, progress: u.status.kind === 'running' ? s.progress : null };
  }
}

/** Layers of model `i`: the finished summary's, or those streamed so far. */
export function layersOf(s: PanelState, i: number): readonly LayerSummary[] {
  const m = s.models[i];
  if (!m) return [];
  return m.report ? m.report.layers : m.layers;
}

/** Host -> webview. */
export type ToPanel =
  | { readonly type: 'state'; readonly state: PanelState }
  | { readonly type: 'update'; readonly update: PanelUpdate }
  /** One layer's full LayerAnalysis as JSON text (the stored file), or why it could not be read. */
  | { readonly type: 'layerData'; readonly model: number; readonly layer: number; readonly json: string | null; readonly error?: string }
  | { readonly type: 'selectLayer'; readonly model: number; readonly layer: number }
  | { readonly type: 'picked'; readonly purpose: PickPurpose; readonly path: string };

export type ChartImageFormat = 'svg' | 'png';
export type PickPurpose = 'saveDir' | 'overlayDir' | 'inputsFile';

/** What the panel's overlay form asks for. */
export interface OverlayRequest {
  readonly mode: OverlayJob['mode'];
  readonly ranks: OverlayJob['ranks'];
  readonly saveDir?: string;
  readonly overlayDir?: string;
  readonly inputsFile?: string;
  readonly maxError?: number;
  readonly overlayDtype?: 'F32' | 'F16' | 'BF16';
}

/** Webview -> host. */
export type FromPanel =
  | { readonly type: 'ready' }
  | { readonly type: 'selectLayer'; readonly model: number; readonly layer: number | null }
  | { readonly type: 'loadLayer'; readonly model: number; readonly layer: number }
  | { readonly type: 'exportJson' }
  /** The standalone HTML report, built by the webview (see webview/report-export.ts). */
  | { readonly type: 'exportHtml'; readonly html: string }
  | { readonly type: 'exportCsv'; readonly name: string; readonly csv: string }
  /** A chart image the webview rendered (SVG text, or a PNG data URL). */
  | { readonly type: 'chartImage'; readonly chart: string; readonly format: ChartImageFormat; readonly data: string }
  | { readonly type: 'rendered'; readonly charts: Readonly<Record<string, number>> }
  | { readonly type: 'runOverlay'; readonly request: OverlayRequest }
  | { readonly type: 'pick'; readonly purpose: PickPurpose }
  /** The panel's Cancel button: stop this panel's run. */
  | { readonly type: 'cancel' }
  | { readonly type: 'log'; readonly level: 'info' | 'error'; readonly message: string };

export function isFromPanel(m: unknown): m is FromPanel {
  return typeof m === 'object' && m !== null && typeof (m as { type?: unknown }).type === 'string';
}

/** What the webview keeps with setState: a pointer, not the data (the host holds or reloads that). */
export interface SavedPanel {
  readonly version: 2;
  readonly runId: string | null;
  readonly sources: readonly string[];
  readonly selected: { readonly model: number; readonly layer: number } | null;
}

export function isSavedPanel(s: unknown): s is SavedPanel {
  return typeof s === 'object' && s !== null && (s as { version?: unknown }).version === 2 && Array.isArray((s as { sources?: unknown }).sources);
}
