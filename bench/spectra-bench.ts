/**
 * Times the whole spectral analysis of one MoE layer (all experts, gate/up/down) on synthetic
 * matrices of real shapes, and says where the time goes.
 *   npm run bench:spectra -- [--shape gpt-oss|olmoe|all] [--kind native|upcycled|all] [--device auto|cpu|cuda] [--on threads|here]
 *   --on: where the spectra run on the CPU provider: the spectrum threads (default) or the main
 *   thread with the eigen thread (the CUDA provider's path)
 * Run the bundle, not the sources through tsx: under tsx the eigen worker thread loads through the
 * TypeScript loader's hooks thread, and ORT calls on the main thread then measured 5-6x slower
 * (a 2880 Gram: 1.4 s instead of 0.25 s) while the worker chased.
 * Matrices are generated in memory, one projection at a time (peak memory: one projection's experts).
 * Targets (2-core CPU): GPT-OSS-shaped <= 50 s, OLMoE-shaped <= 11 s, peak RSS < 3 GiB.
 */
import { loadavg } from 'node:os';
import { createComputeBackend, ort, type ComputeBackend } from '../src/engine/numerics/backend';
import { matmulGraph } from '../src/engine/numerics/graphs';
import { emptyTimings, projectionMetrics, type MetricsTimings } from '../src/engine/numerics/projection-metrics';
import type { ExpertMatrix } from '../src/engine/layouts/types';

interface Shape {
  readonly name: string;
  readonly experts: number;
  readonly projections: readonly { readonly name: string; readonly rows: number; readonly cols: number }[];
  readonly targetS: number;
}

const SHAPES: Record<string, Shape> = {
  'gpt-oss': {
    name: 'GPT-OSS-shaped (32 experts, gate/up/down 2880x2880)',
    experts: 32,
    projections: ['gate', 'up', 'down'].map((name) => ({ name, rows: 2880, cols: 2880 })),
    targetS: 50,
  },
  olmoe: {
    name: 'OLMoE-shaped (64 experts, gate/up 1024x2048, down 2048x1024)',
    experts: 64,
    projections: [
      { name: 'gate', rows: 1024, cols: 2048 },
      { name: 'up', rows: 1024, cols: 2048 },
      { name: 'down', rows: 2048, cols: 1024 },
    ],
    targetS: 11,
  },
};

function uniforms(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Approximately Gaussian (Irwin-Hall of 4 uniforms, unit variance): fast, and the cost of the analysis does not depend on the tails. */
function fillNoise(out: Float32Array, scale: number, seed: number): void {
  const u = uniforms(seed);
  const k = scale * Math.sqrt(3);
  for (let i = 0; i < out.length; i++) out[i] = (u() + u() + u() + u() - 2) * k;
}

/** Upcycled-like: base + rank-32 delta + small noise. Native-like: independent Gaussian experts. */
async function makeExperts(backend: ComputeBackend, kind: string, E: number, rows: number, cols: number, seed: number): Promise<ExpertMatrix[]> {
  const scale = 1 / Math.sqrt(cols);
  if (kind === 'native') {
    return Array.from({ length: E }, (_, j) => {
      const data = new Float32Array(rows * cols);
      fillNoise(data, scale, seed + j);
      return { rows, cols, data };
    });
  }
  const base = new Float32Array(rows * cols);
  fillNoise(base, scale, seed);
  const r = 32;
  const experts: ExpertMatrix[] = [];
  for (let j = 0; j < E; j++) {
    const U = new Float32Array(rows * r);
    const V = new Float32Array(r * cols);
    fillNoise(U, 0.3 / Math.sqrt(r), seed + 1000 + j);
    fillNoise(V, scale, seed + 2000 + j);
    const out = await backend.run(matmulGraph('float32', 2, 2), { A: new ort.Tensor('float32', U, [rows, r]), B: new ort.Tensor('float32', V, [r, cols]) });
    const data = out['C']!.data as Float32Array;
    const noise = new Float32Array(rows * cols);
    fillNoise(noise, 0.01 * scale, seed + 3000 + j);
    for (let i = 0; i < data.length; i++) data[i]! += base[i]! + noise[i]!;
    experts.push({ rows, cols, data });
  }
  return experts;
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

const fmt = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

async function benchLayer(backend: ComputeBackend, shape: Shape, kind: string): Promise<void> {
  const timings: MetricsTimings = emptyTimings();
  let analysisMs = 0;
  let generateMs = 0;
  const ranks: string[] = [];
  for (const [p, proj] of shape.projections.entries()) {
    let t0 = performance.now();
    const experts = await makeExperts(backend, kind, shape.experts, proj.rows, proj.cols, 100 * p + 1);
    generateMs += performance.now() - t0;
    t0 = performance.now();
    const m = await projectionMetrics(backend, experts, { timings, spectraOn: arg('on', 'threads') === 'here' ? 'here' : 'threads' });
    analysisMs += performance.now() - t0;
    const k95 = m.effectiveRank['0.95'];
    ranks.push(`${proj.name}: k95 ${Math.min(...k95)}..${Math.max(...k95)} of ${m.maxRank}, cos mean ${m.cosine.mean.toFixed(3)}`);
  }
  const rssGiB = (process.resourceUsage().maxRSS * 1024) / 2 ** 30;
  console.log(`\n${shape.name}, ${kind}-like, provider ${backend.executionProvider}`);
  console.log(`  analysis wall time   ${fmt(analysisMs)}   (target <= ${shape.targetS} s)   [generation ${fmt(generateMs)}, not counted]`);
  console.log(`  peak RSS so far      ${rssGiB.toFixed(2)} GiB (target < 3 GiB)`);
  const where = backend.executionProvider === 'cpu' && arg('on', 'threads') !== 'here' ? 'CPU time summed over the spectrum threads' : 'main thread';
  console.log(`  pass one (main thread): cosine ${fmt(timings.cosineMs)}, base and norms ${fmt(timings.normsMs)}`);
  console.log(`  pass two (${where}): Gram ${fmt(timings.gramMs)}, stage-1 panels ${fmt(timings.panelMs)}, stage-1 ORT calls ${fmt(timings.updateMs)} (group applies ${fmt(timings.applyMs ?? 0)}), delta norms ${fmt(timings.deltaNormsMs ?? 0)}`);
  console.log(`  chase and eigenvalues (${where === 'main thread' ? 'eigen thread, overlapping' : 'same threads'}): bulge chasing ${fmt(timings.chaseMs)}, tridiagonal ${fmt(timings.qlMs)}`);
  for (const r of ranks) console.log(`  ${r}`);
}

async function main(): Promise<void> {
  process.env['ORT_DISABLE_TELEMETRY'] = '1';
  const shapes = arg('shape', 'all') === 'all' ? Object.keys(SHAPES) : [arg('shape', 'all')];
  const kinds = arg('kind', 'all') === 'all' ? ['native', 'upcycled'] : [arg('kind', 'all')];
  const backend = await createComputeBackend(arg('device', 'auto') as 'auto' | 'cpu' | 'cuda');
  console.log(`load average at start: ${loadavg().map((x) => x.toFixed(2)).join(' ')} (2 cores; others' work inflates times)`);
  for (const s of shapes) for (const k of kinds) await benchLayer(backend, SHAPES[s]!, k);
  console.log(`\nload average at end: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  await backend.dispose();
  process.exit(0); // the eigen pool's idle threads are unref'd, but do not wait on anything else
}

void main();
