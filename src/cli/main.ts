/**
 * moe-inspect: a thin shell over the engine. Heavy work runs in the worker process (dist/worker.js);
 * this process parses arguments, shows progress and prints or writes the reports.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { WorkerJobError } from '../client/worker-client';
import { isMoeInspectorError, MoeInspectorError } from '../engine/errors';
import { parseLayerSpec, parseShard } from '../engine/analysis/layer-selection';
import type { DeviceChoice, LayerSelection, ModelAccess, RunOutput } from '../shared/messages';
import { runInWorker } from './run-in-worker';
import { formatAnalysis, formatCompare, formatInfo } from './format';
import { formatProvenance } from './format-provenance';
import { writeJsonAtomic } from './write-output';
import { jsonPieces } from '../engine/io/json-file';
import { withLayers } from '../engine/report/analysis-run';
import type { LayerAnalysis } from '../engine/report/schema';
import { synthCommand } from './synth-command';
import { overlayCommand } from './overlay-command';
import { exampleCommand } from './example-command';
import { formatOverlay } from './format-overlay';
import { mergeCommand } from './merge-command';
import { reportSavedRun } from './saved-run';
import { MAIN_USAGE, usageOf } from './usage';

const COMMON = {
  model: { type: 'string', short: 'm' },
  output: { type: 'string', short: 'o' },
  json: { type: 'boolean' },
  device: { type: 'string' },
  layer: { type: 'string' },
  layers: { type: 'string' },
  'sample-experts': { type: 'string' },
  'full-spectra': { type: 'boolean' },
  'allow-full-download': { type: 'boolean' },
  parent: { type: 'string' },
  'no-provenance': { type: 'boolean' },
  'sketch-dim': { type: 'string' },
  'pair-experts': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

const ALIASES: Record<string, string[]> = {
  'moe-type-analyze': ['analyze'],
  'moe-type-compare': ['compare'],
  'moe-overlay-compute': ['overlay', 'compute'],
  'moe-overlay-verify': ['overlay', 'verify'],
  'moe-overlay-estimate': ['overlay', 'estimate'],
};

export type Values = Record<string, string | boolean | undefined>;

export function requireModel(v: Values, key = 'model', flag = '-m'): string {
  const m = v[key];
  if (typeof m !== 'string' || m === '') throw new MoeInspectorError('usage', `missing ${flag} MODEL`);
  return m;
}

export function deviceOf(v: Values): DeviceChoice {
  const d = v['device'] ?? 'auto';
  if (d !== 'auto' && d !== 'cpu' && d !== 'cuda') throw new MoeInspectorError('usage', `--device must be auto, cpu or cuda (got "${String(d)}")`);
  return d;
}

/** --allow-full-download: hub files whose server ignores Range may be fetched whole. */
export function accessOf(v: Values): ModelAccess {
  return v['allow-full-download'] === true ? { allowFullDownload: true } : {};
}

export function layersOf(v: Values, dflt: LayerSelection = { kind: 'first' }): LayerSelection {
  if (typeof v['layer'] === 'string' && typeof v['layers'] === 'string') throw new MoeInspectorError('usage', 'give --layer or --layers, not both');
  const spec = (v['layer'] ?? v['layers']) as string | undefined;
  return spec === undefined ? dflt : parseLayerSpec(spec);
}

export function intOf(v: Values, key: string): number | null {
  const s = v[key];
  if (s === undefined) return null;
  const n = Number(s);
  if (!Number.isInteger(n) || n < 0) throw new MoeInspectorError('usage', `--${key} must be a non-negative integer (got "${String(s)}")`);
  return n;
}

export function numberOf(v: Values, key: string): number | null {
  const s = v[key];
  if (s === undefined) return null;
  const n = Number(s);
  if (!Number.isFinite(n)) throw new MoeInspectorError('usage', `--${key} must be a number (got "${String(s)}")`);
  return n;
}

