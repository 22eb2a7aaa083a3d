/**
 * The extension host's one stateful object: the worker client, the open report panels and the runs
 * in flight. It stays thin — jobs go to the worker, results go to the panel and the tree.
 */
import * as vscode from 'vscode';
import { basename, dirname } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { WorkerClient, WorkerJobError } from '../client/worker-client';
import type { Job, JobResult, OverlayJob, Progress } from '../shared/messages';
import { formatRun } from '../shared/progress-format';
import type { LayerAnalysis } from '../engine/report/schema';
import { emptyPanelState, type FromPanel, type PanelState } from './panel-protocol';
import { ReportPanel, type PanelHandlers } from './report-panel';
import { ResultsTree } from './results-tree';
import { readSettings, SettingsError } from './settings';

const HF_TOKEN_KEY = 'moeInspector.hfToken';
/** Progress-only panel refreshes are throttled; finished layers always refresh at once. */
const PROGRESS_REFRESH_MS = 250;

export class Controller implements vscode.Disposable {
  private client: WorkerClient | null = null;
  private readonly panels = new Map<string, ReportPanel>();
  private readonly runs = new Set<AbortController>();
  readonly tree = new ResultsTree();
  /** Every finished run, for the test hook and diagnostics. */
  readonly log: { job: Job['kind']; sources: readonly string[]; outcome: string }[] = [];

  constructor(private readonly context: vscode.ExtensionContext, private readonly output: vscode.OutputChannel) {}

