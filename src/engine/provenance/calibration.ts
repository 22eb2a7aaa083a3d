/**
 * Calibration of the verdict with recipe against the generator's ground truth: every case is a
 * synthetic layer built by a recipe (synth/recipes.ts) in a family layout and stored dtype, with a
 * training drift, analysed with or without its dense parent; the verdict is compared with what the
 * recipe made. Used by bench/provenance-calibration.ts (the README's confusion table) and, on a
 * smaller grid, by the tests.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { decideRecipe } from '../analysis/verdict';
import { resolveMoeModel } from '../layouts';
import { openCheckpoint } from '../model/open-checkpoint';
import type { ComputeBackend } from '../numerics/backend';
import type { Recipe as VerdictRecipe } from '../report/schema';
import type { SynthDtype } from '../synth/encode-matrix';
import type { SynthFamily } from '../synth/families';
import { generateSyntheticCheckpoint } from '../synth/generate';
import type { Recipe } from '../synth/recipes';
import { denseParentOf } from './dense-parent';
import { layerProvenance } from './layer-provenance';

export interface CalibrationCase {
  readonly name: string;
  readonly recipe: Recipe;
  readonly family: SynthFamily;
  readonly dtype: SynthDtype;
  readonly withParent: boolean;
}

export interface CalibrationRow extends CalibrationCase {
  /** What the recipe made, as a verdict recipe ('upcycled-invisible' where the weights keep nothing). */
  readonly truth: VerdictRecipe | 'upcycled-invisible';
  readonly predicted: VerdictRecipe;
  readonly confidence: number;
  readonly correct: boolean;
}

/**
 * The verdict recipe a recipe should produce. Drop-Upcycling with r = 1 keeps no parent neuron:
 * invisible in the weights. A disjoint split (partition, or S segments x 1 replica) shares no neuron
 * between experts: visible only against the parent.
 */
export function expectedRecipe(r: Recipe, withParent: boolean): VerdictRecipe | 'upcycled-invisible' {
  switch (r.kind) {
    case 'copy':
      return 'copy';
    case 'permuted-copy':
      return (r.reinit ?? 0.5) >= 1 ? 'upcycled-invisible' : 'permuted-copy';
    case 'noise-copy':
      return 'permuted-copy';
    case 'split':
      return withParent || (r.replicas ?? 1) > 1 ? 'split' : 'upcycled-invisible';
    case 'split-reinit':
      return 'split';
    case 'partition':
      return withParent ? 'split' : 'upcycled-invisible';
    case 'partial':
      return 'partial';
    case 'native':
      return 'native';
  }
}

export const CALIBRATION_RECIPES: readonly { name: string; recipe: Recipe }[] = [
  { name: 'copy', recipe: { kind: 'copy' } },
  { name: 'permuted r=0', recipe: { kind: 'permuted-copy', reinit: 0 } },
  { name: 'permuted r=0.5', recipe: { kind: 'permuted-copy', reinit: 0.5 } },
  { name: 'permuted r=1', recipe: { kind: 'permuted-copy', reinit: 1 } },
  { name: 'noise-copy', recipe: { kind: 'noise-copy' } },
  { name: 'split 4x2 shuffled', recipe: { kind: 'split', segments: 4, replicas: 2 } },
  { name: 'split 4x2 unshuffled', recipe: { kind: 'split', segments: 4, replicas: 2, shuffle: false } },
  { name: 'split 8x1 unshuffled', recipe: { kind: 'split', segments: 8, replicas: 1, shuffle: false } },
  { name: 'split-reinit (Qwen2)', recipe: { kind: 'split-reinit' } },
  { name: 'partition (LLaMA-MoE)', recipe: { kind: 'partition' } },
  { name: 'partial 0.5', recipe: { kind: 'partial', fraction: 0.5 } },
  { name: 'native', recipe: { kind: 'native' } },
];

export const CALIBRATION_LAYOUTS: readonly { family: SynthFamily; dtype: SynthDtype }[] = [
  { family: 'mixtral', dtype: 'BF16' },
  { family: 'qwen2_moe', dtype: 'BF16' },
  { family: 'deepseek_v3', dtype: 'FP8' },
  { family: 'gpt_oss', dtype: 'MXFP4' },
];

/** Generates, analyses and scores each case in `dir` (one case's files at a time). */
export async function runCalibration(
  cases: readonly CalibrationCase[],
  backend: ComputeBackend,
  dir: string,
  shape = { numExperts: 8, hidden: 64, intermediate: 64 },
  onRow?: (r: CalibrationRow) => void,
): Promise<CalibrationRow[]> {
  const rows: CalibrationRow[] = [];
  for (const [i, c] of cases.entries()) {
    const moe = join(dir, `case${i}`);
    const parentDir = `${moe}-parent`;
    await generateSyntheticCheckpoint(moe, { family: c.family, dtype: c.dtype, numLayers: 1, ...shape, structure: { kind: 'recipe', recipe: c.recipe }, seed: 100 + i }, { parentDir });
    const ckpt = await openCheckpoint(moe);
    const parentCkpt = c.withParent ? await openCheckpoint(parentDir) : null;
    try {
      const model = resolveMoeModel(ckpt);
      const layout = model.layers[model.layers.length - 1]!;
      const prov = await layerProvenance(model, layout, backend, parentCkpt ? { parent: denseParentOf(parentCkpt) } : {});
      const v = decideRecipe({ provenance: prov, signalRankRatio: null });
      const truth = expectedRecipe(c.recipe, c.withParent);
      const predicted = v.recipe ?? (v.type === 'native' ? 'native' : 'uncertain');
      const row = { ...c, truth, predicted, confidence: v.confidence, correct: predicted === truth };
      rows.push(row);
      onRow?.(row);
    } finally {
      await ckpt.close();
      await parentCkpt?.close();
      await rm(moe, { recursive: true, force: true });
      await rm(parentDir, { recursive: true, force: true });
    }
  }
  return rows;
}

/** Markdown confusion table: truth rows, predicted columns; "all" counts and, in brackets, those with confidence >= minConfidence. */
export function confusionTable(rows: readonly CalibrationRow[], minConfidence = 0.9): string {
  const truths = [...new Set(rows.map((r) => r.truth))];
  const preds = [...new Set(rows.map((r) => r.predicted))];
  const head = `| truth \\ verdict | ${preds.join(' | ')} |`;
  const sep = `|---|${preds.map(() => '---').join('|')}|`;
  const body = truths.map((t) => {
    const cells = preds.map((p) => {
      const all = rows.filter((r) => r.truth === t && r.predicted === p);
      const conf = all.filter((r) => r.confidence >= minConfidence).length;
      return all.length ? `${all.length} (${conf})` : '';
    });
    return `| ${t} | ${cells.join(' | ')} |`;
  });
  const confident = rows.filter((r) => r.confidence >= minConfidence);
  const right = confident.filter((r) => r.correct).length;
  return [head, sep, ...body, '', `verdicts with confidence >= ${minConfidence}: ${confident.length} of ${rows.length}, right ${right} (${confident.length ? ((100 * right) / confident.length).toFixed(1) : '-'}%); all verdicts right ${rows.filter((r) => r.correct).length} of ${rows.length}`].join('\n');
}
