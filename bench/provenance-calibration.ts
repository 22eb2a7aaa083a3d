/**
 * npm run bench:calibration: the verdict with recipe over the generator's recipes, layouts/dtypes
 * (mixtral BF16, qwen2_moe BF16, deepseek_v3 FP8, gpt_oss MXFP4), training drift levels, with and
 * without the dense parent; prints the confusion table the README quotes.
 * Usage: node dist/provenance-calibration.js [--drifts 0,0.5,1,2]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createComputeBackend } from '../src/engine/numerics/backend';
import { CALIBRATION_LAYOUTS, CALIBRATION_RECIPES, confusionTable, runCalibration, type CalibrationCase } from '../src/engine/provenance/calibration';

async function main(): Promise<void> {
  const at = process.argv.indexOf('--drifts');
  const drifts = at > 0 ? process.argv[at + 1]!.split(',').map(Number) : [0, 0.5, 1, 2];
  const cases: CalibrationCase[] = [];
  for (const drift of drifts) {
    for (const { family, dtype } of CALIBRATION_LAYOUTS) {
      for (const { name, recipe } of CALIBRATION_RECIPES) {
        for (const withParent of [false, true]) cases.push({ name: `${name} drift ${drift}`, recipe: { ...recipe, drift }, family, dtype, withParent });
      }
    }
  }
  const backend = await createComputeBackend('cpu');
  const dir = await mkdtemp(join(tmpdir(), 'moe-calibration-'));
  const started = performance.now();
  try {
    const rows = await runCalibration(cases, backend, dir, undefined, (r) => {
      if (!r.correct) process.stderr.write(`  miss: ${r.name} ${r.family} ${r.dtype}${r.withParent ? ' +parent' : ''}: ${r.truth} -> ${r.predicted} (${r.confidence})\n`);
    });
    process.stdout.write(`${cases.length} cases (8 experts, hidden 64, 64 neurons each; drifts ${drifts.join(', ')}), ${((performance.now() - started) / 1000).toFixed(1)} s\n\n`);
    process.stdout.write(confusionTable(rows) + '\n');
    for (const drift of drifts) {
      const sub = rows.filter((r) => r.recipe.drift === drift);
      process.stdout.write(`drift ${drift}: right ${sub.filter((r) => r.correct).length}/${sub.length}\n`);
    }
  } finally {
    await backend.dispose();
    await rm(dir, { recursive: true, force: true });
  }
}

void main();
