/** The generator's recipes read back from disk: experts really are the parent's neurons where the ground truth says so. */
import { strict as assert } from 'node:assert';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { resolveMoeModel } from '../../src/engine/layouts';
import { layerIndex } from '../../src/engine/layouts/types';
import { openCheckpoint } from '../../src/engine/model/open-checkpoint';
import { denseParentOf } from '../../src/engine/provenance/dense-parent';
import { generateSyntheticCheckpoint } from '../../src/engine/synth/generate';
import type { Recipe } from '../../src/engine/synth/recipes';
import { withTempDir } from '../layouts/helpers';

const H = 16;
const I = 8;

async function readBack(recipe: Recipe, E: number, fn: (ctx: { expertRow: (p: 'gate' | 'up', j: number, i: number) => Promise<Float32Array>; expertCol: (j: number, i: number) => Promise<Float32Array>; parentRow: (p: 'gate' | 'up', n: number) => Float32Array; parentCol: (n: number) => Float32Array; maps: number[][]; P: number; config: Record<string, unknown> }) => Promise<void>): Promise<void> {
  await withTempDir(async (dir) => {
    const truth = await generateSyntheticCheckpoint(join(dir, 'moe'), { family: 'olmoe', dtype: 'F32', numLayers: 1, numExperts: E, hidden: H, intermediate: I, structure: { kind: 'recipe', recipe }, seed: 3 }, { parentDir: join(dir, 'parent') });
    const ckpt = await openCheckpoint(join(dir, 'moe'));
    const pck = await openCheckpoint(join(dir, 'parent'));
    try {
      const model = resolveMoeModel(ckpt);
      const parent = await denseParentOf(pck).ffn(0, H);
      const P = parent.up.rows;
      const rec = truth.layers[0]!.recipe!;
      assert.equal(P, rec.parentIntermediate);
      await fn({
        expertRow: async (p, j, i) => (await model.readExpert(layerIndex(0), p, j)).data.slice(i * H, (i + 1) * H),
        expertCol: async (j, i) => (await model.readExpert(layerIndex(0), 'down', j)).data.filter((_, k) => k % I === i), // down [H, I]: column i
        parentRow: (p, n) => (p === 'gate' ? parent.gate! : parent.up).data.slice(n * H, (n + 1) * H),
        parentCol: (n) => parent.down.data.filter((_, k) => k % P === n),
        maps: rec.maps!,
        P,
        config: JSON.parse(await readFile(join(dir, 'parent', 'config.json'), 'utf8')),
      });
    } finally {
      await ckpt.close();
      await pck.close();
    }
  });
}

describe('synth recipes: experts are built from the dense parent written beside them', function () {
  it('split 2 x 2 unshuffled, no noise: expert j neuron i IS parent neuron (j mod 2) * I + i (gate row, up row, down column)', async () => {
    await readBack({ kind: 'split', segments: 2, replicas: 2, shuffle: false }, 4, async (c) => {
      assert.equal(c.P, 2 * I);
      assert.equal(c.config['model_type'], 'llama');
      assert.equal(c.config['intermediate_size'], 2 * I);
      for (let j = 0; j < 4; j++) {
        for (let i = 0; i < I; i++) {
          const n = (j % 2) * I + i;
          assert.equal(c.maps[j]![i], n);
          assert.deepEqual(await c.expertRow('gate', j, i), c.parentRow('gate', n));
          assert.deepEqual(await c.expertRow('up', j, i), c.parentRow('up', n));
          assert.deepEqual(await c.expertCol(j, i), c.parentCol(n));
        }
      }
    });
  });

  it('permuted-copy r = 0.5: half of each expert is parent neurons (exactly, at the mapped positions), half fresh', async () => {
    await readBack({ kind: 'permuted-copy', reinit: 0.5 }, 3, async (c) => {
      for (let j = 0; j < 3; j++) {
        const map = c.maps[j]!;
        assert.equal(map.filter((x) => x === -1).length, I / 2);
        assert.equal(new Set(map.filter((x) => x >= 0)).size, I / 2);
        for (let i = 0; i < I; i++) {
          const row = await c.expertRow('up', j, i);
          if (map[i]! >= 0) assert.deepEqual(row, c.parentRow('up', map[i]!));
          else for (let n = 0; n < c.P; n++) assert.notDeepEqual(row, c.parentRow('up', n));
        }
      }
    });
  });

  it('drift adds independent noise of the stated relative size', async () => {
    await readBack({ kind: 'split', segments: 2, replicas: 1, shuffle: false, drift: 0.5 }, 2, async (c) => {
      let diff = 0;
      let ref = 0;
      for (let i = 0; i < I; i++) {
        const a = await c.expertRow('gate', 1, i);
        const b = c.parentRow('gate', I + i);
        for (let h = 0; h < H; h++) {
          diff += (a[h]! - b[h]!) ** 2;
          ref += b[h]! ** 2;
        }
      }
      const rel = Math.sqrt(diff / ref);
      assert.ok(rel > 0.35 && rel < 0.65, `relative drift ${rel}`); // 0.5 +- sampling over 128 values
    });
  });
});
