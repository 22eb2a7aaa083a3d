/**
 * The streaming two-pass analysis against an independent in-memory float64 reference, on generated
 * checkpoints of every storage kind: per-expert (BF16, F32, FP8 with 128x128 block scales and
 * partial edge tiles), MXFP4 fused gate_up with interleaved rows, fused input-major (stored
 * transposed), fused output-major, input_linear halves, DBRX (w2 stored transposed), and the issue-11
 * families: experts without a gate (nemotron_h per-expert and stacked, switch_transformers and nllb_moe
 * in encoder/decoder groups), aria's grouped GEMM stored [E, in, out], step3p7's 3-D stacks and
 * ernie4_5_vl_moe's vision experts (a layer group with its own expert count).
 *  - pass one's row blocks equal the rows (or, stored transposed, the columns) of the whole-expert read, exactly;
 *  - base, norms and cosines equal a float64 computation from whole experts (cosines to 1e-6);
 *  - effective ranks equal those of the exact (Jacobi, float64) singular values of W_j - mean, wherever
 *    the reference's cumulative energy is not within 1e-6 of a threshold (a tie either way is not a rank).
 */
import { strict as assert } from 'node:assert';
import { generateSyntheticCheckpoint, type SynthSpec } from '../../src/engine/synth/generate';
import { openCheckpoint } from '../../src/engine/model/open-checkpoint';
import { resolveMoeModel } from '../../src/engine/layouts';
import { projectionsOf, type ExpertMatrix, type MoeLayerLayout, type MoeModel, type Projection } from '../../src/engine/layouts/types';
import { createComputeBackend, type ComputeBackend } from '../../src/engine/numerics/backend';
import { analyzeModel } from '../../src/engine/analysis/analyze-model';
import { DEFAULT_THRESHOLDS } from '../../src/engine/report/schema';
import { transpose } from '../../src/engine/layouts/tensor-read';
import { jacobiSingularValues } from '../numerics/reference';
import { withTempDir } from '../layouts/helpers';

const RANKS = { gate: 3, up: 5, down: 2 };
const UP = { kind: 'upcycled', ranks: RANKS } as const;