/** -o FILE [--resume]: the worker saves the report there after every layer. --resume without -o is a usage error. */
export function runOutputOf(v: Values): RunOutput | undefined {
  const path = v['output'];
  if (typeof path !== 'string' || path === '') {
    if (v['resume']) throw new MoeInspectorError('usage', '--resume continues the run saved in the -o file: give -o FILE');
    return undefined;
  }
  return { path, resume: v['resume'] === true };
}

export { runInWorker } from './run-in-worker';

/** Prints the report (text or --json) and writes -o, unless the worker already saved it there. */
async function emit(v: Values, report: unknown, text: string, savedByWorker = false): Promise<void> {
  if (typeof v['output'] === 'string') {
    if (!savedByWorker) await writeJsonAtomic(v['output'], report);
    process.stderr.write(`wrote ${v['output']}\n`);
  }
  if (!v['json']) process.stdout.write(text + '\n');
  else {
    // Piece by piece: a whole-model report can be longer than one JavaScript string may be.
    for (const piece of jsonPieces(report, '', 3)) process.stdout.write(piece);
    process.stdout.write('\n');
  }
}

async function analyzeCommand(args: string[]): Promise<number> {
  const { values: v } = parseArgs({ args, options: { ...COMMON, resume: { type: 'boolean' }, shard: { type: 'string' } }, strict: true });
  const shard = typeof v.shard === 'string' ? parseShard(v.shard) : undefined;
  const output = runOutputOf(v);
  const received: LayerAnalysis[] = [];
  const r = await reportSavedRun(output, () =>
    runInWorker({
      kind: 'analyze',
      model: requireModel(v),
      // A shard of the default selection means a shard of the whole model.
      layers: layersOf(v, shard ? { kind: 'all' } : { kind: 'first' }),
      sampleExperts: intOf(v, 'sample-experts'),
      device: deviceOf(v),
      ...(v['full-spectra'] ? { fullSpectra: true } : {}),
      ...(shard ? { shard } : {}),
      ...(output ? { output } : {}),
      ...provenanceOf(v),
      ...accessOf(v),
    }, { onPartial: (_m, l) => received.push(l) }),
  );
  if (r.kind !== 'analyze') throw new Error('unexpected result');
  const report = r.layersSent ? withLayers(r.report, received) : r.report;
  await emit(v, report, formatAnalysis(report), output !== undefined);
  return 0;
}

async function compareCommand(args: string[]): Promise<number> {
  const { values: v } = parseArgs({ args, options: { ...COMMON, compare: { type: 'string', short: 'c' } }, strict: true });
  const r = await runInWorker({
    kind: 'compare',
    models: [requireModel(v), requireModel(v, 'compare', '-c')],
    layers: layersOf(v),
    sampleExperts: intOf(v, 'sample-experts'),
    device: deviceOf(v),
    ...(v['no-provenance'] ? { provenance: false } : {}),
    ...accessOf(v),
  });
  if (r.kind !== 'compare') throw new Error('unexpected result');
  await emit(v, r.report, formatCompare(r.report, typeof v['output'] === 'string' ? v['output'] : null));
  return 0;
}

/** --pair-experts N|all: how many experts the pair pass matches pair by pair. */
function pairExpertsOf(v: Values): number | 'all' | null {
  const raw = v['pair-experts'];
  if (typeof raw !== 'string') return null;
  if (raw === 'all') return raw;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 2) throw new MoeInspectorError('usage', `--pair-experts must be an integer >= 2 or "all" (got ${raw})`);
  return n;
}

