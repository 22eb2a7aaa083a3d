/**
 * npm run bench:provenance — cost of neuron matching against the layer's spectra, each in its own
 * child process (so each peak RSS is its own), on a GPT-OSS-shaped layer: E experts (default 32),
 * 2880 neurons over hidden 2880, MXFP4, generated once into .bench-cache/. Also prints the memory
 * bound of matching for a DeepSeek-V3-shaped layer (256 experts, 2048 neurons, hidden 7168),
 * computed from the same formula the pass allocates by (too large to generate here).
 * Usage: node dist/provenance-bench.js [--experts N]
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { analyzeModel } from '../src/engine/analysis/analyze-model';
import { resolveMoeModel } from '../src/engine/layouts';
import { openCheckpoint } from '../src/engine/model/open-checkpoint';
import { createComputeBackend } from '../src/engine/numerics/backend';
import { layerProvenance, provenanceMemoryBound } from '../src/engine/provenance/layer-provenance';
import { DEFAULT_THRESHOLDS } from '../src/engine/report/schema';
import { generateSyntheticCheckpoint } from '../src/engine/synth/generate';

const CACHE = join(__dirname, '..', '.bench-cache');

async function child(what: string, dir: string): Promise<void> {
  const backend = await createComputeBackend('auto');
  const ckpt = await openCheckpoint(dir);
  const model = resolveMoeModel(ckpt);
  const t0 = performance.now();
  if (what === 'provenance') {
    const p = await layerProvenance(model, model.layers[0]!, backend);
    process.stdout.write(JSON.stringify({ seconds: (performance.now() - t0) / 1000, rssMiB: process.resourceUsage().maxRSS / 1024, reads: p.expert_reads, pairsSharing: p.summary.pairs_sharing, sketch: p.method.sketch_dim }) + '\n');
  } else {
    await analyzeModel(model, { source: dir, revision: null, sharedExperts: false }, backend, { layers: { kind: 'first' }, sampleExperts: null, thresholds: DEFAULT_THRESHOLDS });
    process.stdout.write(JSON.stringify({ seconds: (performance.now() - t0) / 1000, rssMiB: process.resourceUsage().maxRSS / 1024 }) + '\n');
  }
  await ckpt.close();
  await backend.dispose();
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === '--child') return child(args[1]!, args[2]!);
  const E = args.includes('--experts') ? Number(args[args.indexOf('--experts') + 1]) : 32;
  const dir = join(CACHE, `gpt-oss-provenance-${E}`);
  if (!existsSync(join(dir, 'synth-ground-truth.json'))) {
    process.stderr.write(`generating ${dir} (once) ...\n`);
    await generateSyntheticCheckpoint(dir, { family: 'gpt_oss', dtype: 'MXFP4', numLayers: 1, numExperts: E, hidden: 2880, intermediate: 2880, structure: { kind: 'recipe', recipe: { kind: 'permuted-copy', reinit: 0.5 } }, seed: 21, expertsOnly: true });
  }
  const run = (what: string) => JSON.parse(execFileSync(process.execPath, [...process.execArgv, process.argv[1]!, '--child', what, dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }));
  const load = (await import('node:os')).loadavg().map((x) => x.toFixed(2)).join(' ');
  const spectra = run('spectra');
  const matching = run('provenance');
  process.stdout.write(
    `provenance bench — ${new Date().toISOString()}, load average ${load}\n` +
      `GPT-OSS-shaped layer, ${E} experts x 2880 neurons, hidden 2880, MXFP4 (permuted-copy r=0.5):\n` +
      `  spectra (analyze, rank + cosine, 3 x ${E} spectra): ${spectra.seconds.toFixed(1)} s, peak RSS ${spectra.rssMiB.toFixed(0)} MiB\n` +
      `  neuron matching (${(E * (E - 1)) / 2} pairs, sketch ${matching.sketch}, ${matching.reads} expert reads): ${matching.seconds.toFixed(1)} s, peak RSS ${matching.rssMiB.toFixed(0)} MiB; ${matching.pairsSharing} pairs sharing\n` +
      `  matching / spectra: time ${(matching.seconds / spectra.seconds).toFixed(2)}, peak memory ${(matching.rssMiB / spectra.rssMiB).toFixed(2)}\n`,
  );
  const ds = provenanceMemoryBound({ experts: 256, neurons: 2048, hidden: 7168, gated: true });
  process.stdout.write(`DeepSeek-V3-shaped layer (256 experts, 2048 neurons, hidden 7168): matching holds at most ${(ds.total / 2 ** 30).toFixed(2)} GiB (sketches ${(ds.sketches / 2 ** 20).toFixed(0)} MiB at k = ${ds.sketchDim}, held neurons ${(ds.held / 2 ** 20).toFixed(0)} MiB, one expert being read ${(ds.reading / 2 ** 20).toFixed(0)} MiB)\n`);
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`bench failed: ${(e as Error).stack ?? e}\n`);
    process.exit(1);
  },
);
