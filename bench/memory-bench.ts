/**
 * npm run bench:memory: the big-shape speed and memory goals (never asserted in tests). One MoE layer of each shape,
 * ALL experts, analysed by the real CLI (`moe-inspect analyze`, which forks the worker); time per
 * layer and per stage from the report, peak RSS of the whole process tree measured from outside
 * (process-tree.ts: summed VmRSS of the CLI and its descendants every 50 ms, and the sum of their
 * VmHWM as an upper bound). The memory goal: at most 2.5 GiB for every shape.
 *   gpt-oss      GPT-OSS-20B-shaped: 32 experts, gate/up/down 2880x2880, MXFP4 with biases
 *   olmoe        OLMoE-shaped: 64 experts, gate/up 1024x2048, down 2048x1024, BF16
 *   deepseek-v3  DeepSeek-V3-shaped: 256 experts, gate/up 2048x7168, down 7168x2048, FP8 128x128 block scales (11 GB)
 *   kimi-k2      Kimi-K2-shaped: 384 experts, same matrices (17 GB)
 * Models are generated once into .bench-cache/ (native structure, like the real models).
 * Usage: npm run bench:memory -- [--only gpt-oss,olmoe,deepseek-v3,kimi-k2] [--experts N] [--skip-decode]
 *                         [--overlay SHAPES | --skip-overlay] [--skip-analyze] [--delete-after]
 *   --overlay SHAPES  overlay compute --save, verify of the saved overlay and estimate (energy rule) on
 *                  these of the chosen shapes (default: gpt-oss when chosen); --skip-overlay none;
 *                  --overlay-modes compute,verify,estimate a subset (verify needs compute's folder);
 *                  --skip-analyze the overlay runs alone
 *   --experts N    override the expert count of the chosen shapes (same matrices; the cache folder is per count)
 *   --delete-after remove each generated model once its run is done (the FP8 shapes are GBs)
 *   --sample-experts N  pass two (the spectra) on N experts only; pass one still reads every expert
 *                  (memory runs at the full expert count without hours of spectra)
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { generateSyntheticCheckpoint, type SynthSpec } from '../src/engine/synth/generate';
import type { AnalysisReport, OverlayReport } from '../src/engine/report/schema';
import { runDecodeBench } from './decode-bench';
import { writeFp8Layer, type Fp8LayerSpec } from './fp8-model';
import { runMeasured, type TreeRun } from './process-tree';

const ROOT = join(__dirname, '..');
const CACHE = join(ROOT, '.bench-cache');
const CLI = join(ROOT, 'dist', 'cli.js');
const GIB = 2 ** 30;
const RSS_GOAL = 2.5 * GIB;

type Shape = { readonly kind: 'synth'; readonly spec: SynthSpec; readonly note: string } | { readonly kind: 'fp8'; readonly spec: Fp8LayerSpec; readonly note: string };

const SHAPES: Record<string, Shape> = {
  'gpt-oss': { kind: 'synth', note: 'MXFP4 with biases', spec: { family: 'gpt_oss', dtype: 'MXFP4', numLayers: 1, numExperts: 32, hidden: 2880, intermediate: 2880, structure: { kind: 'native' }, seed: 20, expertsOnly: true } },
  olmoe: { kind: 'synth', note: 'BF16', spec: { family: 'olmoe', dtype: 'BF16', numLayers: 1, numExperts: 64, hidden: 2048, intermediate: 1024, structure: { kind: 'native' }, seed: 7, expertsOnly: true } },
  'deepseek-v3': { kind: 'fp8', note: 'FP8 E4M3, 128x128 block scales', spec: { modelType: 'deepseek_v3', numExperts: 256, hidden: 7168, intermediate: 2048 } },
  'kimi-k2': { kind: 'fp8', note: 'FP8 E4M3, 128x128 block scales', spec: { modelType: 'kimi_k2', numExperts: 384, hidden: 7168, intermediate: 2048 } },
};

const TARGET_SECONDS: Record<string, number> = { 'gpt-oss': 50, olmoe: 11 };

function withExperts(shape: Shape, experts: number | null): Shape {
  if (experts === null) return shape;
  return shape.kind === 'synth' ? { ...shape, spec: { ...shape.spec, numExperts: experts } } : { ...shape, spec: { ...shape.spec, numExperts: experts } };
}

function dirOf(name: string, shape: Shape, experts: number | null): string {
  return join(CACHE, experts === null ? name : `${name}-e${shape.spec.numExperts}`);
}

const MARKER = 'bench-model-complete';

function ensureModel(name: string, experts: number | null): string {
  const shape = withExperts(SHAPES[name]!, experts);
  const dir = dirOf(name, shape, experts);
  if (!existsSync(join(dir, MARKER)) && !existsSync(join(dir, 'synth-ground-truth.json'))) {
    const t0 = performance.now();
    process.stderr.write(`generating ${dir} (once) ...\n`);
    rmSync(dir, { recursive: true, force: true });
    // In a child process, so the generator's memory and time stay out of the measurements.
    execFileSync(process.execPath, [process.argv[1]!, '--generate', name, String(experts ?? '')], { stdio: 'inherit' });
    process.stderr.write(`  generated in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  }
  return dir;
}

async function generate(name: string, experts: number | null): Promise<void> {
  const shape = withExperts(SHAPES[name]!, experts);
  const dir = dirOf(name, shape, experts);
  if (shape.kind === 'synth') await generateSyntheticCheckpoint(dir, shape.spec);
  else await writeFp8Layer(dir, shape.spec);
  execFileSync('touch', [join(dir, MARKER)]);
}

const gib = (b: number) => `${(b / GIB).toFixed(2)} GiB`;

function memoryLine(r: TreeRun): string {
  const verdict = Math.max(r.peakTreeRss, r.sumOfPeaks) <= RSS_GOAL ? 'within' : 'OVER';
  const each = r.perProcess.map((p) => `${p.script} ${gib(p.hwm)}`).join(' + ');
  return `peak RSS of the process tree ${gib(r.peakTreeRss)} (max of summed VmRSS, ${r.samples} samples at 50 ms); sum of per-process VmHWM ${gib(r.sumOfPeaks)} (${each}); ${verdict} the 2.5 GiB goal`;
}

interface Row {
  readonly what: string;
  readonly seconds: string;
  readonly rss: TreeRun;
}

const rows: Row[] = [];

function cliEnv(): NodeJS.ProcessEnv {
  return { ...process.env, ORT_DISABLE_TELEMETRY: '1' };
}

async function benchAnalyze(name: string, experts: number | null, sample: number | null): Promise<void> {
  const shape = withExperts(SHAPES[name]!, experts);
  const dir = ensureModel(name, experts);
  const out = join(CACHE, `${name}-report.json`);
  rmSync(out, { force: true }); // an interrupted bench leaves its unfinished report; the CLI would refuse to overwrite it
  const r = await runMeasured(process.execPath, [CLI, 'analyze', '-m', dir, ...(sample ? ['--sample-experts', String(sample)] : []), '-o', out], cliEnv());
  if (r.code !== 0) throw new Error(`analyze of ${dir} failed (exit ${r.code}): ${r.stderr.slice(-2000)}`);
  const report = JSON.parse(readFileSync(out, 'utf8')) as AnalysisReport;
  const l = report.layers[0]!;
  const st = report.runtime.stages;
  const E = report.model.num_experts;
  const full = SHAPES[name]!.spec.numExperts;
  const what = `${name}-shaped layer, ${E}${E !== full ? ` of ${full}` : ''} experts, ${l.projections.gate!.shape.join('x')}/${l.projections.down!.shape.join('x')} ${shape.note}`;
  const layerSeconds = report.runtime.layer_seconds?.[0] ?? report.runtime.seconds;
  process.stdout.write(
    `\n${what}, ${sample ? `pass one over all experts, spectra of ${sample} sampled (${3 * sample} spectra)` : `all experts, ${3 * E} spectra`}\n` +
      `  CLI + worker: ${r.seconds.toFixed(1)} s wall; the layer ${layerSeconds.toFixed(1)} s${TARGET_SECONDS[name] ? ` (target <= ${TARGET_SECONDS[name]} s)` : ''}, execution provider ${report.runtime.execution_provider}\n` +
      (st
        ? `  stages: reading ${st.reading.toFixed(1)} s, base+norms ${st.base_and_norms.toFixed(1)} s, cosine ${st.cosine.toFixed(1)} s, delta Grams ${st.delta_gram.toFixed(1)} s, stage one ${st.stage_one.toFixed(1)} s, eigen worker ${st.eigen_worker.toFixed(1)} s (overlaps the main thread)${l.provenance ? `, provenance ${l.provenance.seconds.toFixed(1)} s (${l.provenance.expert_reads} expert reads, ${l.provenance.summary.pairs} pairs among ${l.provenance.pair_experts?.length ?? E} experts)` : ''}\n`
        : '') +
      `  ${(report.runtime.checkpoint_bytes_read ?? 0) / 1e9 > 0 ? `${((report.runtime.checkpoint_bytes_read ?? 0) / 1e9).toFixed(2)} GB read from a ${((report.runtime.checkpoint_bytes ?? 0) / 1e9).toFixed(2)} GB checkpoint (two passes)` : ''}\n` +
      `  ${memoryLine(r)}\n` +
      `  verdict ${l.verdict.type} (${l.verdict.confidence}); gate rank ratio ${(100 * l.projections.gate!.rank_ratio).toFixed(1)}%, cosine ${l.projections.gate!.cosine.mean.toFixed(4)}\n`,
  );
  rows.push({ what: sample ? `${what}, spectra of ${sample}` : what, seconds: `${layerSeconds.toFixed(1)} s`, rss: r });
  rmSync(out, { force: true });
}

/** Fixed overlay ranks per shape (gate/up/down): GPT-OSS-shaped at 64/256/128 as in the README's earlier rows, the others 64 each. */
const OVERLAY_RANKS: Record<string, readonly [number, number, number]> = { 'gpt-oss': [64, 256, 128], olmoe: [64, 64, 64], 'deepseek-v3': [64, 64, 64], 'kimi-k2': [64, 64, 64] };

