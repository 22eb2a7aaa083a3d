import { strict as assert } from 'node:assert';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSyntheticCheckpoint, SyntheticModel, type SynthSpec } from '../../src/engine/synth/generate';
import { SYNTH_FAMILIES } from '../../src/engine/synth/families';
import type { SynthDtype } from '../../src/engine/synth/encode-matrix';
import { openCheckpoint } from '../../src/engine/model/open-checkpoint';
import { resolveMoeModel } from '../../src/engine/layouts';
import { layerIndex, projectionsOf } from '../../src/engine/layouts/types';

const UP = { kind: 'upcycled' as const, ranks: { gate: 2, up: 3, down: 2 } };

/** Every stored format that makes sense for a family: the plain floats everywhere, MXFP4 for gpt_oss, FP8 block scales for the DeepSeek family. */
function dtypesFor(family: (typeof SYNTH_FAMILIES)[number]): SynthDtype[] {
  const extra: SynthDtype[] = family === 'gpt_oss' ? ['MXFP4'] : ['deepseek_v2', 'deepseek_v3', 'kimi_k2', 'glm4_moe'].includes(family) ? ['FP8'] : [];
  return ['F32', 'F16', 'BF16', ...extra];
}

function specFor(family: (typeof SYNTH_FAMILIES)[number], dtype: SynthDtype): SynthSpec {
  // 160 = one full 128-tile plus a partial edge tile for FP8; multiples of 32 for MXFP4.
  const hidden = dtype === 'MXFP4' ? 64 : dtype === 'FP8' ? 160 : 48;
  const intermediate = dtype === 'MXFP4' ? 96 : dtype === 'FP8' ? 136 : 40;
  return { family, dtype, numLayers: 3, numExperts: 4, hidden, intermediate, structure: UP, seed: 7 };
}

describe('every family layout round-trips the generator\'s matrices bit-exactly', function () {
  let root: string;
  before(async () => (root = await mkdtemp(join(tmpdir(), 'moe-rt-'))));
  after(async () => rm(root, { recursive: true, force: true }));

  for (const family of SYNTH_FAMILIES) {
    for (const dtype of dtypesFor(family)) {
      it(`${family} ${dtype}`, async () => {
        const spec = specFor(family, dtype);
        const dir = join(root, `${family}-${dtype}`);
        const truth = await generateSyntheticCheckpoint(dir, spec);
        const ckpt = await openCheckpoint(dir);
        try {
          const model = resolveMoeModel(ckpt);
          const gen = new SyntheticModel(spec);
          assert.equal(model.numExperts, spec.numExperts);
          assert.deepEqual(model.layers.map((l) => l.layer as number), truth.moeLayers);
          assert.deepEqual(model.layers.map((l) => l.name), truth.moeLayerNames);
          for (const t of truth.layers.filter((l) => truth.moeLayerNames.includes(l.name))) {
            const layout = model.layers.find((l) => l.name === t.name)!;
            assert.equal(layout.group, t.group);
            assert.deepEqual(projectionsOf(layout.projections), t.projections, `${family} ${t.name} projections`);
            for (const p of t.projections) {
              for (let j = 0; j < spec.numExperts; j++) {
                const got = await model.readExpert(t.name, p, j);
                const want = gen.encodedExpert(t.layer, p, j, t.group).values;
                assert.deepEqual([got.rows, got.cols], gen.shapeOf(p, t.group), `${family} ${t.name} ${p} shape`);
                assert.ok(Buffer.from(got.data.buffer).equals(Buffer.from(want.buffer)), `${family} ${t.name} ${p} expert ${j} differs`);
              }
            }
          }
          // A bare index names the layer where it is unambiguous (single-stack models), as before.
          if (truth.layers.every((l) => l.group === null)) {
            const l0 = truth.moeLayers[0]!;
            assert.ok(Buffer.from((await model.readExpert(layerIndex(l0), 'up', 0)).data.buffer).equals(Buffer.from(gen.encodedExpert(l0, 'up', 0).values.buffer)));
          }
        } finally {
          await ckpt.close();
        }
      });
    }
  }
});
