/** Asking the user for a model: an analysed one, a file/folder on disk, or a hub id. */
import * as vscode from 'vscode';
import { hubIdProblem } from './hub-id';

export async function askHubId(): Promise<string | undefined> {
  const v = await vscode.window.showInputBox({
    title: 'Analyze Hugging Face model',
    prompt: 'Model id, optionally with a revision: org/name or org/name@revision',
    placeHolder: 'allenai/OLMoE-1B-7B-0924',
    ignoreFocusOut: true,
    validateInput: (text) => hubIdProblem(text),
  });
  return v?.trim();
}

export async function browseModel(title: string): Promise<string | undefined> {
  const pick = await vscode.window.showOpenDialog({
    title,
    canSelectFiles: true,
    canSelectFolders: true,
    canSelectMany: false,
    openLabel: 'Analyze',
    filters: { 'Checkpoints': ['safetensors', 'json'], 'All files': ['*'] },
  });
  return pick?.[0]?.fsPath;
}

/** A quick pick over known models plus "browse" and "hub id". */
export async function pickModel(title: string, known: readonly string[]): Promise<string | undefined> {
  type Item = vscode.QuickPickItem & { readonly value: string | 'browse' | 'hub' };
  const items: Item[] = [
    ...known.map((k) => ({ label: k, description: 'analysed', value: k })),
    { label: '$(folder-opened) Browse for a checkpoint file or model folder...', value: 'browse' },
    { label: '$(cloud) Hugging Face model id...', value: 'hub' },
  ];
  const chosen = await vscode.window.showQuickPick(items, { title, ignoreFocusOut: true });
  if (!chosen) return undefined;
  if (chosen.value === 'browse') return browseModel(title);
  if (chosen.value === 'hub') return askHubId();
  return chosen.value;
}
