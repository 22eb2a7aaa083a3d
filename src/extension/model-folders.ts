/**
 * The explorer's "Analyze MoE" on folders only makes sense for model folders (those holding a
 * config.json). Menus cannot look at disk, so we keep the list in a context key for the
 * `resourcePath in moeInspector.modelFolders` when clause, and refresh it as config.json files come and go.
 */
import * as vscode from 'vscode';
import { dirname } from 'node:path';

export const MODEL_FOLDERS_KEY = 'moeInspector.modelFolders';

async function publish(): Promise<void> {
  const configs = await vscode.workspace.findFiles('**/config.json', '**/{node_modules,.git,.cache}/**', 2000);
  const folders = [...new Set(configs.map((u) => dirname(u.fsPath)))];
  await vscode.commands.executeCommand('setContext', MODEL_FOLDERS_KEY, folders);
}

export function watchModelFolders(): vscode.Disposable {
  void publish();
  const w = vscode.workspace.createFileSystemWatcher('**/config.json', false, true, false);
  const refresh = () => void publish();
  return vscode.Disposable.from(w, w.onDidCreate(refresh), w.onDidDelete(refresh), vscode.workspace.onDidChangeWorkspaceFolders(refresh));
}