/** --parent DENSE, --no-provenance, --sketch-dim and --pair-experts (the neuron-matching pass is on by default). */
function provenanceOf(v: Values): { parent?: string; provenance?: boolean; sketchDim?: number; pairExperts?: number | 'all' } {
  if (v['no-provenance'] && typeof v['parent'] === 'string') throw new MoeInspectorError('usage', '--parent needs the provenance pass: drop --no-provenance');
  const k = intOf(v, 'sketch-dim');
  if (k !== null && (k < 8 || k > 4096)) throw new MoeInspectorError('usage', `--sketch-dim must be an integer in 8..4096 (got ${k})`);
  const pairs = pairExpertsOf(v);
  if (v['no-provenance'] && pairs !== null) throw new MoeInspectorError('usage', '--pair-experts needs the provenance pass: drop --no-provenance');
  return { ...(typeof v['parent'] === 'string' ? { parent: v['parent'] } : {}), ...(v['no-provenance'] ? { provenance: false } : {}), ...(k !== null ? { sketchDim: k } : {}), ...(pairs !== null ? { pairExperts: pairs } : {}) };
}

async function provenanceCommand(args: string[]): Promise<number> {
  const { values: v } = parseArgs({ args, options: COMMON, strict: true });
  const { provenance: _on, ...extra } = provenanceOf(v);
  const r = await runInWorker({ kind: 'provenance', model: requireModel(v), layers: layersOf(v), device: deviceOf(v), ...extra, ...accessOf(v) });
  if (r.kind !== 'provenance') throw new Error('unexpected result');
  await emit(v, r.report, formatProvenance(r.report));
  return 0;
}

async function infoCommand(args: string[]): Promise<number> {
  const { values: v, positionals } = parseArgs({ args, options: { ...COMMON, 'headers-only': { type: 'boolean' } }, strict: true, allowPositionals: true });
  const model = typeof v.model === 'string' ? v.model : positionals[0];
  // Without --headers-only a model whose experts cannot be laid out fails as analyze does (exit 1).
  const r = await runInWorker({ kind: 'info', model: requireModel({ model }), ...(v['headers-only'] ? { headersOnly: true } : {}), ...accessOf(v) });
  if (r.kind !== 'info') throw new Error('unexpected result');
  await emit(v, r.report, formatInfo(r.report));
  return 0;
}

const COMMANDS: Record<string, (args: string[]) => Promise<number>> = {
  analyze: analyzeCommand,
  compare: compareCommand,
  info: infoCommand,
  provenance: provenanceCommand,
  synth: synthCommand,
  overlay: (args) => overlayCommand(args, { emit, formatOverlay }),
  merge: (args) => mergeCommand(args, emit),
  example: exampleCommand,
};

export async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined || first === '--help' || first === '-h') {
    process.stdout.write(MAIN_USAGE + '\n');
    return first === undefined ? 2 : 0;
  }
  // "moe-inspect help analyze" = "moe-inspect analyze --help"
  if (first === 'help') return main(rest.length > 0 ? [...rest, '--help'] : ['--help']);
  const expanded = ALIASES[first] ? [...ALIASES[first]!, ...rest] : argv;
  const [cmd, ...args] = expanded;
  const run = COMMANDS[cmd!];
  if (!run) {
    process.stderr.write(`moe-inspect: unknown command "${cmd}"\n\n${MAIN_USAGE}\n`);
    return 2;
  }
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(usageOf(cmd!, args[0]) + '\n');
    return 0;
  }
  return run(args);
}

function exitCodeOf(e: unknown): number {
  const code = isMoeInspectorError(e) || e instanceof WorkerJobError ? e.code : (e as { code?: string }).code;
  if (code === 'cancelled') return 130;
  if (code === 'usage' || code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' || code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') return 2;
  return 1;
}

/** Exit once stdout and stderr have flushed: a pipe takes writes asynchronously, and exiting at once cut long --json reports short. */
function exitAfterFlush(code: number): void {
  let pending = 2;
  const done = (): void => {
    if (--pending === 0) process.exit(code);
  };
  process.stdout.write('', done);
  process.stderr.write('', done);
}

if (require.main === module) {
  main(process.argv.slice(2)).then(exitAfterFlush, (e: unknown) => {
    const msg = e instanceof Error ? e.message : String(e);
    process.stderr.write(`moe-inspect: ${msg}\n`);
    exitAfterFlush(exitCodeOf(e));
  });
}
