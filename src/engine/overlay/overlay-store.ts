/**
 * An overlay on disk: one safetensors file per MoE layer plus overlay-manifest.json, in a folder
 * written under a temporary name and renamed into place (never half-written).
 *
 * Tensors of layer N (file layer-N.safetensors):
 *   layers.N.{gate,up,down}.base               [out, in]  mean of all experts
 *   layers.N.{gate,up,down}.experts.J.U        [out, r]   U_r diag(S_r)  (singular values folded in)
 *   layers.N.{gate,up,down}.experts.J.V        [r, in]    V_r^T
 *   the layer's expert bias and router tensors, under their checkpoint names, bytes copied untouched.
 * Expert J is reconstructed as W_hat = base + U V; its bias is added as stored, never folded in.
 */
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { readRegularTextFile } from '../io/file-source';
import { join } from 'node:path';
import { MoeInspectorError } from '../errors';
import { decodeToFloat32 } from '../formats/decode';
import type { Dtype } from '../formats/dtype';
import { PROJECTIONS, layerIndex, type ExpertMatrix, type LayerIndex, type Projection } from '../layouts/types';
import type { Checkpoint } from '../model/checkpoint';
import { openCheckpoint } from '../model/open-checkpoint';
import { assertPlainFileName } from '../model/local-provider';
import { bf16Bits, f16Bits } from '../synth/encoders';
import { writeSafetensors, type TensorPlan } from '../synth/safetensors-writer';
import type { ProjectionRanks } from './rank-rules';
import type { LayerOverlay, OverlayDtype, RankRule } from './types';
import { OVERLAY_DTYPES } from './types';

export const MANIFEST_FILE = 'overlay-manifest.json';
export const MANIFEST_SCHEMA = 'moe-inspector/overlay-manifest@1';

export interface OverlayManifest {
  readonly schema: typeof MANIFEST_SCHEMA;
  readonly source_model: string;
  readonly revision: string | null;
  readonly family: string;
  readonly num_experts: number;
  readonly dtype: OverlayDtype;
  readonly rank_rule: RankRule;
  readonly reconstruction: string;
  readonly layers: readonly {
    readonly layer: number;
    readonly file: string;
    readonly ranks: ProjectionRanks;
    readonly shapes: Readonly<Record<Projection, readonly [number, number]>>;
    readonly copied_tensors: readonly string[];
  }[];
}

export const tensorName = {
  base: (layer: number, p: Projection) => `layers.${layer}.${p}.base`,
  u: (layer: number, p: Projection, j: number) => `layers.${layer}.${p}.experts.${j}.U`,
  v: (layer: number, p: Projection, j: number) => `layers.${layer}.${p}.experts.${j}.V`,
};

const RECONSTRUCTION = 'W_hat[layer][proj][j] = base + U @ V (U = U_r diag(S_r) [out, r], V = V_r^T [r, in]); biases copied as stored, added after the matmul';

/** f32 values as the overlay dtype's little-endian bytes (round to nearest even). */
export function encodeValues(values: Float32Array, dtype: OverlayDtype): Uint8Array {
  if (dtype === 'F32') return new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));
  const bits = new Uint16Array(values.length);
  const enc = dtype === 'BF16' ? bf16Bits : f16Bits;
  for (let i = 0; i < values.length; i++) bits[i] = enc(values[i]!);
  return new Uint8Array(bits.buffer);
}

function valuesPlan(name: string, shape: number[], values: Float32Array, dtype: OverlayDtype): TensorPlan {
  return { name, dtype, shape, produce: (sink) => sink(encodeValues(values, dtype)) };
}

function copyPlan(ckpt: Checkpoint, name: string): TensorPlan {
  const t = ckpt.tensors.get(name);
  if (!t) throw new MoeInspectorError('layout', 'tensor to copy into the overlay is missing', { file: ckpt.source, tensor: name });
  return { name, dtype: t.dtype, shape: t.shape, produce: async (sink) => sink(await ckpt.readTensorBytes(name)) };
}

export interface OverlaySource {
  readonly ckpt: Checkpoint;
  readonly family: string;
  readonly numExperts: number;
}

/** Writes layer files one at a time into a temporary folder; commit() renames it to `dir`. */
export class OverlayWriter {
  private readonly layers: OverlayManifest['layers'][number][] = [];
  private readonly tmp: string;

