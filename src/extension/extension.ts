/**
 * MoE Inspector for VS Code: commands, explorer menu, side bar tree and the report panel. The host
 * only wires VS Code to the compute worker (src/client); every number comes from the engine.
 */
import * as vscode from 'vscode';
import { rename, writeFile } from 'node:fs/promises';
import type { OverlayJob } from '../shared/messages';
import { Controller } from './controller';
import { watchModelFolders } from './model-folders';
import { askHubId, browseModel, pickModel } from './model-picker';
import { parseOverlayRanks } from './overlay-ranks';
import { PANEL_VIEW_TYPE } from './report-panel';
import { savedPanelOf } from './panel-protocol';

let controller: Controller | null = null;

export function activate(context: vscode.ExtensionContext): void {
  const output = vscode.window.createOutputChannel('MoE Inspector');
  const c = new Controller(context, output);
  controller = c;
  const cmd = (id: string, fn: (...args: any[]) => unknown) => context.subscriptions.push(vscode.commands.registerCommand(id, fn));

  cmd('moeInspector.analyze', async (uri?: vscode.Uri) => {
    const model = uri instanceof vscode.Uri ? uri.fsPath : await pickModel('Analyze MoE', c.tree.sources());
    if (model) await c.analyze(model);
  });
  cmd('moeInspector.analyzeHub', async () => {
    const id = await askHubId();
    if (id) await c.analyze(id);
  });
  cmd('moeInspector.compare', async () => {
    const a = await pickModel('Compare: first model', c.tree.sources());
    if (!a) return;
    const b = await pickModel('Compare: second model', c.tree.sources());
    if (b) await c.compare(a, b);
  });
  for (const mode of ['compute', 'verify', 'estimate'] as const) {
    cmd(`moeInspector.overlay.${mode}`, async (uri?: vscode.Uri) => {
      const model = uri instanceof vscode.Uri ? uri.fsPath : await pickModel(`Overlay ${mode}`, c.tree.sources());
      if (!model) return;
      const ranks = await askRanks(mode);
      if (ranks) await c.overlay(mode, model, ranks);
    });
  }
  cmd('moeInspector.cancel', () => c.cancelAll());
  cmd('moeInspector.setHfToken', () => c.setHubToken());
  cmd('moeInspector.browse', async () => {
    const m = await browseModel('Analyze MoE');
    if (m) await c.analyze(m);
  });
  cmd('moeInspector.showReport', (runId: string) => c.showRun(runId));
  cmd('moeInspector.showLayer', (runId: string, model: number, layer: string | number) => c.showRun(runId, { model, layer: String(layer) }));

  context.subscriptions.push(
    c,
    output,
    watchModelFolders(),
    vscode.window.registerTreeDataProvider('moeInspector.results', c.tree),
    vscode.window.registerWebviewPanelSerializer(PANEL_VIEW_TYPE, {
      deserializeWebviewPanel: async (panel, state) => c.revivePanel(panel, savedPanelOf(state)),
    }),
  );
  if (process.env['MOE_INSPECTOR_TEST_HOOKS']) registerTestHooks(context, c, process.env['MOE_INSPECTOR_TEST_HOOKS']);
}

export function deactivate(): void {
  controller?.dispose();
  controller = null;
}

async function askRanks(mode: OverlayJob['mode']): Promise<OverlayJob['ranks'] | undefined> {
  const text = await vscode.window.showInputBox({
    title: `Overlay ${mode}: ranks`,
    prompt: 'Energy share to keep (0.95), fixed ranks gate,up,down (8,16,8), or a target ratio (x4)',
    value: '0.95',
    ignoreFocusOut: true,
    validateInput: (t) => {
      const r = parseOverlayRanks(t);
      return typeof r === 'string' ? r : null;
    },
  });
  if (text === undefined) return undefined;
  const r = parseOverlayRanks(text);
  return typeof r === 'string' ? undefined : r;
}

/**
 * Extension-host checks for the end-to-end test, only when MOE_INSPECTOR_TEST_HOOKS names a file:
 * a palette command (shown only in that mode) writes what the host sees into that file.
 */
function registerTestHooks(context: vscode.ExtensionContext, c: Controller, outFile: string): void {
  void vscode.commands.executeCommand('setContext', 'moeInspector.testHooks', true);
  context.subscriptions.push(
    vscode.commands.registerCommand('moeInspector.test.selfCheck', async () => {
      const all = await vscode.commands.getCommands(true);
      const pidBefore = c.workerPid;
      const aliveBefore = pidBefore !== undefined && isAlive(pidBefore);
      c.dispose(); // stops the worker: it must really exit
      await new Promise((r) => setTimeout(r, 500));
      const report = {
        commands: all.filter((x) => x.startsWith('moeInspector.')).sort(),
        worker: { pidBefore: pidBefore ?? null, aliveBefore, aliveAfterDispose: pidBefore !== undefined && isAlive(pidBefore) },
        analysedModels: c.tree.sources(),
        runs: c.log,
        activeRuns: c.activeRuns,
      };
      await writeFile(outFile, JSON.stringify(report, null, 2));
      void vscode.window.showInformationMessage('MoE Inspector self-check written');
    }),
    // The extension host's own pid and memory, and the worker's pid: the test samples the host's
    // RSS from /proc while an analysis runs, and kills the worker to check what a crash looks like.
    vscode.commands.registerCommand('moeInspector.test.hostInfo', async () => {
      const m = process.memoryUsage();
      // temp file + rename: the test polls for the file and must never read it half written
      await writeFile(`${outFile}.host.json.tmp`, JSON.stringify({ pid: process.pid, rss: m.rss, heapUsed: m.heapUsed, workerPid: c.workerPid ?? null, activeRuns: c.activeRuns }));
      await rename(`${outFile}.host.json.tmp`, `${outFile}.host.json`);
      void vscode.window.showInformationMessage('MoE Inspector host info written');
    }),
  );
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