const CASES: [string, SynthSpec][] = [
  ['olmoe BF16 upcycled', { family: 'olmoe', dtype: 'BF16', numLayers: 1, numExperts: 6, hidden: 40, intermediate: 24, structure: UP, seed: 3 }],
  ['qwen3_moe F32 native', { family: 'qwen3_moe', dtype: 'F32', numLayers: 1, numExperts: 5, hidden: 24, intermediate: 16, structure: { kind: 'native' }, seed: 4 }],
  ['deepseek_v3 FP8 128x128 block scales, partial tiles', { family: 'deepseek_v3', dtype: 'FP8', numLayers: 2, numExperts: 4, hidden: 160, intermediate: 136, structure: UP, seed: 5 }],
  ['gpt_oss MXFP4 (interleaved gate/up rows)', { family: 'gpt_oss', dtype: 'MXFP4', numLayers: 1, numExperts: 4, hidden: 64, intermediate: 32, structure: { kind: 'upcycled', ranks: RANKS, deltaScale: 1 }, seed: 6 }],
  ['gpt_oss BF16 (fused input-major, interleaved columns)', { family: 'gpt_oss', dtype: 'BF16', numLayers: 1, numExperts: 4, hidden: 32, intermediate: 24, structure: UP, seed: 7 }],
  ['llama4 BF16 (fused input-major, halves)', { family: 'llama4', dtype: 'BF16', numLayers: 1, numExperts: 4, hidden: 32, intermediate: 20, structure: UP, seed: 8 }],
  ['fused F32 (output-major)', { family: 'fused', dtype: 'F32', numLayers: 1, numExperts: 4, hidden: 24, intermediate: 12, structure: UP, seed: 9 }],
  ['granitemoe F16 (input_linear halves)', { family: 'granitemoe', dtype: 'F16', numLayers: 1, numExperts: 4, hidden: 24, intermediate: 16, structure: UP, seed: 10 }],
  ['dbrx BF16 (w2 stored transposed)', { family: 'dbrx', dtype: 'BF16', numLayers: 1, numExperts: 4, hidden: 24, intermediate: 16, structure: UP, seed: 11 }],
  ['nemotron_h F32 (per-expert, no gate)', { family: 'nemotron_h', dtype: 'F32', numLayers: 2, numExperts: 4, hidden: 24, intermediate: 16, structure: UP, seed: 12 }],
  ['nemotron_h_fused BF16 (stacked, no gate)', { family: 'nemotron_h_fused', dtype: 'BF16', numLayers: 2, numExperts: 4, hidden: 24, intermediate: 16, structure: UP, seed: 13 }],
  ['switch_transformers BF16 (wi/wo, decoder group)', { family: 'switch_transformers', dtype: 'BF16', numLayers: 2, numExperts: 4, hidden: 24, intermediate: 16, structure: UP, seed: 14 }],
  ['nllb_moe F16 (fc1/fc2 with biases, decoder group)', { family: 'nllb_moe', dtype: 'F16', numLayers: 2, numExperts: 4, hidden: 24, intermediate: 16, structure: UP, seed: 15 }],
  ['aria F32 (grouped GEMM stored [E, in, out])', { family: 'aria', dtype: 'F32', numLayers: 1, numExperts: 4, hidden: 24, intermediate: 16, structure: UP, seed: 16 }],
  ['step3p7 BF16 (3-D stacks)', { family: 'step3p7', dtype: 'BF16', numLayers: 2, numExperts: 4, hidden: 24, intermediate: 16, structure: UP, seed: 17 }],
  ['ernie4_5_vl_moe BF16 (vision group)', { family: 'ernie4_5_vl_moe', dtype: 'BF16', numLayers: 2, numExperts: 4, hidden: 24, intermediate: 16, structure: UP, seed: 18 }],
];

interface Reference {
  readonly base: Float64Array;
  readonly norms: number[];
  readonly cosine: number[][];
  readonly singular: number[][];
}

/** Whole experts, float64 throughout. */
async function reference(model: MoeModel, layout: MoeLayerLayout, p: Projection): Promise<Reference> {
  const ws: ExpertMatrix[] = [];
  for (let j = 0; j < layout.numExperts; j++) ws.push(await model.readExpert(layout.name, p, j));
  const { rows, cols } = ws[0]!;
  const base = new Float64Array(rows * cols);
  for (const w of ws) for (let i = 0; i < base.length; i++) base[i]! += w.data[i]!;
  for (let i = 0; i < base.length; i++) base[i]! /= ws.length;
  const dot = (a: Float32Array, b: Float32Array) => a.reduce((s, x, i) => s + x * b[i]!, 0);
  const norms = ws.map((w) => Math.sqrt(dot(w.data, w.data)));
  const cosine = ws.map((a, i) => ws.map((b, j) => (i === j ? 1 : dot(a.data, b.data) / (norms[i]! * norms[j]!))));
  const singular = ws.map((w) => jacobiSingularValues(Float64Array.from(w.data, (x, i) => x - base[i]!), rows, cols));
  return { base, norms, cosine, singular };
}

/** The reference's rank at t, or null when its cumulative energy sits within 1e-6 of t (a tie). */
function clearRank(s: readonly number[], t: number): number | null {
  const total = s.reduce((a, x) => a + x * x, 0);
  if (total === 0) return 0;
  let cum = 0;
  for (let k = 0; k < s.length; k++) {
    cum += s[k]! ** 2;
    if (Math.abs(cum / total - t) < 1e-6) return null;
    if (cum / total >= t) return k + 1;
  }
  return s.length;
}