  private constructor(
    private readonly dir: string,
    private readonly source: OverlaySource,
    private readonly dtype: OverlayDtype,
    private readonly rule: RankRule,
  ) {
    this.tmp = `${dir}.partial-${process.pid}`;
  }

  static async begin(dir: string, source: OverlaySource, dtype: OverlayDtype, rule: RankRule): Promise<OverlayWriter> {
    if (await exists(dir)) throw new MoeInspectorError('usage', '--save folder already exists: choose a new one (an overlay is never written over another)', { file: dir });
    const w = new OverlayWriter(dir, source, dtype, rule);
    await rm(w.tmp, { recursive: true, force: true });
    await mkdir(w.tmp, { recursive: true });
    return w;
  }

  /**
   * Writes one layer file, streaming: the header needs only shapes, and each expert's factors are
   * asked of the overlay while its U tensor is written (its V follows), one expert at a time.
   */
  async writeLayer(overlay: LayerOverlay, copied: readonly string[]): Promise<void> {
    const L = overlay.layer;
    const plans: TensorPlan[] = [];
    const shapes = {} as Record<Projection, readonly [number, number]>;
    for (const p of PROJECTIONS) {
      const base = overlay.bases[p];
      const r = overlay.ranks[p];
      shapes[p] = [base.rows, base.cols];
      plans.push(valuesPlan(tensorName.base(L, p), [base.rows, base.cols], base.data, this.dtype));
      for (let j = 0; j < overlay.numExperts; j++) {
        let vt: Float32Array | null = null;
        plans.push({
          name: tensorName.u(L, p, j),
          dtype: this.dtype,
          shape: [base.rows, r],
          produce: async (sink) => {
            const e = await overlay.expert(p, j);
            vt = e.factors.vt;
            await sink(encodeValues(e.factors.us, this.dtype));
          },
        });
        plans.push({
          name: tensorName.v(L, p, j),
          dtype: this.dtype,
          shape: [r, base.cols],
          produce: async (sink) => {
            const v = vt!;
            vt = null;
            await sink(encodeValues(v, this.dtype));
          },
        });
      }
    }
    for (const name of copied) plans.push(copyPlan(this.source.ckpt, name));
    const file = `layer-${L}.safetensors`;
    await writeSafetensors(join(this.tmp, file), plans, {
      format: 'moe-inspector-overlay',
      source_model: this.source.ckpt.source,
      revision: this.source.ckpt.revision ?? '',
      family: this.source.family,
      layer: String(L),
      ranks: JSON.stringify(overlay.ranks),
      dtype: this.dtype,
      reconstruction: RECONSTRUCTION,
    });
    this.layers.push({ layer: L, file, ranks: overlay.ranks, shapes, copied_tensors: [...copied] });
  }

  async commit(): Promise<OverlayManifest> {
    const manifest: OverlayManifest = {
      schema: MANIFEST_SCHEMA,
      source_model: this.source.ckpt.source,
      revision: this.source.ckpt.revision,
      family: this.source.family,
      num_experts: this.source.numExperts,
      dtype: this.dtype,
      rank_rule: this.rule,
      reconstruction: RECONSTRUCTION,
      layers: this.layers,
    };
    await writeFile(join(this.tmp, MANIFEST_FILE), JSON.stringify(manifest, null, 2) + '\n');
    await rename(this.tmp, this.dir);
    return manifest;
  }

