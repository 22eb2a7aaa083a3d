/**
 * The extension host's one stateful object: the worker client, the open report panels, the runs in
 * flight and the saved runs. It stays thin and small: jobs go to the worker, which keeps the full
 * results on disk (RunStore); the host holds summaries of open panels only.
 */
import * as vscode from 'vscode';
import { basename, dirname } from 'node:path';
import { createReadStream, createWriteStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import { WorkerClient, WorkerJobError } from '../client/worker-client';
import type { Job, OverlayJob, Progress } from '../shared/messages';
import { formatRun } from '../shared/progress-format';
import type { VerdictThresholds } from '../engine/report/schema';
import { emptyPanelState, layerRefOf, type FromPanel, type LayerRef, type OverlayRequest, type PanelState, type ProgressView } from './panel-protocol';
import { ReportPanel, type PanelHandlers } from './report-panel';
import { ResultsTree } from './results-tree';
import { RunStore, type SavedRun } from './run-store';
import { readSettings, SettingsError } from './settings';
import { errorTitle } from './error-words';

const HF_TOKEN_KEY = 'moeInspector.hfToken';
/** Progress-only panel refreshes are throttled; finished layers always go at once. */
const PROGRESS_REFRESH_MS = 250;
/** The worker sends progress at most this often: thousands of steps a second would keep the host busy. */
const WORKER_PROGRESS_MS = 100;

interface RunRecord {
  readonly job: Job['kind'];
  readonly sources: readonly string[];
  readonly outcome: string;
}

export class Controller implements vscode.Disposable {
  private client: WorkerClient | null = null;
  private readonly panels = new Map<string, ReportPanel>();
  private readonly runs = new Set<AbortController>();
  /** The run each panel shows, for the panel's own Cancel button. */
  private readonly panelRuns = new Map<ReportPanel, AbortController>();
  readonly store: RunStore;
  readonly tree: ResultsTree;
  /** Every finished run, for the test hook and diagnostics. */
  readonly log: RunRecord[] = [];

  constructor(private readonly context: vscode.ExtensionContext, private readonly output: vscode.OutputChannel) {
    this.store = new RunStore(vscode.Uri.joinPath(context.globalStorageUri, 'runs').fsPath);
    this.tree = new ResultsTree(this.store);
  }

  private readonly panelHandlers: PanelHandlers = {
    onMessage: (panel, m) => void this.onPanelMessage(panel, m).catch((e) => this.output.appendLine(`[panel] ${(e as Error).message}`)),
    onDispose: (panel) => {
      for (const [k, p] of this.panels) if (p === panel) this.panels.delete(k);
    },
    layerFile: (panel, model, layer) => {
      const s = panel.state;
      if (!s?.runId) return null;
      const known = s.models[model]?.report?.layers ?? s.models[model]?.layers ?? [];
      return known.some((l) => layerRefOf(l) === layer) ? this.store.layerFile(s.runId, model, layer) : null;
    },
  };

  get workerPid(): number | undefined {
    return this.client?.pid;
  }

  get activeRuns(): number {
    return this.runs.size;
  }

  async setHubToken(): Promise<void> {
    const token = await vscode.window.showInputBox({ title: 'Hugging Face token', prompt: 'Stored in VS Code secret storage; passed to the worker as HF_TOKEN', password: true, ignoreFocusOut: true });
    if (token === undefined) return;
    if (token.trim() === '') await this.context.secrets.delete(HF_TOKEN_KEY);
    else await this.context.secrets.store(HF_TOKEN_KEY, token.trim());
    // the token is part of the worker's environment: start a fresh worker next time
    this.client?.dispose();
    this.client = null;
    void vscode.window.showInformationMessage(token.trim() === '' ? 'Hugging Face token removed.' : 'Hugging Face token saved.');
  }

  private async workerClient(): Promise<WorkerClient> {
    if (this.client) return this.client;
    const token = await this.context.secrets.get(HF_TOKEN_KEY);
    const env: NodeJS.ProcessEnv = { ORT_DISABLE_TELEMETRY: '1' };
    if (token) env['HF_TOKEN'] = token;
    this.client = WorkerClient.start({ workerPath: this.context.asAbsolutePath('dist/worker.js'), env });
    return this.client;
  }

  /** A panel VS Code restored after a reload: refill it from its saved run. */
  async revivePanel(webviewPanel: vscode.WebviewPanel, saved: { runId: string | null; sources: readonly string[]; selected: { model: number; layer: LayerRef } | null } | null): Promise<void> {
    const panel = ReportPanel.revive(webviewPanel, this.context.extensionUri, this.panelHandlers);
    const run = saved?.runId ? await this.store.get(saved.runId) : null;
    if (!saved || !run) {
      const sources = saved?.sources ?? [];
      panel.show({
        ...emptyPanelState(sources, '', this.thresholds(), null),
        status: { kind: 'error', code: 'interrupted', message: 'This report was not saved (the window was reloaded while the analysis ran). Run it again.' },
      });
      return;
    }
    panel.selected = saved.selected;
    this.panels.set(run.sources.join(' vs '), panel);
    panel.show(await this.stateOfRun(run));
  }

  private async stateOfRun(run: SavedRun): Promise<PanelState> {
    const reports = await this.store.summaries(run);
    return {
      ...emptyPanelState(run.sources, '', reports[0]?.options.thresholds ?? this.thresholds(), run.id),
      status: { kind: 'done' },
      models: reports.map((r, i) => ({ source: run.sources[i] ?? r.model.source, report: r, layers: [] })),
    };
  }

  private thresholds(): VerdictThresholds {
    try {
      return readSettings().thresholds;
    } catch {
      return { upcycled_max_rank_ratio: 0.05, upcycled_min_cosine: 0.25, native_min_rank_ratio: 0.5, native_max_cosine: 0.1 };
    }
  }

  private panelFor(key: string, title: string): ReportPanel {
    const existing = this.panels.get(key);
    if (existing && !existing.isDisposed) {
      existing.webviewPanel.title = title;
      existing.reveal();
      return existing;
    }
    const p = ReportPanel.create(this.context.extensionUri, title, this.panelHandlers);
    this.panels.set(key, p);
    return p;
  }

  /** The side bar: show a saved run (re-opening its panel if it was closed), optionally at one layer. */
  async showRun(id: string, layer?: { model: number; layer: LayerRef }): Promise<void> {
    const run = await this.store.get(id);
    if (!run) {
      void vscode.window.showWarningMessage('That saved report is gone (older runs are removed); run the analysis again.');
      return;
    }
    const key = run.sources.join(' vs ');
    const open = this.panels.get(key);
    if (open && !open.isDisposed && open.state?.status.kind === 'running') {
      open.reveal(); // a new run of this model is going: show it rather than replace it
      return;
    }
    const panel = open && !open.isDisposed && open.state?.runId === id ? open : this.panelFor(key, titleOf(run.sources));
    if (layer) panel.selected = layer;
    if (panel.state?.runId !== id) panel.show(await this.stateOfRun(run));
    panel.reveal();
    if (layer) panel.post({ type: 'selectLayer', model: layer.model, layer: layer.layer });
  }

  cancelAll(): void {
    if (this.runs.size === 0) void vscode.window.showInformationMessage('No MoE analysis is running.');
    for (const r of this.runs) r.abort();
  }

  async analyze(model: string): Promise<void> {
    const s = this.settingsOrReport();
    if (!s) return;
    const { id, dir } = await this.store.newRun();
    const job: Job = { kind: 'analyze', model, layers: s.layers, sampleExperts: s.sampleExperts, device: s.device, thresholds: s.thresholds, allowFullDownload: s.allowFullDownload, store: { dir } };
    await this.runJob(job, [model], id, s.thresholds);
  }

  async compare(a: string, b: string): Promise<void> {
    const s = this.settingsOrReport();
    if (!s) return;
    const { id, dir } = await this.store.newRun();
    const job: Job = { kind: 'compare', models: [a, b], layers: s.layers, sampleExperts: s.sampleExperts, device: s.device, thresholds: s.thresholds, allowFullDownload: s.allowFullDownload, store: { dir } };
    await this.runJob(job, [a, b], id, s.thresholds);
  }

  async overlay(mode: OverlayJob['mode'], model: string, ranks: OverlayJob['ranks'], extra: Omit<OverlayRequest, 'mode' | 'ranks'> = {}): Promise<void> {
    const s = this.settingsOrReport();
    if (!s) return;
    const job: OverlayJob = { kind: 'overlay', mode, model, layers: s.layers, ranks, device: s.device, allowFullDownload: s.allowFullDownload, ...extra };
    await this.runJob(job, [model], null, s.thresholds);
  }

  private settingsOrReport() {
    try {
      return readSettings();
    } catch (e) {
      if (e instanceof SettingsError) void vscode.window.showErrorMessage(`MoE Inspector: ${e.message}`);
      else throw e;
      return null;
    }
  }

  private async runJob(job: Job, sources: readonly string[], runId: string | null, thresholds: VerdictThresholds): Promise<void> {
    const key = sources.join(' vs ');
    const panel = this.panelFor(key, titleOf(sources));
    const what = job.kind === 'overlay' ? `Overlay ${job.mode}` : job.kind === 'compare' ? 'Comparing' : 'Analyzing';
    // an overlay run keeps the analysis already shown for that model
    const previous = panel.state;
    if (job.kind === 'overlay' && previous && previous.sources.join() === sources.join()) {
      panel.show({ ...previous, status: { kind: 'running', what }, overlay: null, progress: null });
    } else {
      panel.selected = null;
      panel.show(emptyPanelState(sources, what, thresholds, runId));
    }
    panel.reveal();
    const abort = new AbortController();
    this.runs.add(abort);
    this.panelRuns.set(panel, abort);
    const started = Date.now();
    let lastRefresh = 0;
    let layersDone = 0;
    let layersTotal: number | null = null;
    const title = `${what} ${sources.map(shortName).join(' vs ')}`;
    await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title, cancellable: true }, async (progress, token) => {
      token.onCancellationRequested(() => abort.abort());
      // The worker's run position (layer, experts, bytes, ETA), where it sends one: the notification shows the CLI's line.
      let runLine: string | null = null;
      const view = (p: Progress | null): ProgressView => {
        // A step without a run position (provenance, fetching) shows its own message instead.
        if (p) runLine = p.run ? formatRun(p.run) : null;
        if (p?.run) {
          layersTotal = p.run.layersTotal * (job.kind === 'compare' ? 2 : 1);
          return { text: p.message, layersDone, layersTotal, etaSeconds: p.run.etaSeconds };
        }
        const given = p ? optionalNumber(p, 'layersTotal', 'layers_total') : null;
        if (given !== null) layersTotal = given * (job.kind === 'compare' ? 2 : 1);
        // without the worker's own count: analyze steps are (layer, projection) pairs
        else if (p && (p.stage === 'reading' || p.stage === 'spectra' || p.stage === 'layer-done') && p.total > 0) layersTotal = Math.ceil(p.total / 3) * (job.kind === 'compare' ? 2 : 1);
        return { text: p ? p.message : '', layersDone, layersTotal, etaSeconds: etaOf(p, started) };
      };
      const describe = (v: ProgressView) => runLine ?? `${v.layersDone}${v.layersTotal ? ` of ${v.layersTotal}` : ''} layer${v.layersDone === 1 ? '' : 's'} done${v.etaSeconds !== null ? ` · about ${formatSeconds(v.etaSeconds)} left` : ''}${v.text ? ` · ${v.text}` : ''}`;
      try {
        const client = await this.workerClient();
        const result = await client.run(
          { ...job, progressEveryMs: WORKER_PROGRESS_MS },
          {
            onProgress: (p) => {
              const now = Date.now();
              if (now - lastRefresh < PROGRESS_REFRESH_MS) return;
              lastRefresh = now;
              const v = view(p);
              progress.report({ message: describe(v) });
              panel.update({ type: 'progress', progress: v });
            },
            onStoredLayer: (model, layer) => {
              layersDone++;
              panel.update({ type: 'layer', model, layer });
              const v = view(null);
              progress.report({ message: describe(v) });
              panel.update({ type: 'progress', progress: { ...(panel.state?.progress ?? v), layersDone } });
            },
          },
          abort.signal,
        );
        const current = panel.state;
        if (result.kind === 'stored' && runId) {
          const saved = await this.store.save(runId, result.job, sources, result.reports);
          this.tree.refresh();
          if (current) panel.show({ ...current, status: { kind: 'done' }, progress: null, thresholds: result.reports[0]?.options.thresholds ?? thresholds, models: result.reports.map((r, i) => ({ source: saved.sources[i] ?? r.model.source, report: r, layers: [] })) });
        } else if (result.kind === 'overlay' && current) {
          panel.show({ ...current, status: { kind: 'done' }, progress: null, overlay: result.report });
        }
        this.log.push({ job: job.kind, sources, outcome: 'done' });
      } catch (e) {
        const code = e instanceof WorkerJobError ? e.code : 'internal';
        const message = e instanceof Error ? e.message : String(e);
        if (code === 'cancelled') {
          panel.update({ type: 'status', status: { kind: 'cancelled' } });
          void vscode.window.showWarningMessage(`MoE Inspector: ${what.toLowerCase()} ${sources.map(shortName).join(' vs ')} cancelled.`);
        } else {
          panel.update({ type: 'status', status: { kind: 'error', code, message } });
          void vscode.window.showErrorMessage(`MoE Inspector — ${errorTitle(code)}: ${message}`);
        }
        this.output.appendLine(`[${job.kind}] ${key}: ${code}: ${message}`);
        this.log.push({ job: job.kind, sources, outcome: code });
      } finally {
        this.runs.delete(abort);
        if (this.panelRuns.get(panel) === abort) this.panelRuns.delete(panel);
      }
    });
  }

  private async onPanelMessage(panel: ReportPanel, m: FromPanel): Promise<void> {
    switch (m.type) {
      case 'log':
        this.output.appendLine(`[panel ${m.level}] ${m.message}`);
        return;
      case 'exportJson':
        return this.exportJson(panel);
      case 'exportHtml':
        return this.saveText(m.html, `${baseName(panel)}-report.html`, { HTML: ['html'] });
      case 'exportCsv':
        return this.saveText(m.csv, `${baseName(panel)}-${m.name}.csv`, { CSV: ['csv'] });
      case 'chartImage':
        return this.saveChart(m.chart, m.format, m.data);
      case 'pick':
        return this.pick(panel, m.purpose);
      case 'cancel':
        this.panelRuns.get(panel)?.abort();
        return;
      case 'runOverlay': {
        const source = panel.state?.sources[0];
        if (!source) return;
        const { mode, ranks, ...extra } = m.request;
        return this.overlay(mode, source, ranks, extra);
      }
      default:
        return;
    }
  }

  private async pick(panel: ReportPanel, purpose: 'saveDir' | 'overlayDir' | 'inputsFile'): Promise<void> {
    const folders = purpose !== 'inputsFile';
    const chosen = await vscode.window.showOpenDialog({
      title: purpose === 'saveDir' ? 'Folder to save the overlay in' : purpose === 'overlayDir' ? 'Overlay folder to verify' : 'Activations (.safetensors, one [T, H] tensor)',
      canSelectFiles: !folders,
      canSelectFolders: folders,
      canSelectMany: false,
      ...(folders ? {} : { filters: { Safetensors: ['safetensors'] } }),
    });
    const path = chosen?.[0]?.fsPath;
    if (path) panel.post({ type: 'picked', purpose, path });
  }

  /** The full report(s), streamed from the run's files: the host never holds them. */
  private async exportJson(panel: ReportPanel): Promise<void> {
    const s = panel.state;
    if (!s) return;
    const finished = s.models.filter((m) => m.report !== null).length;
    if (s.runId && finished > 0) {
      const compare = finished === 2;
      const target = await this.saveTarget(`${baseName(panel)}-${compare ? 'compare' : 'analysis'}.json`, { JSON: ['json'] });
      if (!target) return;
      const out = createWriteStream(target);
      if (compare) out.write('{"schema":"moe-inspector/compare@1","models":[');
      for (let i = 0; i < finished; i++) {
        if (i > 0) out.write(',');
        for await (const chunk of createReadStream(this.store.reportFile(s.runId, i))) if (!out.write(chunk)) await once(out, 'drain');
      }
      out.end(compare ? ']}\n' : '\n');
      await once(out, 'finish');
      void vscode.window.showInformationMessage(`Saved ${target}`);
    } else if (s.overlay) {
      await this.saveText(JSON.stringify(s.overlay, null, 2) + '\n', `${baseName(panel)}-overlay-${s.overlay.mode}.json`, { JSON: ['json'] });
    }
  }

  private async saveText(text: string, name: string, filters: Record<string, string[]>): Promise<void> {
    const target = await this.saveTarget(name, filters);
    if (!target) return;
    await writeFile(target, text, 'utf8');
    void vscode.window.showInformationMessage(`Saved ${target}`);
  }

  private async saveChart(chart: string, format: 'svg' | 'png', data: string): Promise<void> {
    const target = await this.saveTarget(`${chart}.${format}`, format === 'svg' ? { SVG: ['svg'] } : { PNG: ['png'] });
    if (!target) return;
    const bytes = format === 'svg' ? Buffer.from(data, 'utf8') : Buffer.from(data.replace(/^data:image\/png;base64,/, ''), 'base64');
    await writeFile(target, bytes);
    void vscode.window.showInformationMessage(`Saved ${target}`);
  }

  /** A save dialog; in the end-to-end test (MOE_INSPECTOR_TEST_SAVE_DIR) the file goes straight there. */
  private async saveTarget(name: string, filters: Record<string, string[]>): Promise<string | undefined> {
    const testDir = process.env['MOE_INSPECTOR_TEST_SAVE_DIR'];
    if (testDir) return `${testDir}/${name}`;
    const ws = vscode.workspace.workspaceFolders?.[0];
    const target = await vscode.window.showSaveDialog({ ...(ws ? { defaultUri: vscode.Uri.joinPath(ws.uri, name) } : {}), filters });
    return target?.fsPath;
  }

  dispose(): void {
    for (const r of this.runs) r.abort();
    this.client?.dispose();
    this.client = null;
  }
}

