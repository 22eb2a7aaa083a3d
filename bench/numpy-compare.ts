/**
 * The project against the numpy/scipy pipeline a researcher would write (bench/numpy_layer.py:
 * decode, f32 Gram, LAPACK syevr, all experts), on the same generated file, runs interleaved
 * (project, numpy, project, numpy, ...) so both see the same machine load. Skipped with a message
 * when python3 with numpy and scipy is missing; never needed by the tests.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { createComputeBackend, ort } from '../src/engine/numerics/backend';
import { matmulGraph } from '../src/engine/numerics/graphs';
import type { MetricsTimings } from '../src/engine/numerics/projection-metrics';
import { spectrumThreadPlan } from '../src/engine/numerics/spectrum-pool';

export type Ranks = Record<string, Record<string, readonly number[]>>; // projection -> threshold -> per expert

export interface ProjectRun {
  readonly seconds: number;
  readonly readingSeconds: number;
  readonly timings: MetricsTimings;
  readonly ranks: Ranks;
  /** Gram + tridiagonalisation flops of the layer (Gram k^2 * max as syrk, reduction 4/3 k^3 per spectrum). */
  readonly flops: number;
}

interface NumpyRun {
  readonly seconds: number;
  readonly stages: Record<string, number>;
  readonly ranks: Ranks;
  readonly numpy: string;
  readonly scipy: string;
}

const SCRIPT = join(__dirname, '..', 'bench', 'numpy_layer.py');
/** OpenBLAS tuning variables this machine may set for others; the numpy run gets OpenBLAS' defaults. */
const UNSET_FOR_NUMPY = ['OPENBLAS_CORETYPE', 'OPENBLAS_L2_SIZE'];

export function numpyAvailable(): string | null {
  const r = spawnSync('python3', ['-c', 'import numpy, scipy.linalg; print(numpy.__version__, scipy.__version__)'], { encoding: 'utf8' });
  return r.status === 0 ? null : r.error ? 'python3 not found' : `python3 without numpy/scipy (${r.stderr.trim().split('\n').pop()})`;
}

