/**
 * `moe-inspect example` (npm run example): generates two small OLMoE-layout models once — one
 * upcycled (experts = base + rank 4/8/6 deltas), one native — and compares them: the main job of
 * the tool, on data whose answer is known.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { generateSyntheticCheckpoint, type SynthSpec } from '../engine/synth/generate';
import { formatAnalysis, formatCompare } from './format';
import { runInWorker } from './run-in-worker';
import { writeJsonAtomic } from './write-output';

const COMMON = { family: 'olmoe', dtype: 'BF16', numLayers: 2, numExperts: 8, hidden: 256, intermediate: 128, seed: 2026 } as const;
const EXAMPLES: Record<string, SynthSpec> = {
  'olmoe-upcycled': { ...COMMON, structure: { kind: 'upcycled', ranks: { gate: 4, up: 8, down: 6 } } },
  'olmoe-native': { ...COMMON, structure: { kind: 'native' } },
};

export async function exampleCommand(): Promise<number> {
  const root = join(__dirname, '..', '.cache', 'example');
  for (const [name, spec] of Object.entries(EXAMPLES)) {
    const dir = join(root, name);
    if (!existsSync(join(dir, 'synth-ground-truth.json'))) {
      process.stderr.write(`generating the example model ${dir}\n`);
      await generateSyntheticCheckpoint(dir, spec);
    }
  }
  const r = await runInWorker({
    kind: 'compare',
    models: [join(root, 'olmoe-upcycled'), join(root, 'olmoe-native')],
    layers: { kind: 'all' },
    sampleExperts: null,
    device: 'auto',
  });
  if (r.kind !== 'compare') throw new Error('unexpected result');
  const out = join(root, 'compare.json');
  await writeJsonAtomic(out, r.report);
  process.stdout.write(`${formatAnalysis(r.report.models[0])}\n\n${formatCompare(r.report, out)}\n\nFull report (moe-inspector/compare@1): ${out}\n`);
  return 0;
}
