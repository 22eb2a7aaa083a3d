/**
 * Side bar tree: saved runs (newest per model or model pair) -> MoE layers, verdicts as descriptions.
 * Read from the RunStore, so every analysed model's report can be reopened after its panel was
 * closed or the window reloaded.
 */
import * as vscode from 'vscode';
import type { RunStore, SavedRun } from './run-store';

type Node =
  | { readonly kind: 'run'; readonly run: SavedRun }
  | { readonly kind: 'model'; readonly run: SavedRun; readonly model: number }
  | { readonly kind: 'layer'; readonly run: SavedRun; readonly model: number; readonly layer: SavedRun['models'][number]['layers'][number] };

const pct = (x: number) => `${(x * 100).toFixed(0)}%`;
const VERDICT_ICON = { upcycled: 'layers', native: 'symbol-misc', uncertain: 'question' } as const;

export class ResultsTree implements vscode.TreeDataProvider<Node> {
  private runs: SavedRun[] = [];
  private readonly changed = new vscode.EventEmitter<Node | undefined>();
  readonly onDidChangeTreeData = this.changed.event;

  constructor(private readonly store: RunStore) {
    this.refresh();
  }

  /** Re-reads the saved runs (after a run finished). */
  refresh(): void {
    void this.store.list().then((all) => {
      const seen = new Set<string>();
      this.runs = all.filter((r) => {
        const key = r.sources.join(' vs ');
        if (seen.has(key)) return false;
        seen.add(key);
        return true;
      });
      this.changed.fire(undefined);
    });
  }

  /** Sources analysed so far (for the model pickers). */
  sources(): string[] {
    return [...new Set(this.runs.flatMap((r) => r.sources))];
  }

  getChildren(n?: Node): Node[] {
    if (!n) return this.runs.map((run) => (run.kind === 'analyze' ? { kind: 'model', run, model: 0 } : { kind: 'run', run }));
    if (n.kind === 'run') return n.run.models.map((_, model) => ({ kind: 'model', run: n.run, model }));
    if (n.kind === 'model') return (n.run.models[n.model]?.layers ?? []).map((layer) => ({ kind: 'layer', run: n.run, model: n.model, layer }));
    return [];
  }

  getTreeItem(n: Node): vscode.TreeItem {
    switch (n.kind) {
      case 'run': {
        const item = new vscode.TreeItem(`compare: ${n.run.sources.map(short).join(' vs ')}`, vscode.TreeItemCollapsibleState.Collapsed);
        item.iconPath = new vscode.ThemeIcon('split-horizontal');
        item.tooltip = `${n.run.sources.join('\nvs\n')}\nanalysed ${n.run.date}`;
        item.command = { command: 'moeInspector.showReport', title: 'Show report', arguments: [n.run.id] };
        return item;
      }
      case 'model': {
        const m = n.run.models[n.model]!;
        const item = new vscode.TreeItem(short(m.source), vscode.TreeItemCollapsibleState.Collapsed);
        item.description = `${m.verdict.type} ${pct(m.verdict.confidence)}`;
        item.tooltip = `${m.source}\n${m.family}, ${m.numExperts} experts, ${m.layers.length} layers analysed\nverdict ${m.verdict.type}, confidence ${pct(m.verdict.confidence)}\nanalysed ${n.run.date}`;
        item.iconPath = new vscode.ThemeIcon(VERDICT_ICON[m.verdict.type]);
        item.contextValue = 'moeModel';
        item.command = { command: 'moeInspector.showReport', title: 'Show report', arguments: [n.run.id] };
        return item;
      }
      case 'layer': {
        const item = new vscode.TreeItem(`layer ${n.layer.layer}`, vscode.TreeItemCollapsibleState.None);
        item.description = `${n.layer.verdict} ${pct(n.layer.confidence)}`;
        item.tooltip = n.layer.reasons.join('\n');
        item.iconPath = new vscode.ThemeIcon(VERDICT_ICON[n.layer.verdict]);
        item.command = { command: 'moeInspector.showLayer', title: 'Show layer', arguments: [n.run.id, n.model, n.layer.layer] };
        return item;
      }
    }
  }
}

function short(source: string): string {
  return source.split(/[\\/]/).slice(-2).join('/');
}
