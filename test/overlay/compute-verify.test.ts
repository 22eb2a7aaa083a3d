/**
 * overlay compute / save / reload / verify on synthetic upcycled checkpoints of known delta ranks,
 * against float64 references written here (Jacobi SVD, direct expert forward passes, raw header reads).
 * The exact Jacobi solver stands in for the SVD so these tests check the overlay logic to 1e-6;
 * the production solver is held to the same reference in solver.test.ts.
 */
import { strict as assert } from 'node:assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSyntheticCheckpoint, type SynthSpec } from '../../src/engine/synth/generate';
import { openCheckpoint } from '../../src/engine/model/open-checkpoint';
import { resolveMoeModel } from '../../src/engine/layouts';
import { PROJECTIONS, layerIndex, type MoeModel, type Projection } from '../../src/engine/layouts/types';
import type { Checkpoint } from '../../src/engine/model/checkpoint';
import { createComputeBackend, type ComputeBackend } from '../../src/engine/numerics/backend';
import { overlayCompute } from '../../src/engine/overlay/overlay-compute';
import { overlayVerify } from '../../src/engine/overlay/overlay-verify';
import { seededInputs } from '../../src/engine/overlay/verify-inputs';
import { bf16Value } from '../../src/engine/synth/encoders';
import { exactSolver, expertForwardF64, headerOf, jacobiSvd, relErr } from './reference';
import { f32Bytes, safetensorsFile } from '../formats/helpers';

const RANKS = { gate: 3, up: 4, down: 2 };

interface Opened {
  ckpt: Checkpoint;
  model: MoeModel;
}

async function open(dir: string): Promise<Opened> {
  const ckpt = await openCheckpoint(dir);
  return { ckpt, model: resolveMoeModel(ckpt) };
}

/** Per expert: ||W||^2, and the exact spectrum of W - mean (all computed here in float64). */
async function reference(model: MoeModel, layer: number, p: Projection) {
  const L = layerIndex(layer);
  const ws = [];
  for (let j = 0; j < model.numExperts; j++) ws.push(await model.readExpert(L, p, j));
  const { rows, cols } = ws[0]!;
  const mean = new Float64Array(rows * cols);
  for (const w of ws) for (let i = 0; i < mean.length; i++) mean[i]! += w.data[i]! / ws.length;
  return ws.map((w) => {
    const d = Float64Array.from(w.data, (x, i) => x - mean[i]!);
    const s = jacobiSvd(d, rows, cols).s;
    const total = s.reduce((a, x) => a + x * x, 0);
    return { w, mean, s, total, norm2: w.data.reduce((a, x) => a + x * x, 0) };
  });
}

/** A tensor of a safetensors file, read from the raw bytes (F32 or BF16), independently of the engine. */
function rawTensor(path: string, name: string): { shape: number[]; values: Float64Array; bytes: Buffer } {
  const buf = readFileSync(path);
  const n = Number(buf.readBigUInt64LE(0));
  const h = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'))[name] as { dtype: string; shape: number[]; data_offsets: [number, number] };
  const bytes = buf.subarray(8 + n + h.data_offsets[0], 8 + n + h.data_offsets[1]);
  const count = h.shape.reduce((a, b) => a * b, 1);
  const values = new Float64Array(count);
  for (let i = 0; i < count; i++) values[i] = h.dtype === 'F32' ? bytes.readFloatLE(4 * i) : h.dtype === 'BF16' ? bf16Value(bytes.readUInt16LE(2 * i)) : NaN;
  return { shape: h.shape, values, bytes };
}

/** base + U V from a saved layer file, in float64. */
function rebuilt(file: string, layer: number, p: Projection, j: number): Float64Array {
  const base = rawTensor(file, `layers.${layer}.${p}.base`);
  const u = rawTensor(file, `layers.${layer}.${p}.experts.${j}.U`);
  const v = rawTensor(file, `layers.${layer}.${p}.experts.${j}.V`);
  const [m, n] = base.shape as [number, number];
  const r = u.shape[1]!;
  const out = Float64Array.from(base.values);
  for (let i = 0; i < m; i++) for (let k = 0; k < r; k++) for (let c = 0; c < n; c++) out[i * n + c]! += u.values[i * r + k]! * v.values[k * n + c]!;
  return out;
}

type References = Record<Projection, Awaited<ReturnType<typeof reference>>>;

async function allReferences(model: MoeModel, layer: number): Promise<References> {
  return { gate: await reference(model, layer, 'gate'), up: await reference(model, layer, 'up'), down: await reference(model, layer, 'down') };
}

