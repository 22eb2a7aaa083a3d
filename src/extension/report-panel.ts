/**
 * One report webview panel. The host owns the PanelState of a run (summaries only, see
 * panel-protocol.ts): it sends it whole when the webview (re)loads or a run starts/ends, and small
 * updates in between. The webview keeps only a pointer with setState (run id, selection), so hiding
 * the panel needs no retainContextWhenHidden, and a reload brings it back from the saved run.
 */
import * as vscode from 'vscode';
import { readFile } from 'node:fs/promises';
import { applyUpdate, isFromPanel, type FromPanel, type PanelState, type PanelUpdate, type ToPanel } from './panel-protocol';
import { panelHtml } from './panel-html';

export const PANEL_VIEW_TYPE = 'moeInspector.report';

export interface PanelHandlers {
  onMessage(panel: ReportPanel, m: FromPanel): void;
  onDispose(panel: ReportPanel): void;
  /** Where the full data of one layer of this panel's run lies (null: not stored). */
  layerFile(panel: ReportPanel, model: number, layer: number): string | null;
}

export class ReportPanel {
  private disposed = false;
  private current: PanelState | null = null;
  /** The layer the user is looking at, per model: a re-opened panel shows it again. */
  selected: { model: number; layer: number } | null = null;

  private constructor(
    readonly webviewPanel: vscode.WebviewPanel,
    private readonly handlers: PanelHandlers,
    extensionUri: vscode.Uri,
  ) {
    webviewPanel.webview.options = ReportPanel.webviewOptions(extensionUri);
    webviewPanel.iconPath = vscode.Uri.joinPath(extensionUri, 'media', 'moe.svg');
    webviewPanel.webview.html = panelHtml(webviewPanel.webview, extensionUri);
    webviewPanel.webview.onDidReceiveMessage((m: unknown) => {
      if (!isFromPanel(m)) return;
      if (m.type === 'ready' && this.current) this.post({ type: 'state', state: this.current });
      if (m.type === 'selectLayer') this.selected = m.layer === null ? null : { model: m.model, layer: m.layer };
      if (m.type === 'loadLayer') void this.sendLayer(m.model, m.layer);
      handlers.onMessage(this, m);
    });
    webviewPanel.onDidDispose(() => {
      this.disposed = true;
      this.current = null;
      handlers.onDispose(this);
    });
  }

  static webviewOptions(extensionUri: vscode.Uri): vscode.WebviewOptions {
    return { enableScripts: true, localResourceRoots: [vscode.Uri.joinPath(extensionUri, 'dist'), vscode.Uri.joinPath(extensionUri, 'media')] };
  }

  static create(extensionUri: vscode.Uri, title: string, handlers: PanelHandlers): ReportPanel {
    const p = vscode.window.createWebviewPanel(PANEL_VIEW_TYPE, title, vscode.ViewColumn.Active, ReportPanel.webviewOptions(extensionUri));
    return new ReportPanel(p, handlers, extensionUri);
  }

  /** A panel VS Code restored after a reload; the controller fills it from the saved run. */
  static revive(webviewPanel: vscode.WebviewPanel, extensionUri: vscode.Uri, handlers: PanelHandlers): ReportPanel {
    return new ReportPanel(webviewPanel, handlers, extensionUri);
  }

  get state(): PanelState | null {
    return this.current;
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  /** Replaces the whole state (a run starts or ends, a saved run is shown). */
  show(next: PanelState): void {
    this.current = next;
    this.post({ type: 'state', state: next });
  }

  /** A small change: applied here and sent as is. */
  update(u: PanelUpdate): void {
    if (!this.current) return;
    this.current = applyUpdate(this.current, u);
    this.post({ type: 'update', update: u });
  }

  post(m: ToPanel): void {
    if (!this.disposed) void this.webviewPanel.webview.postMessage(m);
  }

  reveal(): void {
    if (!this.disposed) this.webviewPanel.reveal(undefined, false);
  }

  /** The stored layer file's text goes to the webview as is: the host never parses it. */
  private async sendLayer(model: number, layer: number): Promise<void> {
    const file = this.handlers.layerFile(this, model, layer);
    if (!file) {
      this.post({ type: 'layerData', model, layer, json: null, error: 'This layer was not saved (the run did not finish it).' });
      return;
    }
    try {
      this.post({ type: 'layerData', model, layer, json: await readFile(file, 'utf8') });
    } catch (e) {
      this.post({ type: 'layerData', model, layer, json: null, error: `Could not read the saved layer (${(e as Error).message}). Run the analysis again.` });
    }
  }
}
