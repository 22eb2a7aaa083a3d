/**
 * npm run bench: the speed and memory goals (never asserted in tests).
 *   - a GPT-OSS-20B-shaped layer: 32 experts, gate/up/down 2880x2880, MXFP4 with biases
 *   - an OLMoE-shaped layer: 64 experts, gate/up 1024x2048, down 2048x1024, BF16
 * Each is generated once into .bench-cache/ (native structure, like the real models), then one
 * layer is analysed with ALL experts, in this process, timed by stage.
 * With python3 + numpy + scipy, each layer is run interleaved with the same numpy pipeline
 * (numpy-compare.ts) and the ratio printed.
 *   - a safetensors header of 10^6 entries, parsed and validated, against JSON.parse of its bytes
 * Usage: npm run bench [-- --only gpt-oss|olmoe|header] [-- --skip-decode] [-- --skip-header] [-- --runs N] [-- --numpy-threads N] [-- --no-numpy] [-- --skip-overlay]
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { generateSyntheticCheckpoint, type SynthSpec } from '../src/engine/synth/generate';
import { openCheckpoint } from '../src/engine/model/open-checkpoint';
import { resolveMoeModel } from '../src/engine/layouts';
import { createComputeBackend } from '../src/engine/numerics/backend';
import { analyzeModel } from '../src/engine/analysis/analyze-model';
import { DEFAULT_THRESHOLDS } from '../src/engine/report/schema';
import { runDecodeBench } from './decode-bench';
import { runHeaderBench } from './header-bench';
import { overlayComputeAndVerify } from '../src/engine/overlay';
import { layerIndex } from '../src/engine/layouts/types';
import { emptyTimings } from '../src/engine/numerics/projection-metrics';
import { compareWithNumpy, projectRun, type ProjectRun } from './numpy-compare';
import { benchEnergyRule } from './overlay-spectra';

const CACHE = join(__dirname, '..', '.bench-cache');

const SHAPES: Record<string, SynthSpec> = {
  'gpt-oss': { family: 'gpt_oss', dtype: 'MXFP4', numLayers: 1, numExperts: 32, hidden: 2880, intermediate: 2880, structure: { kind: 'native' }, seed: 20, expertsOnly: true },
  olmoe: { family: 'olmoe', dtype: 'BF16', numLayers: 1, numExperts: 64, hidden: 2048, intermediate: 1024, structure: { kind: 'native' }, seed: 7, expertsOnly: true },
};

const TARGETS: Record<string, number> = { 'gpt-oss': 50, olmoe: 11 };

function peakRssMiB(): number {
  return process.resourceUsage().maxRSS / 1024;
}

async function ensureModel(name: string): Promise<string> {
  const dir = join(CACHE, name);
  if (!existsSync(join(dir, 'synth-ground-truth.json'))) {
    const t0 = performance.now();
    process.stderr.write(`generating ${dir} (once) ...\n`);
    // In a child process, so the generator's memory does not count in the analysis' peak RSS.
    execFileSync(process.execPath, [...process.execArgv, process.argv[1]!, '--generate', name], { stdio: 'inherit' });
    process.stderr.write(`  generated in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  }
  return dir;
}

async function benchAnalyze(name: string): Promise<ProjectRun> {
  const dir = await ensureModel(name);
  const backend = await createComputeBackend('auto');
  const ckpt = await openCheckpoint(dir);
  const model = resolveMoeModel(ckpt);
  const stages = new Map<string, number>();
  const timings = emptyTimings();
  let last = performance.now();
  let lastStage = '';
  const t0 = performance.now();
  const report = await analyzeModel(model, { source: dir, revision: null, sharedExperts: false }, backend, {
    layers: { kind: 'first' },
    sampleExperts: null,
    thresholds: DEFAULT_THRESHOLDS,
    timings,
    onProgress: (p) => {
      const now = performance.now();
      if (lastStage) stages.set(lastStage, (stages.get(lastStage) ?? 0) + (now - last));
      last = now;
      lastStage = p.stage;
      if (p.stage === 'spectra' && process.stderr.isTTY) process.stderr.write(`\r  ${p.message}   `);
    },
  });
  const seconds = (performance.now() - t0) / 1000;
  if (lastStage) stages.set(lastStage, (stages.get(lastStage) ?? 0) + (performance.now() - last));
  await ckpt.close();
  const l = report.layers[0]!;
  const where = [...stages.entries()].map(([k, v]) => `${k} ${(v / 1000).toFixed(1)} s`).join(', ');
  process.stdout.write(
    `\n${name}-shaped layer: ${model.numExperts} experts x 3 projections ${l.projections.gate!.shape.join('x')}/${l.projections.down!.shape.join('x')}, all experts\n` +
      `  analyze: ${seconds.toFixed(1)} s (target <= ${TARGETS[name]} s), peak RSS ${peakRssMiB().toFixed(0)} MiB (target < 3072), execution provider ${backend.executionProvider}\n` +
      `  where the time goes: ${where}\n` +
      `  verdict ${l.verdict.type} (${l.verdict.confidence}); gate rank ratio ${(100 * l.projections.gate!.rank_ratio).toFixed(1)}%, cosine ${l.projections.gate!.cosine.mean.toFixed(4)}\n`,
  );
  await backend.dispose();
  return projectRun(report, seconds, (stages.get('reading') ?? 0) / 1000, timings);
}

async function main(): Promise<void> {
  // Sessions start in this process: the variable the worker client sets for its child, set here too.
  process.env['ORT_DISABLE_TELEMETRY'] = '1';
  const args = process.argv.slice(2);
  if (args[0] === '--generate') {
    await generateSyntheticCheckpoint(join(CACHE, args[1]!), SHAPES[args[1]!]!);
    return;
  }
  const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : undefined;
  process.stdout.write(`MoE Inspector bench — ${new Date().toISOString()}, load average ${(await import('node:os')).loadavg().map((x) => x.toFixed(2)).join(' ')}\n`);
  if (!args.includes('--skip-decode')) {
    for (const r of runDecodeBench()) process.stdout.write(`decode ${JSON.stringify(r)}\n`);
  }
  // safetensors header of 10^6 entries vs JSON.parse of the same bytes (the reference's stand-in).
  if (!args.includes('--skip-header')) process.stdout.write(`header ${JSON.stringify(await runHeaderBench())}\n`);
  if (only === 'header') return;
  const runs = args.includes('--runs') ? Number(args[args.indexOf('--runs') + 1]) : 3;
  const numpyThreads = args.includes('--numpy-threads') ? Number(args[args.indexOf('--numpy-threads') + 1]) : null;
  for (const name of Object.keys(SHAPES)) {
    if (only && only !== name) continue;
    if (args.includes('--no-numpy')) await benchAnalyze(name);
    else await compareWithNumpy(name, await ensureModel(name), SHAPES[name]!.family, runs, numpyThreads, () => benchAnalyze(name));
  }
  if (!args.includes('--skip-overlay') && (!only || only === 'gpt-oss')) await benchOverlay();
  // neuron matching vs spectra (GPT-OSS shape) and the DeepSeek-V3-shaped memory bound: bench/provenance-bench.ts
  if (!args.includes('--skip-provenance') && (!only || only === 'gpt-oss')) execFileSync(process.execPath, [join(__dirname, 'provenance-bench.js')], { stdio: 'inherit' });
}

/** Overlay compute + verify of the GPT-OSS-shaped layer at ranks gate 64 / up 256 / down 128. */
async function benchOverlay(): Promise<void> {
  const dir = await ensureModel('gpt-oss');
  const backend = await createComputeBackend('auto');
  const ckpt = await openCheckpoint(dir);
  const model = resolveMoeModel(ckpt);
  const ranks = { gate: 64, up: 256, down: 128 };
  const r = await overlayComputeAndVerify(model, layerIndex(0), ranks, backend);
  const energyLine = await benchEnergyRule(model, layerIndex(0), backend);
  await ckpt.close();
  process.stdout.write(
    `\ngpt-oss-shaped layer overlay at ranks ${JSON.stringify(ranks)}: compute ${r.computeSeconds.toFixed(1)} s, verify ${r.verifySeconds.toFixed(1)} s, ` +
      `peak RSS ${peakRssMiB().toFixed(0)} MiB, execution provider ${backend.executionProvider}\n${energyLine}\n`,
  );
  await backend.dispose();
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`bench failed: ${(e as Error).stack ?? e}\n`);
    process.exit(1);
  },
);