describe('streaming two-pass analysis equals an in-memory float64 reference', function () {
  this.timeout(120_000);
  let backend: ComputeBackend;
  before(async () => (backend = await createComputeBackend('cpu')));
  after(async () => backend.dispose());

  for (const [name, spec] of CASES) {
    it(name, async () => {
      await withTempDir(async (dir) => {
        await generateSyntheticCheckpoint(dir, spec);
        const ckpt = await openCheckpoint(dir);
        try {
          const model = resolveMoeModel(ckpt);
          // The last layer of a named group where there is one (decoder, vision), else the last layer.
          const layout = model.layers.filter((l) => l.group !== null).at(-1) ?? model.layers.at(-1)!;
          // pass one's blocks, cut at every size from 1 row to all rows, are exactly the whole read's rows
          const projs = projectionsOf(layout.projections);
          const E = layout.numExperts;
          for (const p of projs) {
            const blocks = model.rowBlocks(layout.name, p);
            for (let j = 0; j < E; j++) {
              const whole = (await model.readExpert(layout.name, p, j)).data;
              const [m, n] = layout.projections[p]!.shape;
              const stored = blocks.transposed ? transpose(whole, m, n) : whole;
              assert.equal(blocks.rows * blocks.cols, m * n);
              for (const size of [1, 3, blocks.rows]) {
                for (let r0 = 0; r0 < blocks.rows; r0 += size) {
                  const c = Math.min(size, blocks.rows - r0);
                  const got = await blocks.read(j, r0, c);
                  assert.deepEqual(got, stored.subarray(r0 * blocks.cols, (r0 + c) * blocks.cols), `${p} expert ${j} rows ${r0}+${c}`);
                }
              }
            }
          }
          // the whole analysis, with pass one forced to one row per block (blockBytes 1)
          const report = await analyzeModel(model, { source: dir, revision: null, sharedExperts: false }, backend, {
            layers: { kind: 'list', layers: [], names: [layout.name] },
            sampleExperts: null,
            thresholds: DEFAULT_THRESHOLDS,
            fullSpectra: true,
            blockBytes: 1,
          });
          const got = report.layers[0]!;
          let rankChecks = 0;
          assert.equal(got.name ?? String(got.layer), layout.name);
          for (const p of projs) {
            const ref = await reference(model, layout, p);
            const g = got.projections[p]!;
            for (let i = 0; i < E; i++) {
              assert.ok(Math.abs(g.expert_norms[i]! - ref.norms[i]!) <= 1e-9 * ref.norms[i]!, `${p} norm ${i}`);
              for (let j = 0; j < E; j++) assert.ok(Math.abs(g.cosine.matrix[i]![j]! - ref.cosine[i]![j]!) < 1e-6, `${p} cos[${i}][${j}] ${g.cosine.matrix[i]![j]} vs ${ref.cosine[i]![j]}`);
              const sMax = ref.singular[i]![0]!;
              g.singular_values[i]!.forEach((s, k) => assert.ok(Math.abs(s - (ref.singular[i]![k] ?? 0)) <= 2e-4 * sMax + 1e-12, `${p} expert ${i} sigma_${k}: ${s} vs ${ref.singular[i]![k]}`));
              for (const t of ['0.9', '0.95', '0.99'] as const) {
                const want = clearRank(ref.singular[i]!, Number(t));
                if (want === null) continue;
                assert.equal(g.effective_rank[t][i], want, `${p} expert ${i} rank at ${t}`);
                rankChecks++;
              }
              const dn = Math.sqrt(ref.singular[i]!.reduce((a, x) => a + x * x, 0));
              assert.ok(Math.abs(g.delta_norms[i]! - dn) <= 1e-5 * ref.norms[i]!, `${p} delta norm ${i}: ${g.delta_norms[i]} vs ${dn}`);
            }
          }
          const all = 3 * projs.length * E;
          assert.ok(rankChecks >= 0.9 * all, `only ${rankChecks} of ${all} ranks were clear of a tie`);
        } finally {
          await ckpt.close();
        }
      });
    });
  }
});
