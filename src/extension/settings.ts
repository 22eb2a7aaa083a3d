/** The extension's settings, read from VS Code and checked into the job options the worker takes. */
import * as vscode from 'vscode';
import { parseLayerSpec } from '../engine/analysis/layer-selection';
import { DEFAULT_THRESHOLDS, type VerdictThresholds } from '../engine/report/schema';
import type { DeviceChoice, LayerSelection } from '../shared/messages';

export interface AnalysisSettings {
  readonly device: DeviceChoice;
  readonly thresholds: VerdictThresholds;
  readonly sampleExperts: number | null;
  readonly layers: LayerSelection;
  /** Hub files whose server ignores HTTP Range may be fetched whole (refused by default). */
  readonly allowFullDownload: boolean;
}

/** Thrown (as a user-facing message) when a setting cannot be used. */
export class SettingsError extends Error {}

export function readSettings(): AnalysisSettings {
  const c = vscode.workspace.getConfiguration('moeInspector');
  const device = c.get<string>('executionProvider', 'auto');
  if (device !== 'auto' && device !== 'cpu' && device !== 'cuda') throw new SettingsError(`moeInspector.executionProvider must be auto, cpu or cuda (is "${device}")`);
  const sample = c.get<number>('sampleExperts', 0);
  if (!Number.isInteger(sample) || sample < 0) throw new SettingsError(`moeInspector.sampleExperts must be a whole number >= 0 (is ${sample})`);
  const t = (key: keyof VerdictThresholds) => {
    const v = c.get<number>(`thresholds.${key}`, DEFAULT_THRESHOLDS[key]);
    if (typeof v !== 'number' || !(v >= -1 && v <= 1)) throw new SettingsError(`moeInspector.thresholds.${key} must be a number in [-1, 1] (is ${v})`);
    return v;
  };
  let layers: LayerSelection;
  try {
    layers = parseLayerSpec(c.get<string>('defaultLayers', 'all'));
  } catch (e) {
    throw new SettingsError(`moeInspector.defaultLayers: ${(e as Error).message}`);
  }
  const allowFullDownload = c.get<boolean>('allowFullDownload', false);
  if (typeof allowFullDownload !== 'boolean') throw new SettingsError(`moeInspector.allowFullDownload must be true or false (is ${String(allowFullDownload)})`);
  return {
    device,
    sampleExperts: sample === 0 ? null : sample,
    layers,
    allowFullDownload,
    thresholds: {
      upcycled_max_rank_ratio: t('upcycled_max_rank_ratio'),
      upcycled_min_cosine: t('upcycled_min_cosine'),
      native_min_rank_ratio: t('native_min_rank_ratio'),
      native_max_cosine: t('native_max_cosine'),
    },
  };
}
