/** `moe-inspect overlay compute|verify|estimate`: argument parsing and exit codes; the work runs in the worker. */
import { parseArgs } from 'node:util';
import { MoeInspectorError } from '../engine/errors';
import { OVERLAY_DTYPES, type OverlayDtype } from '../engine/overlay/types';
import type { OverlayReport } from '../engine/report/schema';
import type { Job, JobResult, OverlayJob, OverlayRanks } from '../shared/messages';
import type { Values } from './main';
import { reportSavedRun } from './saved-run';

export interface OverlayCommandDeps {
  /** savedByWorker: the worker already wrote -o (a resumable estimate). */
  readonly emit: (values: Values, report: unknown, text: string, savedByWorker?: boolean) => Promise<void>;
  readonly formatOverlay: (r: OverlayReport) => string;
  /** Runs the job (default: a fresh worker process via main.ts's runInWorker). */
  readonly run?: (job: Job) => Promise<JobResult>;
}

const OPTIONS = {
  model: { type: 'string', short: 'm' },
  output: { type: 'string', short: 'o' },
  json: { type: 'boolean' },
  device: { type: 'string' },
  layer: { type: 'string' },
  layers: { type: 'string' },
  'gate-rank': { type: 'string' },
  'up-rank': { type: 'string' },
  'down-rank': { type: 'string' },
  energy: { type: 'string' },
  'target-ratio': { type: 'string' },
  save: { type: 'string' },
  overlay: { type: 'string' },
  inputs: { type: 'string' },
  'max-error': { type: 'string' },
  seed: { type: 'string' },
  'overlay-dtype': { type: 'string' },
  fast: { type: 'boolean' },
  resume: { type: 'boolean' },
  'allow-full-download': { type: 'boolean' },
} as const;

const MODES = ['compute', 'verify', 'estimate'] as const;

export async function overlayCommand(args: string[], deps: OverlayCommandDeps): Promise<number> {
  const [mode, ...rest] = args;
  if (!MODES.includes(mode as (typeof MODES)[number])) throw new MoeInspectorError('usage', `overlay needs a mode: compute, verify or estimate (got "${mode ?? ''}")`);
  // main.ts imports this module; importing main lazily keeps the two from loading in a cycle.
  const cli = await import('./main');
  const { values: v } = parseArgs({ args: rest, options: OPTIONS, strict: true });
  const job = buildJob(mode as OverlayJob['mode'], v, cli);
  const run = deps.run ?? cli.runInWorker;
  const r = await reportSavedRun(job.output, () => run(job));
  if (r.kind !== 'overlay') throw new Error('unexpected result');
  await deps.emit(v, r.report, deps.formatOverlay(r.report), job.output !== undefined);
  return r.report.verification && !r.report.verification.passed ? 1 : 0;
}

type Cli = Pick<typeof import('./main'), 'requireModel' | 'deviceOf' | 'layersOf' | 'intOf' | 'numberOf' | 'accessOf' | 'runOutputOf'>;

export function buildJob(mode: OverlayJob['mode'], v: Values, cli: Cli): OverlayJob {
  const overlayDir = str(v, 'overlay');
  if (overlayDir && mode !== 'verify') throw new MoeInspectorError('usage', '--overlay applies to overlay verify only');
  if (str(v, 'save') && mode !== 'compute') throw new MoeInspectorError('usage', '--save applies to overlay compute only');
  if (str(v, 'inputs') && mode !== 'verify') throw new MoeInspectorError('usage', '--inputs applies to overlay verify only');
  const dtype = str(v, 'overlay-dtype') ?? 'BF16';
  if (!OVERLAY_DTYPES.includes(dtype as OverlayDtype)) throw new MoeInspectorError('usage', `--overlay-dtype must be one of ${OVERLAY_DTYPES.join(', ')} (got "${dtype}")`);
  if (v['resume'] && mode !== 'estimate') throw new MoeInspectorError('usage', '--resume applies to overlay estimate (and analyze) only');
  // estimate saves its report after every layer (resumable); compute and verify write -o at the end.
  const output = mode === 'estimate' ? cli.runOutputOf(v) : undefined;
  const seed = cli.intOf(v, 'seed');
  const maxError = cli.numberOf(v, 'max-error');
  return {
    kind: 'overlay',
    mode,
    model: cli.requireModel(v),
    // A saved overlay is verified on all its layers unless told otherwise; estimate always covers every MoE layer.
    layers: mode === 'estimate' ? { kind: 'all' } : cli.layersOf(v, overlayDir ? { kind: 'all' } : { kind: 'first' }),
    ranks: ranksOf(v, cli),
    device: cli.deviceOf(v),
    overlayDtype: dtype as OverlayDtype,
    ...(str(v, 'save') ? { saveDir: str(v, 'save')! } : {}),
    ...(overlayDir ? { overlayDir } : {}),
    ...(str(v, 'inputs') ? { inputsFile: str(v, 'inputs')! } : {}),
    ...(maxError !== null ? { maxError } : {}),
    ...(seed !== null ? { seed } : {}),
    ...(v['fast'] ? { fast: true } : {}),
    ...(output ? { output } : {}),
    ...cli.accessOf(v),
  };
}

function str(v: Values, k: string): string | undefined {
  const s = v[k];
  return typeof s === 'string' ? s : undefined;
}

function ranksOf(v: Values, cli: Cli): OverlayRanks {
  const fixed = (['gate', 'up', 'down'] as const).map((p) => cli.intOf(v, `${p}-rank`));
  const energy = cli.numberOf(v, 'energy');
  const ratio = cli.numberOf(v, 'target-ratio');
  const given = [fixed.some((r) => r !== null), energy !== null, ratio !== null].filter(Boolean).length;
  if (given > 1) throw new MoeInspectorError('usage', 'give one of --gate-rank/--up-rank/--down-rank, --energy or --target-ratio');
  if (fixed.some((r) => r !== null)) {
    if (fixed.some((r) => r === null)) throw new MoeInspectorError('usage', 'fixed ranks need all three: --gate-rank R --up-rank R --down-rank R');
    return { kind: 'fixed', gate: fixed[0]!, up: fixed[1]!, down: fixed[2]! };
  }
  if (ratio !== null) {
    if (!(ratio > 0)) throw new MoeInspectorError('usage', `--target-ratio must be > 0 (got ${ratio})`);
    return { kind: 'target-ratio', ratio };
  }
  const e = energy ?? 0.95;
  if (!(e > 0 && e <= 1)) throw new MoeInspectorError('usage', `--energy must be in (0, 1] (got ${e})`);
  return { kind: 'energy', energy: e };
}
