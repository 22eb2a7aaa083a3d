/** Side bar tree: analysed models -> MoE layers -> projections, with verdicts as descriptions. */
import * as vscode from 'vscode';
import type { AnalysisReport, LayerAnalysis, ProjectionAnalysis } from '../engine/report/schema';

type Node =
  | { readonly kind: 'model'; readonly report: AnalysisReport }
  | { readonly kind: 'layer'; readonly report: AnalysisReport; readonly layer: LayerAnalysis }
  | { readonly kind: 'projection'; readonly name: string; readonly analysis: ProjectionAnalysis };

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const VERDICT_ICON = { upcycled: 'layers', native: 'symbol-misc', uncertain: 'question' } as const;

export class ResultsTree implements vscode.TreeDataProvider<Node> {
  private readonly reports = new Map<string, AnalysisReport>();
  private readonly changed = new vscode.EventEmitter<Node | undefined>();
  readonly onDidChangeTreeData = this.changed.event;

  add(report: AnalysisReport): void {
    this.reports.set(report.model.source, report);
    this.changed.fire(undefined);
  }

  get size(): number {
    return this.reports.size;
  }

  sources(): string[] {
    return [...this.reports.keys()];
  }

  getChildren(n?: Node): Node[] {
    if (!n) return [...this.reports.values()].map((report) => ({ kind: 'model', report }));
    if (n.kind === 'model') return n.report.layers.map((layer) => ({ kind: 'layer', report: n.report, layer }));
    if (n.kind === 'layer') {
      return (['gate', 'up', 'down'] as const).flatMap((p) => (n.layer.projections[p] ? [{ kind: 'projection' as const, name: p, analysis: n.layer.projections[p]! }] : []));
    }
    return [];
  }

  getTreeItem(n: Node): vscode.TreeItem {
    switch (n.kind) {
      case 'model': {
        const r = n.report;
        const item = new vscode.TreeItem(r.model.source.split(/[\\/]/).slice(-2).join('/'), vscode.TreeItemCollapsibleState.Expanded);
        item.description = `${r.verdict.type} ${pct(r.verdict.confidence)}`;
        item.tooltip = `${r.model.source}\n${r.model.family}, ${r.model.num_experts} experts\nverdict ${r.verdict.type}, confidence ${pct(r.verdict.confidence)}`;
        item.iconPath = new vscode.ThemeIcon(VERDICT_ICON[r.verdict.type]);
        item.contextValue = 'moeModel';
        item.command = { command: 'moeInspector.showReport', title: 'Show report', arguments: [r.model.source] };
        return item;
      }
      case 'layer': {
        const item = new vscode.TreeItem(`layer ${n.layer.layer}`, vscode.TreeItemCollapsibleState.Collapsed);
        item.description = `${n.layer.verdict.type} ${pct(n.layer.verdict.confidence)}`;
        item.tooltip = n.layer.verdict.reasons.join('\n');
        item.iconPath = new vscode.ThemeIcon(VERDICT_ICON[n.layer.verdict.type]);
        item.command = { command: 'moeInspector.showLayer', title: 'Show layer', arguments: [n.report.model.source, n.layer.layer] };
        return item;
      }
      case 'projection': {
        const a = n.analysis;
        const item = new vscode.TreeItem(n.name, vscode.TreeItemCollapsibleState.None);
        item.description = `rank ${pct(a.rank_ratio)} · cos ${a.cosine.mean.toFixed(3)}`;
        item.tooltip = `[${a.shape.join(' x ')}], r95 mean ${a.effective_rank_summary['0.95'].mean.toFixed(1)} of ${a.max_rank}`;
        return item;
      }
    }
  }
}