/** numpyThreads: OPENBLAS_NUM_THREADS for the python run (null: OpenBLAS' default, one per core). */
function runNumpy(dir: string, family: string, numpyThreads: number | null): NumpyRun {
  const env = { ...process.env };
  for (const k of UNSET_FOR_NUMPY) delete env[k];
  if (numpyThreads !== null) env['OPENBLAS_NUM_THREADS'] = String(numpyThreads);
  const r = spawnSync('python3', [SCRIPT, dir, family, '0'], { encoding: 'utf8', env, maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`numpy pipeline failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as NumpyRun;
}

/** Measured ORT float32 GEMM rate on this machine now (best of 3, n^3 products), GFLOP/s. */
async function ortGemmRate(n = 2048): Promise<number> {
  const backend = await createComputeBackend('auto');
  const a = new Float32Array(n * n).map((_, i) => ((i * 7919) % 1000) / 1000 - 0.5);
  const feeds = { A: new ort.Tensor('float32', a, [n, n]), B: new ort.Tensor('float32', a, [n, n]) };
  let best = Infinity;
  for (let i = 0; i < 4; i++) {
    const t0 = performance.now();
    await backend.run(matmulGraph('float32', 2, 2), feeds);
    if (i > 0) best = Math.min(best, performance.now() - t0);
  }
  await backend.dispose();
  return (2 * n ** 3) / (best / 1000) / 1e9;
}

const median = (x: readonly number[]) => {
  const s = [...x].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

interface Mismatch {
  readonly proj: string;
  readonly expert: number;
  readonly t: string;
  readonly project: number;
  readonly numpy: number | undefined;
}

function rankMismatches(a: Ranks, b: Ranks): Mismatch[] {
  const out: Mismatch[] = [];
  for (const [proj, byT] of Object.entries(a)) for (const [t, ranks] of Object.entries(byT)) {
    const other = b[proj]?.[t] ?? [];
    ranks.forEach((r, expert) => {
      if (other[expert] !== r) out.push({ proj, expert, t, project: r, numpy: other[expert] });
    });
  }
  return out;
}

/**
 * Where the two float32 pipelines disagree (by one, where the cumulative energy sits within
 * float32 rounding of a threshold), the float64 reference decides: numpy_layer.py --float64
 * recomputes those experts' ranks with base, delta, Gram and eigenvalues in float64.
 */
function adjudicate(dir: string, family: string, mismatches: readonly Mismatch[]): string {
  const unique = [...new Map(mismatches.map((m) => [`${m.proj}/${m.expert}/${m.t}/${m.project}/${m.numpy}`, m])).values()];
  if (unique.length === 0) return 'identical on every expert';
  const list = [...new Set(unique.map((m) => `${m.proj}:${m.expert}`))].slice(0, 20).join(',');
  const r = spawnSync('python3', [SCRIPT, dir, family, '0', '--float64', list], { encoding: 'utf8', maxBuffer: 16 << 20 });
  const shown = unique.slice(0, 3).map((m) => `${m.proj} expert ${m.expert} at ${m.t}: project ${m.project}, numpy ${m.numpy}`).join('; ');
  if (r.status !== 0) return `${unique.length} differences, e.g. ${shown} (float64 reference failed: ${r.stderr.trim().split('\n').pop()})`;
  const ref = JSON.parse(r.stdout) as Record<string, Record<string, Record<string, number>>>;
  const judged = unique.filter((m) => ref[m.proj]?.[String(m.expert)]?.[m.t] !== undefined);
  const truth = (m: Mismatch) => ref[m.proj]![String(m.expert)]![m.t]!;
  const projectRight = judged.filter((m) => m.project === truth(m)).length;
  const numpyRight = judged.filter((m) => m.numpy === truth(m)).length;
  return (
    `${unique.length} differences, e.g. ${shown}; ` +
    `float64 reference (float64 base, delta, Gram and eigvalsh) on ${judged.length}: project equals it on ${projectRight}, numpy on ${numpyRight}`
  );
}

/** Interleaved runs of both, then the side-by-side lines. */
export async function compareWithNumpy(name: string, dir: string, family: string, runs: number, numpyThreads: number | null, project: () => Promise<ProjectRun>): Promise<void> {
  const missing = numpyAvailable();
  if (missing !== null) {
    process.stdout.write(`\n${name}: numpy comparison skipped: ${missing}\n`);
    return;
  }
  const ours: ProjectRun[] = [];
  const theirs: NumpyRun[] = [];
  for (let i = 0; i < runs; i++) {
    ours.push(await project());
    theirs.push(runNumpy(dir, family, numpyThreads));
    process.stdout.write(`  run ${i + 1}/${runs}: project ${ours[i]!.seconds.toFixed(1)} s, numpy ${theirs[i]!.seconds.toFixed(1)} s\n`);
  }
  const rate = await ortGemmRate();
  const p = ours.map((r) => r.seconds);
  const q = theirs.map((r) => r.seconds);
  const mismatches = ours.flatMap((r) => theirs.flatMap((t) => rankMismatches(r.ranks, t.ranks)));
  const floorS = ours[0]!.flops / (rate * 1e9);
  const best = ours[p.indexOf(Math.min(...p))]!;
  const t = best.timings;
  const s = (ms: number) => (ms / 1000).toFixed(1);
  const np = theirs[q.indexOf(Math.min(...q))]!;
  process.stdout.write(
    `\n${name}-shaped layer vs numpy ${theirs[0]!.numpy} + scipy ${theirs[0]!.scipy} (f32 Gram + LAPACK syevr, decoding included; ${UNSET_FOR_NUMPY.join('/')} unset for python; OpenBLAS threads ${numpyThreads ?? 'default'}), ${runs} interleaved runs:\n` +
      `  project  min ${Math.min(...p).toFixed(1)} s  median ${median(p).toFixed(1)} s\n` +
      `  numpy    min ${Math.min(...q).toFixed(1)} s  median ${median(q).toFixed(1)} s\n` +
      `  ratio project/numpy: min ${(Math.min(...p) / Math.min(...q)).toFixed(2)}, median ${(median(p) / median(q)).toFixed(2)}\n` +
      `  ranks at 90/95/99%: ${adjudicate(dir, family, mismatches)}\n` +
      `  flop floor: ${(ours[0]!.flops / 1e12).toFixed(2)} TFLOP at the measured ORT f32 GEMM rate ${rate.toFixed(0)} GFLOP/s = ${floorS.toFixed(1)} s; ` +
      `project reaches ${((100 * floorS) / Math.min(...p)).toFixed(0)}% of it, numpy ${((100 * floorS) / Math.min(...q)).toFixed(0)}%\n` +
      `  project stages (fastest run, s): main thread: reading and decoding ${s(t.readMs)} (pass two: only the waits), cosine ${s(t.cosineMs)}, base and norms ${s(t.normsMs)}; ` +
      `pass two (CPU seconds summed over ${spectrumThreadPlan().threads} spectrum threads): Gram ${s(t.gramMs)}, stage-one panels ${s(t.panelMs)}, ` +
      `stage-one ORT updates ${s(t.updateMs)} (of which group applies ${s(t.applyMs ?? 0)}), chase ${s(t.chaseMs)}, tridiagonal ${s(t.qlMs)}, delta norms ${s(t.deltaNormsMs ?? 0)}\n` +
      `  numpy stages (fastest run, s): ${Object.entries(np.stages).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ')}\n`,
  );
}

/** The project's side of one run, from its report. */
export function projectRun(report: { layers: readonly { projections: Partial<Record<string, { shape: readonly [number, number]; effective_rank: Ranks[string] }>> }[] }, seconds: number, readingSeconds: number, timings: MetricsTimings): ProjectRun {
  const ranks: Ranks = {};
  let flops = 0;
  for (const [proj, p] of Object.entries(report.layers[0]!.projections)) {
    if (!p) continue;
    ranks[proj] = p.effective_rank;
    const k = Math.min(...p.shape);
    const spectra = p.effective_rank['0.95']!.length;
    flops += spectra * (k * k * Math.max(...p.shape) + (4 / 3) * k ** 3);
  }
  return { seconds, readingSeconds, timings, ranks, flops };
}
