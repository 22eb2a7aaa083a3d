/** Shared by the resume and scheduler-recipe tests: a small multi-layer model and report comparisons. */
import { strict as assert } from 'node:assert';
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { PROJECTIONS } from '../../src/engine/layouts/types';
import type { AnalysisReport } from '../../src/engine/report/schema';
import type { SynthSpec } from '../../src/engine/synth/generate';
import { CLI } from './build';

/** Six MoE layers of mixed structure, so the model verdict is a real vote; about half a second per layer here. */
export function mixedModel(seed: number): SynthSpec {
  const up = { kind: 'upcycled' as const, ranks: { gate: 2, up: 3, down: 2 } };
  return {
    family: 'olmoe',
    dtype: 'BF16',
    numLayers: 6,
    numExperts: 8,
    hidden: 256,
    intermediate: 192,
    seed,
    structure: [up, { kind: 'native' }, up, { kind: 'partial', fraction: 0.5, ranks: { gate: 2, up: 3, down: 2 } }, { kind: 'native' }, up],
  };
}

export const CLI_ENV = { ...process.env, HF_HUB_OFFLINE: '1', ORT_DISABLE_TELEMETRY: '1' };

export function cli(args: readonly string[], cwd?: string): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: CLI_ENV, maxBuffer: 256 << 20, ...(cwd ? { cwd } : {}) });
}

export function readReport<T = AnalysisReport>(path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}

/** The report in `path` once `ready` holds for it; every read along the way must be a whole, valid report. */
export async function waitForReport<T>(path: string, ready: (r: T) => boolean, timeoutMs = 120_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    let text: string | null = null;
    try {
      text = readFileSync(path, 'utf8');
    } catch {
      // not written yet
    }
    if (text !== null) {
      const r = JSON.parse(text) as T; // throws (fails the test) on a half-written file
      if (ready(r)) return r;
    }
    if (Date.now() > until) throw new Error(`timed out waiting for ${path}`);
    await new Promise((res) => setTimeout(res, 25));
  }
}

/** Starts the CLI; `stop(signal)` sends the signal and resolves with the exit code and stderr. */
export function startCli(args: readonly string[]): { stop: (sig: NodeJS.Signals) => Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> } {
  const child = spawn(process.execPath, [CLI, ...args], { env: CLI_ENV, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => child.on('exit', (code, signal) => res({ code, signal })));
  return {
    stop: async (sig) => {
      child.kill(sig);
      const e = await exited;
      return { ...e, stderr };
    },
  };
}

function close(a: number, b: number, tol: number, what: string): void {
  assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);
}

function closeAll(a: readonly number[], b: readonly number[], tol: number, what: string): void {
  assert.equal(a.length, b.length, `${what}: length`);
  a.forEach((x, i) => close(x, b[i]!, tol, `${what}[${i}]`));
}

/**
 * `actual` says what `expected` says: the same layers in the same order, every rank and verdict equal,
 * every float (cosines, norms, singular values, confidences) within `tol` (relative above 1).
 */
export function assertSameAnalysis(actual: AnalysisReport, expected: AnalysisReport, tol: number): void {
  assert.deepEqual(actual.layers.map((l) => l.layer), expected.layers.map((l) => l.layer));
  assert.deepEqual(actual.verdict, expected.verdict);
  for (const [i, e] of expected.layers.entries()) {
    const a = actual.layers[i]!;
    const at = `layer ${e.layer}`;
    assert.deepEqual(a.verdict, e.verdict, at);
    if (e.estimated_overlay_ratio === null) assert.equal(a.estimated_overlay_ratio, null, at);
    else close(a.estimated_overlay_ratio!, e.estimated_overlay_ratio, tol, `${at} overlay ratio`);
    for (const p of PROJECTIONS) {
      const ap = a.projections[p]!;
      const ep = e.projections[p]!;
      const w = `${at} ${p}`;
      assert.deepEqual(ap.effective_rank, ep.effective_rank, w);
      assert.deepEqual(ap.effective_rank_summary, ep.effective_rank_summary, w);
      assert.deepEqual([ap.shape, ap.max_rank, ap.experts_analyzed, ap.singular_values_sampling], [ep.shape, ep.max_rank, ep.experts_analyzed, ep.singular_values_sampling], w);
      close(ap.rank_ratio, ep.rank_ratio, tol, `${w} rank ratio`);
      close(ap.cosine.mean, ep.cosine.mean, tol, `${w} cosine mean`);
      close(ap.cosine.std, ep.cosine.std, tol, `${w} cosine std`);
      ep.cosine.matrix.forEach((row, r) => closeAll(ap.cosine.matrix[r]!, row, tol, `${w} cosine[${r}]`));
      closeAll(ap.expert_norms, ep.expert_norms, tol, `${w} expert norms`);
      closeAll(ap.delta_norms, ep.delta_norms, tol, `${w} delta norms`);
      ep.singular_values.forEach((sv, j) => closeAll(ap.singular_values[j]!, sv, tol, `${w} singular values of expert ${j}`));
      close(ap.singular_value_floor, ep.singular_value_floor, tol, `${w} floor`);
    }
  }
}