type OverlayMode = 'compute' | 'verify' | 'estimate';
const OVERLAY_MODES: readonly OverlayMode[] = ['compute', 'verify', 'estimate'];

/**
 * Overlay compute with --save (each expert's factors streamed into the layer file), verify of the
 * saved overlay (one expert's factors read at a time) and estimate by the energy rule (every
 * expert's spectrum), each through the CLI, measured like the analysis. Verify needs compute's folder.
 */
async function benchOverlay(name: string, experts: number | null, modes: readonly OverlayMode[]): Promise<void> {
  const dir = ensureModel(name, experts);
  const [g, u, d] = OVERLAY_RANKS[name]!;
  const saved = join(CACHE, `${name}-overlay`);
  const args: Record<OverlayMode, readonly string[]> = {
    compute: ['--gate-rank', String(g), '--up-rank', String(u), '--down-rank', String(d), '--save', saved],
    verify: ['--overlay', saved, '--max-error', '10'],
    estimate: ['--energy', '0.9'],
  };
  const label: Record<OverlayMode, string> = {
    compute: `compute --save, ranks ${g}/${u}/${d}`,
    verify: `verify of the saved overlay, ranks ${g}/${u}/${d}`,
    estimate: 'estimate, --energy 0.9 (every expert\'s spectrum)',
  };
  if (modes.includes('compute')) rmSync(saved, { recursive: true, force: true });
  for (const mode of modes) {
    const out = join(CACHE, `overlay-${mode}.json`);
    rmSync(out, { force: true });
    const r = await runMeasured(process.execPath, [CLI, 'overlay', mode, '-m', dir, ...args[mode], '-o', out], cliEnv());
    if (r.code !== 0) throw new Error(`overlay ${mode} of ${dir} failed (exit ${r.code}): ${r.stderr.slice(-2000)}`);
    const report = JSON.parse(readFileSync(out, 'utf8')) as OverlayReport;
    const what = `overlay ${label[mode]}, ${name}-shaped, ${withExperts(SHAPES[name]!, experts).spec.numExperts} experts`;
    const l = report.layers[0];
    const outcome = `ranks ${l?.ranks ? `${l.ranks.gate}/${l.ranks.up}/${l.ranks.down}` : '?'}, ratio ${l?.ratio?.toFixed(2) ?? '?'}${report.verification ? `, worst error ${report.verification.worst.toExponential(3)}` : ''}`;
    process.stdout.write(`\n${what}: ${r.seconds.toFixed(1)} s (CLI + worker); ${outcome}\n  ${memoryLine(r)}\n`);
    rows.push({ what, seconds: `${r.seconds.toFixed(1)} s`, rss: r });
    rmSync(out, { force: true });
  }
  if (modes.includes('verify')) rmSync(saved, { recursive: true, force: true });
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === '--generate') {
    await generate(args[1]!, args[2] ? Number(args[2]) : null);
    return;
  }
  const value = (flag: string) => (args.includes(flag) ? args[args.indexOf(flag) + 1] : undefined);
  const only = value('--only')?.split(',') ?? Object.keys(SHAPES);
  for (const n of only) if (!SHAPES[n]) throw new Error(`unknown shape ${n}: one of ${Object.keys(SHAPES).join(', ')}`);
  const experts = value('--experts') ? Number(value('--experts')) : null;
  if (experts !== null && !(Number.isInteger(experts) && experts >= 2)) throw new Error('--experts needs an integer >= 2');
  const deleteAfter = args.includes('--delete-after');
  const sample = value('--sample-experts') ? Number(value('--sample-experts')) : null;
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: npm run build first`);
  process.stdout.write(`MoE Inspector bench — ${new Date().toISOString()}, load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}\n`);
  if (!args.includes('--skip-decode')) {
    for (const r of runDecodeBench()) process.stdout.write(`decode ${JSON.stringify(r)}\n`);
  }
  const overlayOn = args.includes('--skip-overlay') ? [] : (value('--overlay')?.split(',') ?? only.filter((n) => n === 'gpt-oss'));
  for (const n of overlayOn) if (!SHAPES[n]) throw new Error(`unknown shape ${n} in --overlay: one of ${Object.keys(SHAPES).join(', ')}`);
  const overlayModes = (value('--overlay-modes')?.split(',') ?? OVERLAY_MODES) as OverlayMode[];
  for (const m of overlayModes) if (!OVERLAY_MODES.includes(m)) throw new Error(`unknown overlay mode ${m}: one of ${OVERLAY_MODES.join(', ')}`);
  for (const name of only) {
    if (!args.includes('--skip-analyze')) await benchAnalyze(name, experts, sample);
    if (overlayOn.includes(name)) await benchOverlay(name, experts, overlayModes);
    if (deleteAfter) rmSync(dirOf(name, withExperts(SHAPES[name]!, experts), experts), { recursive: true, force: true });
  }
  process.stdout.write('\n| run | time | peak RSS, process tree (sampled) | sum of per-process peaks |\n|---|---|---|---|\n');
  for (const r of rows) process.stdout.write(`| ${r.what} | ${r.seconds} | ${gib(r.rss.peakTreeRss)} | ${gib(r.rss.sumOfPeaks)} |\n`);
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`bench failed: ${(e as Error).stack ?? e}\n`);
    process.exit(1);
  },
);
