import { strict as assert } from 'node:assert';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { openCheckpoint } from '../../src/engine/model/open-checkpoint';
import { resolveMoeModel } from '../../src/engine/layouts';
import { PROJECTIONS, layerIndex, type MoeModel, type Projection } from '../../src/engine/layouts/types';
import { generateSyntheticCheckpoint, type GroundTruth, type SynthSpec } from '../../src/engine/synth/generate';
import { rejectsWith, withTempDir } from '../layouts/helpers';
import { energyRank, singularValues64 } from './svd64';

/** Singular values (f64, exact) of W_j - mean_k W_k, as the analysis defines the delta. */
async function deltaSpectrum(model: MoeModel, layer: number, p: Projection, j: number): Promise<number[]> {
  const E = model.numExperts;
  const experts = await Promise.all(Array.from({ length: E }, (_, k) => model.readExpert(layerIndex(layer), p, k)));
  const { rows, cols } = experts[0]!;
  const d = new Float64Array(rows * cols);
  for (let i = 0; i < d.length; i++) {
    let mean = 0;
    for (const e of experts) mean += e.data[i]!;
    d[i] = experts[j]!.data[i]! - mean / E;
  }
  return singularValues64(d, rows, cols);
}

async function withModel<T>(spec: SynthSpec, fn: (model: MoeModel, truth: GroundTruth, dir: string) => Promise<T>): Promise<T> {
  return withTempDir(async (dir) => {
    const truth = await generateSyntheticCheckpoint(dir, spec);
    const ckpt = await openCheckpoint(dir);
    try {
      return await fn(resolveMoeModel(ckpt), truth, dir);
    } finally {
      await ckpt.close();
    }
  });
}

describe('the float64 reference SVD', function () {
  it('matches hand-computed singular values', () => {
    const phi = (1 + Math.sqrt(5)) / 2;
    const s = singularValues64([1, 1, 0, 1], 2, 2);
    assert.ok(Math.abs(s[0]! - phi) < 1e-14 && Math.abs(s[1]! - 1 / phi) < 1e-14, String(s));
    // A permuted, sign-flipped diag(5, 3, 1) inside a 4x3 matrix (and its transpose).
    const a = [0, 0, 0, 0, -3, 0, 5, 0, 0, 0, 0, 1];
    assert.deepEqual(singularValues64(a, 4, 3), [5, 3, 1]);
    const at = Array.from({ length: 12 }, (_, k) => a[(k % 4) * 3 + Math.floor(k / 4)]!);
    assert.deepEqual(singularValues64(at, 3, 4), [5, 3, 1]);
  });
});

