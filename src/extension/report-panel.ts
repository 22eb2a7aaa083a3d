/**
 * One report webview panel. The host owns the PanelState of a run and pushes it whole to the
 * webview on every change; the webview keeps its copy with setState, so hiding the panel needs no
 * retainContextWhenHidden, and a reload brings it back through the serializer.
 */
import * as vscode from 'vscode';
import type { FromPanel, PanelState, ToPanel } from './panel-protocol';
import { isFromPanel } from './panel-protocol';
import { panelHtml } from './panel-html';

export const PANEL_VIEW_TYPE = 'moeInspector.report';

export interface PanelHandlers {
  onMessage(panel: ReportPanel, m: FromPanel): void;
  onDispose(panel: ReportPanel): void;
}

export class ReportPanel {
  private disposed = false;

  private constructor(
    readonly webviewPanel: vscode.WebviewPanel,
    private current: PanelState | null,
    handlers: PanelHandlers,
    extensionUri: vscode.Uri,
  ) {
    webviewPanel.webview.options = ReportPanel.webviewOptions(extensionUri);
    webviewPanel.iconPath = vscode.Uri.joinPath(extensionUri, 'media', 'moe.svg');
    webviewPanel.webview.html = panelHtml(webviewPanel.webview, extensionUri);
    webviewPanel.webview.onDidReceiveMessage((m: unknown) => {
      if (!isFromPanel(m)) return;
      if (m.type === 'ready' && this.current) this.post({ type: 'state', state: this.current });
      if (m.type === 'selectLayer' && this.current) this.current = { ...this.current, selectedLayer: m.layer };
      handlers.onMessage(this, m);
    });
    webviewPanel.onDidDispose(() => {
      this.disposed = true;
      handlers.onDispose(this);
    });
  }

  static webviewOptions(extensionUri: vscode.Uri): vscode.WebviewOptions {
    return { enableScripts: true, localResourceRoots: [vscode.Uri.joinPath(extensionUri, 'dist'), vscode.Uri.joinPath(extensionUri, 'media')] };
  }

  static create(extensionUri: vscode.Uri, title: string, handlers: PanelHandlers): ReportPanel {
    const p = vscode.window.createWebviewPanel(PANEL_VIEW_TYPE, title, vscode.ViewColumn.Active, ReportPanel.webviewOptions(extensionUri));
    return new ReportPanel(p, null, handlers, extensionUri);
  }

  /** A panel VS Code restored after a reload, with the state the webview had saved. */
  static revive(webviewPanel: vscode.WebviewPanel, saved: unknown, extensionUri: vscode.Uri, handlers: PanelHandlers): ReportPanel {
    const state = isPanelState(saved) ? restoredState(saved) : null;
    return new ReportPanel(webviewPanel, state, handlers, extensionUri);
  }

  get state(): PanelState | null {
    return this.current;
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  update(next: PanelState): void {
    this.current = next;
    this.post({ type: 'state', state: next });
  }

  post(m: ToPanel): void {
    if (!this.disposed) void this.webviewPanel.webview.postMessage(m);
  }

  reveal(): void {
    if (!this.disposed) this.webviewPanel.reveal(undefined, false);
  }
}

function isPanelState(s: unknown): s is PanelState {
  return typeof s === 'object' && s !== null && (s as { version?: unknown }).version === 1 && Array.isArray((s as { sources?: unknown }).sources);
}

/** A run that was still going when the window reloaded did not survive it: say so. */
function restoredState(s: PanelState): PanelState {
  if (s.status.kind !== 'running') return s;
  return { ...s, status: { kind: 'error', code: 'interrupted', message: 'The window was reloaded while this analysis ran; run it again.' }, progress: null };
}
