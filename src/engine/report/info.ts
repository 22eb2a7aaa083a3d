/**
 * `info`: what a checkpoint holds, from headers alone (no tensor data is read). The MoE part comes
 * from the resolved layout. When the layout could not be resolved, `info` fails like `analyze` (the
 * worker job rethrows); only `info --headers-only` asks for this report anyway: the rest (dtypes,
 * parameters, files) is still true, and the reason is given in `moe_error`.
 */
import { isMoeInspectorError } from '../errors';
import type { Checkpoint, TensorEntry } from '../model/checkpoint';
import { projectionsOf, type LayerProjections, type MoeModel, type WeightEncoding } from '../layouts/types';
import type { InfoReport } from './schema';

/** Scale tensors are quantization metadata, not parameters: MXFP4 `_scales` and FP8 `_scale_inv`. */
function isScaleTensor(t: TensorEntry): boolean {
  return /_scale_inv$/.test(t.name) || (/_scales$/.test(t.name) && t.dtype === 'U8');
}

/** MXFP4 blocks hold two E2M1 codes per byte: the logical parameter count is twice the bytes. */
function isMxfp4Blocks(t: TensorEntry): boolean {
  return t.dtype === 'U8' && /_blocks$/.test(t.name) && t.shape[t.shape.length - 1] === 16;
}

/** Logical parameters a tensor stores (0 for scales). */
export function parameterCount(t: TensorEntry): number {
  if (isScaleTensor(t)) return 0;
  if (isMxfp4Blocks(t)) return t.byteLength * 2;
  return t.shape.reduce((a, b) => a * b, 1);
}

export function describeEncoding(e: WeightEncoding): string {
  switch (e.kind) {
    case 'plain':
      return e.dtype;
    case 'mxfp4':
      return 'MXFP4 (E2M1 codes, E8M0 scale per 32 inputs)';
    case 'fp8-block':
      return `${e.dtype} x ${e.scaleDtype} scale per ${e.block[0]}x${e.block[1]} block`;
  }
}

/** A safetensors file's data runs contiguously to its end, so its size is the largest tensor end. */
function fileSizes(ckpt: Checkpoint): { name: string; bytes: number }[] {
  const sizes = new Map<string, number>();
  for (const t of ckpt.tensors.values()) sizes.set(t.file, Math.max(sizes.get(t.file) ?? 0, t.offset + t.byteLength));
  for (const f of ckpt.fileMetadata.keys()) if (!sizes.has(f)) sizes.set(f, 0); // a shard without tensors
  return [...sizes.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([name, bytes]) => ({ name, bytes }));
}

function dtypeTable(ckpt: Checkpoint): Record<string, { tensors: number; bytes: number }> {
  const out: Record<string, { tensors: number; bytes: number }> = {};
  for (const t of ckpt.tensors.values()) {
    const d = (out[t.dtype] ??= { tensors: 0, bytes: 0 });
    d.tensors++;
    d.bytes += t.byteLength;
  }
  return out;
}

function routedExpertTensors(model: MoeModel): Set<string> {
  const names = new Set<string>();
  for (const l of model.layers) for (const p of projectionsOf(l.projections)) for (const n of l.projections[p]!.tensors) names.add(n);
  return names;
}

/** Shape and encoding per projection present (no `gate` for experts without one). */
function projectionEntries(p: LayerProjections): InfoReport['projections'] {
  return Object.fromEntries(projectionsOf(p).map((k) => [k, { shape: p[k]!.shape, encoding: describeEncoding(p[k]!.encoding) }]));
}

function projectionTable(model: MoeModel | null): InfoReport['projections'] {
  const first = model?.layers[0];
  if (first) return projectionEntries(first.projections);
  const none = { shape: [0, 0] as const, encoding: 'unresolved' };
  return { gate: none, up: none, down: none };
}

/** One entry per layer group (null: the single stack / text experts; "encoder", "decoder", "vision"). */
function layerGroups(model: MoeModel): InfoReport['layer_groups'] {
  const groups = [...new Set(model.layers.map((l) => l.group))];
  return groups.map((g) => {
    const ls = model.layers.filter((l) => l.group === g);
    return { group: g, num_experts: ls[0]!.numExperts, moe_layers: ls.map((l) => l.layer as number), projections: projectionEntries(ls[0]!.projections) };
  });
}

export function buildInfoReport(ckpt: Checkpoint, model: MoeModel | Error): InfoReport {
  const moe = model instanceof Error ? null : model;
  const routed = moe ? routedExpertTensors(moe) : new Set<string>();
  let total = 0;
  let routedParams = 0;
  for (const t of ckpt.tensors.values()) {
    const n = parameterCount(t);
    total += n;
    if (routed.has(t.name)) routedParams += n;
  }
  const shared = moe ? moe.layers.reduce((a, l) => a + l.sharedExpertTensors.length, 0) : 0;
  const modelType = ckpt.config?.['model_type'];
  return {
    schema: 'moe-inspector/info@1',
    source: ckpt.source,
    revision: ckpt.revision,
    family: moe ? moe.family : typeof modelType === 'string' ? modelType : 'unknown',
    num_experts: moe ? moe.numExperts : 0,
    num_layers: moe ? moe.numLayers : null,
    moe_layers: moe ? moe.layers.map((l) => l.layer as number) : [],
    moe_layer_names: moe ? moe.layers.map((l) => l.name) : [],
    layer_groups: moe ? layerGroups(moe) : [],
    projections: projectionTable(moe),
    shared_experts: { present: shared > 0, tensors: shared },
    dtypes: dtypeTable(ckpt),
    parameters: { total, routed_experts: routedParams, other: total - routedParams },
    files: fileSizes(ckpt),
    total_bytes: ckpt.totalBytes,
    ...(model instanceof Error ? { moe_error: { code: isMoeInspectorError(model) ? model.code : 'internal', message: model.message } } : {}),
  };
}