  async abort(): Promise<void> {
    await rm(this.tmp, { recursive: true, force: true });
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

// ------------------------------------------------------------------------------------------------
// reading

export async function readManifest(dir: string): Promise<OverlayManifest> {
  const file = join(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = await readRegularTextFile(file);
  } catch (e) {
    if (e instanceof MoeInspectorError && e.code === 'io') throw e;
    throw new MoeInspectorError('not-found', `no ${MANIFEST_FILE}: not an overlay folder written by "overlay compute --save"`, { file: dir });
  }
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch (e) {
    throw new MoeInspectorError('format', `not valid JSON (${(e as Error).message})`, { file });
  }
  const v = m as Partial<OverlayManifest>;
  if (v.schema !== MANIFEST_SCHEMA) throw new MoeInspectorError('format', `schema is ${JSON.stringify(v.schema)}, expected "${MANIFEST_SCHEMA}"`, { file });
  if (!OVERLAY_DTYPES.includes(v.dtype as OverlayDtype)) throw new MoeInspectorError('format', `dtype ${JSON.stringify(v.dtype)} is not one of ${OVERLAY_DTYPES.join(', ')}`, { file });
  if (!Array.isArray(v.layers) || !Number.isInteger(v.num_experts)) throw new MoeInspectorError('format', 'manifest lacks "layers" or "num_experts"', { file });
  for (const l of v.layers) {
    assertPlainFileName(String(l.file), { file, what: `layer ${l.layer} file` });
    for (const p of PROJECTIONS) {
      if (!Number.isInteger(l.ranks?.[p]) || l.ranks[p] < 0) throw new MoeInspectorError('format', `layer ${l.layer}: bad ${p} rank ${JSON.stringify(l.ranks?.[p])}`, { file });
    }
  }
  return v as OverlayManifest;
}

/** A saved layer: bases read now, each expert's factors read from the file when asked; close() when done. */
export interface SavedLayerOverlay extends LayerOverlay {
  close(): Promise<void>;
}

/** Opens one layer of a saved overlay (decoding the stored dtype exactly to float32). */
export async function readLayerOverlay(dir: string, manifest: OverlayManifest, layer: number): Promise<SavedLayerOverlay> {
  const entry = manifest.layers.find((l) => l.layer === layer);
  if (!entry) throw new MoeInspectorError('not-found', `the overlay has no layer ${layer} (it has ${manifest.layers.map((l) => l.layer).join(', ')})`, { file: join(dir, MANIFEST_FILE) });
  const path = join(dir, entry.file);
  const ckpt = await openCheckpoint(path);
  try {
    const read = async (name: string, shape: readonly [number, number]): Promise<Float32Array> => {
      const t = ckpt.tensors.get(name);
      if (!t) throw new MoeInspectorError('format', 'overlay tensor missing', { file: path, tensor: name });
      if (t.shape.length !== 2 || t.shape[0] !== shape[0] || t.shape[1] !== shape[1]) {
        throw new MoeInspectorError('format', `shape [${t.shape.join(', ')}], the manifest implies [${shape.join(', ')}]`, { file: path, tensor: name });
      }
      if (t.dtype !== manifest.dtype) throw new MoeInspectorError('dtype', `stored as ${t.dtype}, the manifest says ${manifest.dtype}`, { file: path, tensor: name });
      return decodeToFloat32(await ckpt.readTensorBytes(name), t.dtype as Dtype, { file: path, tensor: name });
    };
    const bases = {} as Record<Projection, ExpertMatrix>;
    for (const p of PROJECTIONS) {
      const [m, n] = entry.shapes[p];
      bases[p] = { rows: m, cols: n, data: await read(tensorName.base(layer, p), [m, n]) };
    }
    return {
      layer: layerIndex(layer) as LayerIndex,
      ranks: entry.ranks,
      numExperts: manifest.num_experts,
      bases,
      async expert(p, j) {
        const [m, n] = entry.shapes[p];
        const r = entry.ranks[p];
        return { factors: { us: await read(tensorName.u(layer, p, j), [m, r]), vt: await read(tensorName.v(layer, p, j), [r, n]) } };
      },
      close: () => ckpt.close(),
    };
  } catch (e) {
    await ckpt.close();
    throw e;
  }
}

/** The overlay as it would read back from a file of `dtype`: every stored value rounded (F32: unchanged). */
export function roundLayerOverlay(overlay: LayerOverlay, dtype: OverlayDtype): LayerOverlay {
  if (dtype === 'F32') return overlay;
  const round = (v: Float32Array): Float32Array => decodeToFloat32(encodeValues(v, dtype), dtype);
  const bases = {} as Record<Projection, ExpertMatrix>;
  for (const p of PROJECTIONS) {
    const b = overlay.bases[p];
    bases[p] = { rows: b.rows, cols: b.cols, data: round(b.data) };
  }
  return {
    ...overlay,
    bases,
    async expert(p, j, weight) {
      const e = await overlay.expert(p, j, weight);
      return { ...e, factors: { ...e.factors, us: round(e.factors.us), vt: round(e.factors.vt) } };
    },
  };
}