describe('synthetic checkpoints: known spectra, honest ground truth', function () {
  it('F32, no noise: each delta from the mean has exactly the constructed singular values', async () => {
    const spec: SynthSpec = { family: 'olmoe', dtype: 'F32', numLayers: 1, numExperts: 4, hidden: 40, intermediate: 24, structure: { kind: 'upcycled', ranks: { gate: 3, up: 5, down: 2 }, noise: 0 }, seed: 21 };
    await withModel(spec, async (model, truth) => {
      const lt = truth.layers[0]!;
      assert.deepEqual(lt.expertKinds, ['delta', 'delta', 'delta', 'delta']);
      assert.equal(lt.deltaFromMeanIsConstructed, true);
      for (const p of PROJECTIONS) {
        const want = lt.singularValues[p]!;
        assert.equal(want.length, spec.structure && (spec.structure as { ranks: Record<Projection, number> }).ranks[p]);
        for (let j = 0; j < 4; j++) {
          const got = await deltaSpectrum(model, 0, p, j);
          // f32 storage of W = B + D (|W| ~ 0.2) errs ~1e-8 per entry: 1e-5 relative is a wide bound.
          for (let k = 0; k < want.length; k++) assert.ok(Math.abs(got[k]! - want[k]!) <= 1e-5 * want[0]!, `${p} e${j} s${k}: ${got[k]} vs ${want[k]}`);
          assert.ok(got[want.length]! <= 1e-5 * want[0]!, `${p} e${j}: rank beyond ${want.length}: ${got[want.length]}`);
        }
      }
    });
  });

  it('BF16 with the default noise: the delta\'s 90/95/99% ranks are the expected ones', async () => {
    const spec: SynthSpec = { family: 'mixtral', dtype: 'BF16', numLayers: 1, numExperts: 4, hidden: 64, intermediate: 48, structure: { kind: 'upcycled', ranks: { gate: 4, up: 8, down: 12 } }, seed: 8 };
    await withModel(spec, async (model, truth) => {
      const lt = truth.layers[0]!;
      for (const p of PROJECTIONS) {
        const r = (spec.structure as { ranks: Record<Projection, number> }).ranks[p];
        assert.equal(lt.expectedRank[p]!['0.95'], r, 'with this decay k95 = r for r <= 13');
        assert.ok(lt.energyMargin95[p]! > 1e-3, `margin ${lt.energyMargin95[p]}`);
        for (const j of [0, 3]) {
          const got = await deltaSpectrum(model, 0, p, j);
          for (const t of ['0.9', '0.95', '0.99'] as const) assert.equal(energyRank(got, Number(t)), lt.expectedRank[p]![t], `${p} e${j} k${t}`);
          // The top singular values survive noise + rounding to within a few percent.
          for (let k = 0; k < r; k++) assert.ok(Math.abs(got[k]! / lt.singularValues[p]![k]! - 1) < 0.03, `${p} e${j} s${k}`);
        }
      }
    });
  });

  it('partial and odd expert counts: the ground truth says which deltas are constructed', async () => {
    const partial: SynthSpec = { family: 'qwen3_moe', dtype: 'F32', numLayers: 1, numExperts: 4, hidden: 32, intermediate: 16, structure: { kind: 'partial', fraction: 0.5, ranks: { gate: 2, up: 2, down: 2 }, noise: 0 }, seed: 2 };
    await withModel(partial, async (model, truth) => {
      assert.deepEqual(truth.layers[0]!.expertKinds, ['delta', 'delta', 'native', 'native']);
      assert.equal(truth.layers[0]!.deltaFromMeanIsConstructed, false);
      // Indeed: the mean includes the native experts, so expert 0's delta from it is full rank.
      const s = await deltaSpectrum(model, 0, 'gate', 0);
      assert.ok(energyRank(s, 0.95) > 2, `k95 ${energyRank(s, 0.95)}`);
    });
    const odd: SynthSpec = { ...partial, numExperts: 3, structure: { kind: 'upcycled', ranks: { gate: 2, up: 2, down: 2 }, noise: 0 } };
    await withModel(odd, async (model, truth) => {
      const lt = truth.layers[0]!;
      assert.deepEqual(lt.expertKinds, ['delta', 'delta', 'base-only']);
      assert.equal(lt.deltaFromMeanIsConstructed, true);
      const s0 = await deltaSpectrum(model, 0, 'down', 0);
      assert.ok(Math.abs(s0[0]! - lt.singularValues.down![0]!) <= 1e-5 * s0[0]! && Math.abs(s0[1]! - lt.singularValues.down![1]!) <= 1e-5 * s0[0]!);
      const s2 = await deltaSpectrum(model, 0, 'down', 2);
      assert.ok(s2[0]! <= 1e-5 * s0[0]!, 'the unpaired expert IS the mean');
    });
    const native: SynthSpec = { ...partial, structure: { kind: 'native' } };
    await withModel(native, async (model, truth) => {
      assert.deepEqual(truth.layers[0]!.expertKinds, ['native', 'native', 'native', 'native']);
      assert.deepEqual(truth.layers[0]!.singularValues, {});
      const s = await deltaSpectrum(model, 0, 'up', 1);
      assert.ok(energyRank(s, 0.95) >= 0.6 * 16, `native k95 ${energyRank(s, 0.95)} of 16`);
    });
  });

  it('is deterministic: the same spec gives identical bytes, another seed different ones', async () => {
    const spec: SynthSpec = { family: 'gpt_oss', dtype: 'MXFP4', numLayers: 2, numExperts: 2, hidden: 32, intermediate: 32, structure: { kind: 'upcycled', ranks: { gate: 2, up: 2, down: 2 } }, seed: 99 };
    await withTempDir(async (root) => {
      await generateSyntheticCheckpoint(join(root, 'a'), spec);
      await generateSyntheticCheckpoint(join(root, 'b'), spec);
      await generateSyntheticCheckpoint(join(root, 'c'), { ...spec, seed: 100 });
      const files = (await readdir(join(root, 'a'))).sort();
      assert.deepEqual(files, ['config.json', 'model.safetensors', 'synth-ground-truth.json']);
      for (const f of files) assert.ok((await readFile(join(root, 'a', f))).equals(await readFile(join(root, 'b', f))), f);
      assert.ok(!(await readFile(join(root, 'a', 'model.safetensors'))).equals(await readFile(join(root, 'c', 'model.safetensors'))));
    });
  });

  it('shards into model-0000k-of-0000n.safetensors with an index, and reads back', async () => {
    const spec: SynthSpec = { family: 'deepseek_v2', dtype: 'BF16', numLayers: 3, numExperts: 4, hidden: 32, intermediate: 16, structure: { kind: 'upcycled', ranks: { gate: 2, up: 2, down: 2 } }, seed: 5, maxShardBytes: 8192 };
    await withModel(spec, async (model, truth, dir) => {
      assert.ok(truth.files.length > 2, `${truth.files.length} shards`);
      truth.files.forEach((f, i) => assert.equal(f, `model-${String(i + 1).padStart(5, '0')}-of-${String(truth.files.length).padStart(5, '0')}.safetensors`));
      const index = JSON.parse(await readFile(join(dir, 'model.safetensors.index.json'), 'utf8'));
      const names = Object.keys(index.weight_map);
      assert.ok(names.includes('model.layers.2.mlp.experts.3.down_proj.weight'));
      assert.deepEqual(new Set(Object.values(index.weight_map)), new Set(truth.files));
      let dataBytes = 0;
      for (const f of truth.files) {
        const b = await readFile(join(dir, f));
        const n = Number(b.readBigUInt64LE(0));
        assert.ok(b.length - 8 - n <= 8192, `${f}: ${b.length - 8 - n} data bytes`);
        dataBytes += b.length - 8 - n;
      }
      assert.equal(index.metadata.total_size, dataBytes);
      assert.deepEqual(model.layers.map((l) => l.layer as number), [1, 2]);
      assert.equal((await model.readExpert(layerIndex(2), 'down', 3)).data.length, 32 * 16);
    });
  });

  it('refuses specs it cannot honour, as usage errors', async () => {
    await withTempDir(async (dir) => {
      const base: SynthSpec = { family: 'olmoe', dtype: 'BF16', numLayers: 1, numExperts: 2, hidden: 16, intermediate: 8, structure: { kind: 'native' } };
      await rejectsWith(generateSyntheticCheckpoint(dir, { ...base, dtype: 'MXFP4' }), 'usage');
      await rejectsWith(generateSyntheticCheckpoint(dir, { ...base, dtype: 'FP8' }), 'usage');
      await rejectsWith(generateSyntheticCheckpoint(dir, { ...base, numExperts: 1 }), 'usage');
      await rejectsWith(generateSyntheticCheckpoint(dir, { ...base, structure: { kind: 'upcycled', ranks: { gate: 9, up: 1, down: 1 } } }), 'usage', (e) => assert.match(e.message, /gate rank must be an integer in 1\.\.8/));
      assert.deepEqual(await readdir(dir), []);
    });
  });
});