/** Per expert: relative error of the whole SwiGLU expert, W vs base + exact rank-r delta, in float64 on tokens x. */
function outputErrorsF64(
  refs: References,
  spec: SynthSpec,
  x: { data: ArrayLike<number>; tokens: number },
): number[] {
  const per: number[] = [];
  for (let j = 0; j < spec.numExperts; j++) {
    const pick = (p: Projection, hat: boolean) => {
      const e = refs[p][j]!;
      if (!hat) return { w: e.w.data, b: null };
      const { rows, cols } = e.w;
      const d = Float64Array.from(e.w.data, (v, i) => v - e.mean[i]!);
      const svd = jacobiSvd(d, rows, cols);
      const w = Float64Array.from(e.mean);
      for (let i = 0; i < rows; i++) for (let k = 0; k < RANKS[p]; k++) for (let c = 0; c < cols; c++) w[i * cols + c]! += svd.u[i * svd.k + k]! * svd.s[k]! * svd.v[c * svd.k + k]!;
      return { w, b: null };
    };
    const f = (hat: boolean) => expertForwardF64({ gate: pick('gate', hat), up: pick('up', hat), down: pick('down', hat), H: spec.hidden, I: spec.intermediate }, x.data, x.tokens, { kind: 'swiglu' });
    per.push(relErr(f(false), f(true)));
  }
  return per;
}