  private readonly panelHandlers: PanelHandlers = {
    onMessage: (panel, m) => void this.onPanelMessage(panel, m),
    onDispose: (panel) => {
      for (const [k, p] of this.panels) if (p === panel) this.panels.delete(k);
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

  revivePanel(webviewPanel: vscode.WebviewPanel, saved: unknown): void {
    const panel = ReportPanel.revive(webviewPanel, saved, this.context.extensionUri, this.panelHandlers);
    const key = panel.state?.sources.join(' vs ');
    if (key) this.panels.set(key, panel);
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

  showReport(source: string, layer?: number): void {
    const p = this.panels.get(source);
    if (!p || p.isDisposed || !p.state) {
      void vscode.window.showInformationMessage(`The report panel for ${source} was closed; run the analysis again to reopen it.`);
      return;
    }
    p.reveal();
    if (layer !== undefined) p.update({ ...p.state, selectedLayer: layer });
  }

  cancelAll(): void {
    if (this.runs.size === 0) void vscode.window.showInformationMessage('No MoE analysis is running.');
    for (const r of this.runs) r.abort();
  }

  async analyze(model: string): Promise<void> {
    const s = this.settingsOrReport();
    if (!s) return;
    await this.runJob({ kind: 'analyze', model, layers: s.layers, sampleExperts: s.sampleExperts, device: s.device, thresholds: s.thresholds, allowFullDownload: s.allowFullDownload }, [model], `MoE: ${shortName(model)}`);
  }

  async compare(a: string, b: string): Promise<void> {
    const s = this.settingsOrReport();
    if (!s) return;
    await this.runJob({ kind: 'compare', models: [a, b], layers: s.layers, sampleExperts: s.sampleExperts, device: s.device, thresholds: s.thresholds, allowFullDownload: s.allowFullDownload }, [a, b], `MoE: ${shortName(a)} vs ${shortName(b)}`);
  }

  async overlay(mode: OverlayJob['mode'], model: string, ranks: OverlayJob['ranks']): Promise<void> {
    const s = this.settingsOrReport();
    if (!s) return;
    await this.runJob({ kind: 'overlay', mode, model, layers: s.layers, ranks, device: s.device, allowFullDownload: s.allowFullDownload }, [model], `MoE: ${shortName(model)}`);
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

  private async runJob(job: Job, sources: readonly string[], title: string): Promise<void> {
    const key = sources.join(' vs ');
    const panel = this.panelFor(key, title);
    const what = job.kind === 'overlay' ? `Overlay ${job.mode}` : job.kind === 'compare' ? 'Comparing' : 'Analyzing';
    // an overlay run keeps the analysis already shown for that model
    const previous = panel.state;
    let state: PanelState =
      job.kind === 'overlay' && previous && previous.sources.join() === sources.join()
        ? { ...previous, status: { kind: 'running', what }, overlay: null, progress: null }
        : emptyPanelState(sources, what);
    panel.update(state);
    panel.reveal();
    const abort = new AbortController();
    this.runs.add(abort);
    let lastRefresh = 0;
    let layersDone = 0;
    const set = (next: PanelState, force: boolean) => {
      state = next;
      const now = Date.now();
      if (force || now - lastRefresh >= PROGRESS_REFRESH_MS) {
        lastRefresh = now;
        panel.update(state);
      }
    };
    await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `${what} ${sources.map(shortName).join(' vs ')}`, cancellable: true }, async (progress, token) => {
      token.onCancellationRequested(() => abort.abort());
      const describe = (p: Progress) => (p.run ? formatRun(p.run) : `${layersDone} layer${layersDone === 1 ? '' : 's'} done · ${p.stage} ${p.done}/${p.total} · ${p.message}`);
      try {
        const client = await this.workerClient();
        const result = await client.run(
          job,
          {
            onProgress: (p) => {
              const text = describe(p);
              progress.report({ message: text });
              set({ ...state, progress: text }, false);
            },
            onPartial: (i: number, layer: LayerAnalysis) => {
              layersDone++;
              const partial = state.partial.map((ls, k) => (k === i ? [...ls, layer] : ls));
              progress.report({ message: `${layersDone} layer${layersDone === 1 ? '' : 's'} done` });
              set({ ...state, partial }, true);
            },
          },
          abort.signal,
        );
        set(withResult({ ...state, status: { kind: 'done' }, progress: null }, result), true);
        if (result.kind === 'analyze') this.tree.add(result.report);
        if (result.kind === 'compare') for (const r of result.report.models) this.tree.add(r);
        this.log.push({ job: job.kind, sources, outcome: 'done' });
      } catch (e) {
        const code = e instanceof WorkerJobError ? e.code : 'internal';
        const message = e instanceof Error ? e.message : String(e);
        if (code === 'cancelled') {
          set({ ...state, status: { kind: 'cancelled' }, progress: null }, true);
          void vscode.window.showWarningMessage(`MoE Inspector: ${what.toLowerCase()} ${sources.map(shortName).join(' vs ')} cancelled.`);
        } else {
          set({ ...state, status: { kind: 'error', code, message }, progress: null }, true);
          void vscode.window.showErrorMessage(`MoE Inspector: ${message}`);
        }
        this.output.appendLine(`[${job.kind}] ${key}: ${code}: ${message}`);
        this.log.push({ job: job.kind, sources, outcome: code });
      } finally {
        this.runs.delete(abort);
      }
    });
  }

  private async onPanelMessage(panel: ReportPanel, m: FromPanel): Promise<void> {
    switch (m.type) {
      case 'log':
        this.output.appendLine(`[panel ${m.level}] ${m.message}`);
        return;
      case 'exportJson':
        return this.exportReport(panel, 'json');
      case 'exportHtml':
        return this.exportReport(panel, 'html', m.html);
      case 'chartImage':
        return this.saveChart(m.chart, m.format, m.data);
      default:
        return;
    }
  }

  private async exportReport(panel: ReportPanel, what: 'json' | 'html', html?: string): Promise<void> {
    const s = panel.state;
    const report = s?.compare ?? s?.analysis ?? s?.overlay;
    if (!s || !report) return;
    const name = `${shortName(s.sources[0] ?? 'report').replace(/[^\w.-]+/g, '_')}-${report.schema.split('/')[1]!.replace('@', '-')}.${what}`;
    const target = await vscode.window.showSaveDialog({ defaultUri: defaultSaveUri(name), filters: what === 'json' ? { JSON: ['json'] } : { HTML: ['html'] } });
    if (!target) return;
    const text = what === 'json' ? JSON.stringify(report, null, 2) + '\n' : (html ?? '');
    await writeFile(target.fsPath, text, 'utf8');
    void vscode.window.showInformationMessage(`Saved ${target.fsPath}`);
  }

  private async saveChart(chart: string, format: 'svg' | 'png', data: string): Promise<void> {
    const target = await vscode.window.showSaveDialog({ defaultUri: defaultSaveUri(`${chart}.${format}`), filters: format === 'svg' ? { SVG: ['svg'] } : { PNG: ['png'] } });
    if (!target) return;
    const bytes = format === 'svg' ? Buffer.from(data, 'utf8') : Buffer.from(data.replace(/^data:image\/png;base64,/, ''), 'base64');
    await writeFile(target.fsPath, bytes);
    void vscode.window.showInformationMessage(`Saved ${target.fsPath}`);
  }

  dispose(): void {
    for (const r of this.runs) r.abort();
    this.client?.dispose();
    this.client = null;
  }
}

function withResult(s: PanelState, r: JobResult): PanelState {
  switch (r.kind) {
    case 'analyze':
      return { ...s, analysis: r.report };
    case 'compare':
      return { ...s, compare: r.report };
    case 'overlay':
      return { ...s, overlay: r.report };
    case 'info':
      return s;
  }
}

/** A hub id as is; a file with the folder it sits in (every model has a model.safetensors), a folder by its name. */
function shortName(model: string): string {
  if (/^[\w.-]+\/[\w.-]+(@.*)?$/.test(model) && !model.startsWith('/') && !model.startsWith('.')) return model;
  const file = basename(model);
  return /\.(safetensors|json)$/.test(file) ? `${basename(dirname(model))}/${file}` : file;
}

function defaultSaveUri(name: string): vscode.Uri | undefined {
  const ws = vscode.workspace.workspaceFolders?.[0];
  return ws ? vscode.Uri.joinPath(ws.uri, name) : undefined;
}