/** Seconds left, from the worker's estimate when it gives one, else from the share of steps done. */
function etaOf(p: Progress | null, started: number): number | null {
  if (!p) return null;
  const given = optionalNumber(p, 'etaSeconds', 'eta_seconds');
  if (given !== null) return Math.max(0, given);
  if (p.stage === 'fetching' || p.total <= 0 || p.done <= 0) return null;
  const elapsed = (Date.now() - started) / 1000;
  return (elapsed * (p.total - p.done)) / p.done;
}

/** A progress field other versions of the worker may add (names in either case style). */
function optionalNumber(p: Progress, ...names: string[]): number | null {
  for (const n of names) {
    const v = (p as unknown as Record<string, unknown>)[n];
    if (typeof v === 'number' && Number.isFinite(v)) return v;
  }
  return null;
}

function formatSeconds(s: number): string {
  if (s < 60) return `${Math.max(1, Math.round(s))} s`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

function baseName(panel: ReportPanel): string {
  return shortName(panel.state?.sources[0] ?? 'report').replace(/[^\w.-]+/g, '_');
}

export function titleOf(sources: readonly string[]): string {
  return `MoE: ${sources.map(shortName).join(' vs ')}`;
}

/** A hub id as is; a file with the folder it sits in (every model has a model.safetensors), a folder by its name. */
export function shortName(model: string): string {
  if (/^[\w.-]+\/[\w.-]+(@.*)?$/.test(model) && !model.startsWith('/') && !model.startsWith('.')) return model;
  const file = basename(model);
  return /\.(safetensors|json)$/.test(file) ? `${basename(dirname(model))}/${file}` : file;
}