describe('overlay compute, save, reload and verify (synthetic upcycled checkpoints)', function () {
  let root: string;
  let backend: ComputeBackend;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'moe-overlay-'));
    backend = await createComputeBackend('cpu');
  });
  after(async () => {
    await backend.dispose();
    await rm(root, { recursive: true, force: true });
  });

  describe('olmoe F32, 6 experts, delta ranks gate 3 / up 4 / down 2', () => {
    const spec: SynthSpec = { family: 'olmoe', dtype: 'F32', numLayers: 2, numExperts: 6, hidden: 48, intermediate: 40, structure: { kind: 'upcycled', ranks: RANKS }, seed: 11 };
    let m: Opened;
    let dir: string;
    before(async () => {
      dir = join(root, 'olmoe');
      await generateSyntheticCheckpoint(dir, spec);
      m = await open(dir);
    });
    after(async () => m.ckpt.close());

    it('compute --save F32: every reloaded expert = base + U V to the exact truncation error (sqrt(tail energy)/||W||, within 2e-6)', async () => {
      const save = join(root, 'olmoe-overlay');
      const report = await overlayCompute(m.ckpt, m.model, exactSolver, { layers: { kind: 'all' }, rule: { kind: 'fixed', ...RANKS }, overlayDtype: 'F32', saveDir: save });
      assert.deepEqual((await readdir(save)).sort(), ['layer-0.safetensors', 'layer-1.safetensors', 'overlay-manifest.json']);
      assert.ok(!(await readdir(root)).some((f) => f.includes('.partial-')), 'no temporary folder left behind');
      for (const layer of [0, 1]) {
        const file = join(save, `layer-${layer}.safetensors`);
        for (const p of PROJECTIONS) {
          const ref = await reference(m.model, layer, p);
          const rep = report.layers.find((l) => l.layer === layer)!.projections[p]!;
          assert.equal(rep.rank, RANKS[p]);
          ref.forEach((e, j) => {
            const tail = e.s.slice(RANKS[p]).reduce((a, x) => a + x * x, 0);
            const want = Math.sqrt(tail / e.norm2);
            const hat = rebuilt(file, layer, p, j);
            const got = relErr(e.w.data, hat);
            assert.ok(Math.abs(got - want) < 2e-6, `L${layer} ${p} expert ${j}: reloaded error ${got} vs tail ${want}`);
            assert.ok(got < 0.004, `the constructed accuracy (noise 0.2% of the base) is reached: ${got}`);
            assert.ok(Math.abs(rep.relative_error[j]! - want) < 2e-6, `reported ${rep.relative_error[j]} vs ${want}`);
            assert.ok(Math.abs(rep.energy_kept[j]! - (1 - tail / e.total)) < 1e-6);
          });
        }
      }
      const meta = JSON.parse(readFileSync(join(save, 'overlay-manifest.json'), 'utf8'));
      assert.equal(meta.dtype, 'F32');
      assert.deepEqual(meta.layers[0].ranks, RANKS);
    });

    it('energy rule: the smallest rank where EVERY expert keeps >= 95% (reference: max of per-expert Jacobi ranks)', async () => {
      const report = await overlayCompute(m.ckpt, m.model, exactSolver, { layers: { kind: 'list', layers: [1] }, rule: { kind: 'energy', energy: 0.95 }, overlayDtype: 'F32' });
      for (const p of PROJECTIONS) {
        const ref = await reference(m.model, 1, p);
        const perExpert = ref.map((e) => {
          let acc = 0;
          for (let k = 0; k < e.s.length; k++) if ((acc += e.s[k]! ** 2) >= 0.95 * e.total) return k + 1;
          return e.s.length;
        });
        const rep = report.layers[0]!.projections[p]!;
        assert.equal(rep.rank, Math.max(...perExpert), p);
        assert.ok(rep.energy_kept.every((k) => k >= 0.95 - 1e-9), `${p}: every expert keeps 95%`);
      }
    });

    it('verify (F32, computed now): measured weight errors match the tail energy, output error matches a float64 forward pass', async () => {
      const report = await overlayVerify(m.ckpt, m.model, exactSolver, backend, { layers: { kind: 'list', layers: [0] }, rule: { kind: 'fixed', ...RANKS }, overlayDtype: 'F32' });
      const layer = report.layers[0]!;
      const refs = await allReferences(m.model, 0);
      for (const p of PROJECTIONS) {
        const rep = layer.projections[p]!;
        assert.equal(rep.error_source, 'reconstruction');
        refs[p]!.forEach((e, j) => {
          const tail = e.s.slice(RANKS[p]).reduce((a, x) => a + x * x, 0);
          // relative error^2 = tail / ||W||^2: f32 reconstruction and reduction in ORT, so within 1e-3 relative.
          assert.ok(Math.abs(rep.relative_error[j]! ** 2 / (tail / e.norm2) - 1) < 1e-3, `${p} expert ${j}: ${rep.relative_error[j]! ** 2} vs ${tail / e.norm2}`);
          assert.ok(Math.abs(rep.energy_kept[j]! - (1 - tail / e.total)) < 1e-5);
        });
      }
      // The whole expert function on the seeded inputs, recomputed here in float64 from W and the exact rank-r reconstruction.
      const per = outputErrorsF64(refs, spec, seededInputs(spec.hidden, 0));
      const got = layer.expert_output_error!.seeded!;
      per.forEach((want, j) => assert.ok(Math.abs(got.per_expert[j]! / want - 1) < 1e-3, `expert ${j}: output error ${got.per_expert[j]} vs f64 ${want}`));
      assert.ok(Math.abs(got.max - Math.max(...per)) < 1e-3 * Math.max(...per));
      assert.equal(report.verification!.criterion, 'output_error');
      assert.equal(report.verification!.passed, got.max <= 0.01);
    });

    it('verify --inputs FILE: the output error on given activations matches a float64 forward pass on them; a wrong width is refused', async () => {
      // "Real" activations: 37 tokens unlike the seeded Gaussian ones (a deterministic, uneven pattern).
      const tokens = 37;
      const values = Array.from({ length: tokens * spec.hidden }, (_, i) => Math.sin(0.37 * i + 1) * (1 + (i % 5)));
      const file = join(root, 'activations.safetensors');
      writeFileSync(file, safetensorsFile([{ name: 'inputs', dtype: 'F32', shape: [tokens, spec.hidden], data: f32Bytes(values) }]));
      const report = await overlayVerify(m.ckpt, m.model, exactSolver, backend, { layers: { kind: 'list', layers: [0] }, rule: { kind: 'fixed', ...RANKS }, overlayDtype: 'F32', inputsFile: file });
      const got = report.layers[0]!.expert_output_error!.inputs_file!;
      const refs = await allReferences(m.model, 0);
      const want = outputErrorsF64(refs, spec, { data: Float64Array.from(values, (v) => Math.fround(v)), tokens });
      want.forEach((w, j) => assert.ok(Math.abs(got.per_expert[j]! / w - 1) < 1e-3, `expert ${j}: ${got.per_expert[j]} vs f64 ${w}`));
      assert.ok(Math.abs(got.max - Math.max(...want)) < 1e-3 * Math.max(...want));
      // the seeded set is still there, and differs: these are other tokens
      assert.notEqual(report.layers[0]!.expert_output_error!.seeded!.max, got.max);

      const narrow = join(root, 'narrow.safetensors');
      writeFileSync(narrow, safetensorsFile([{ name: 'x', dtype: 'F32', shape: [2, spec.hidden - 1], data: f32Bytes(new Array(2 * (spec.hidden - 1)).fill(0.5)) }]));
      await assert.rejects(
        overlayVerify(m.ckpt, m.model, exactSolver, backend, { layers: { kind: 'first' }, rule: { kind: 'fixed', ...RANKS }, overlayDtype: 'F32', inputsFile: narrow }),
        (e: Error) => e.message.includes('narrow.safetensors') && e.message.includes(`H = ${spec.hidden - 1}`) && e.message.includes(`take ${spec.hidden}`),
      );
    });

    it('verify fails when the tolerance is not met (rank 0 keeps no delta)', async () => {
      const report = await overlayVerify(m.ckpt, m.model, exactSolver, backend, { layers: { kind: 'first' }, rule: { kind: 'fixed', gate: 0, up: 0, down: 0 }, overlayDtype: 'F32', maxError: 0.01 });
      assert.equal(report.verification!.passed, false);
      assert.ok(report.verification!.worst > 0.01);
      assert.ok(report.layers[0]!.projections.gate!.energy_kept.every((k) => Math.abs(k) < 1e-6), 'rank 0 keeps no delta energy');
    });
  });

  describe('gpt_oss MXFP4 with biases, 4 experts', () => {
    const spec: SynthSpec = { family: 'gpt_oss', dtype: 'MXFP4', numLayers: 1, numExperts: 4, hidden: 64, intermediate: 64, structure: { kind: 'upcycled', ranks: { gate: 2, up: 3, down: 2 } }, seed: 5 };
    let m: Opened;
    let save: string;
    let report: Awaited<ReturnType<typeof overlayCompute>>;
    before(async () => {
      const dir = join(root, 'gptoss');
      await generateSyntheticCheckpoint(dir, spec);
      m = await open(dir);
      save = join(root, 'gptoss-overlay');
      report = await overlayCompute(m.ckpt, m.model, exactSolver, { layers: { kind: 'all' }, rule: { kind: 'fixed', gate: 2, up: 3, down: 2 }, overlayDtype: 'BF16', saveDir: save });
    });
    after(async () => m.ckpt.close());

    it('biases and router are copied byte for byte, never folded: the base is the mean of the bias-free weights', async () => {
      const src = join(root, 'gptoss', 'model.safetensors');
      const file = join(save, 'layer-0.safetensors');
      const copied = [...headerOf(file).keys()].filter((k) => !k.startsWith('layers.'));
      assert.deepEqual(copied.sort(), ['model.layers.0.mlp.experts.down_proj_bias', 'model.layers.0.mlp.experts.gate_up_proj_bias', 'model.layers.0.mlp.router.bias', 'model.layers.0.mlp.router.weight']);
      for (const name of copied) assert.ok(rawTensor(src, name).bytes.equals(rawTensor(file, name).bytes), `${name} copied untouched`);
      for (const p of PROJECTIONS) {
        const ref = await reference(m.model, 0, p);
        const base = rawTensor(file, `layers.0.${p}.base`).values;
        // BF16 storage: each value within half an ulp (2^-9 relative) of the float64 mean of the decoded weights.
        ref[0]!.mean.forEach((v, i) => assert.ok(Math.abs(base[i]! - v) <= Math.abs(v) * 2 ** -8 + 1e-30, `${p} base[${i}] ${base[i]} vs mean ${v}`));
      }
      assert.equal(JSON.parse(readFileSync(join(save, 'overlay-manifest.json'), 'utf8')).family, 'gpt_oss');
      assert.equal(report.layers[0]!.projections.gate!.encoding, 'mxfp4');
    });

    it('verify --overlay DIR: the clamped gpt-oss expert function with biases matches a float64 forward pass on the reloaded BF16 overlay', async () => {
      const v = await overlayVerify(m.ckpt, m.model, exactSolver, backend, { layers: { kind: 'all' }, rule: { kind: 'fixed', gate: 0, up: 0, down: 0 }, overlayDtype: 'F32', overlayDir: save });
      assert.equal(v.options!.overlay_dtype, 'BF16', 'the saved overlay\'s dtype applies');
      assert.deepEqual(v.layers[0]!.ranks, { gate: 2, up: 3, down: 2 }, 'the saved overlay\'s ranks apply');
      assert.equal(m.model.activation.kind, 'gpt-oss');
      const file = join(save, 'layer-0.safetensors');
      const x = seededInputs(spec.hidden, 0);
      const L = layerIndex(0);
      for (let j = 0; j < spec.numExperts; j++) {
        const part = async (p: Projection, hat: boolean) => ({ w: hat ? rebuilt(file, 0, p, j) : (await m.model.readExpert(L, p, j)).data, b: await m.model.readExpertBias(L, p, j) });
        const f = async (hat: boolean) =>
          expertForwardF64({ gate: await part('gate', hat), up: await part('up', hat), down: await part('down', hat), H: spec.hidden, I: spec.intermediate }, x.data, x.tokens, m.model.activation);
        const want = relErr(await f(false), await f(true));
        const got = v.layers[0]!.expert_output_error!.seeded!.per_expert[j]!;
        assert.ok(Math.abs(got / want - 1) < 1e-3, `expert ${j}: ${got} vs f64 ${want}`);
      }
      assert.notEqual(m.model.readExpertBias(L, 'gate', 0), null);
    });
  });
});
