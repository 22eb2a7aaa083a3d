/**
 * A multi-GB Mixtral-layout checkpoint written in seconds: real safetensors headers (our own
 * writer, independent of the engine and of the synth generator), real BF16 data for one chosen
 * layer, and zeros (sparse file regions: no disk used) for everything else.
 */
import { open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface SparseModelSpec {
  readonly layers: number;
  readonly experts: number;
  readonly hidden: number;
  readonly intermediate: number;
  readonly shards: number;
  /** The one layer whose expert weights are real data. */
  readonly dataLayer: number;
  /** Metadata padding for the first shard, to push its header past 100,001 bytes. */
  readonly bigHeaderPadding: number;
}

const PROJ_FILES = { gate: 'w1', up: 'w3', down: 'w2' } as const;
export type Proj = keyof typeof PROJ_FILES;

export function expertTensorName(layer: number, expert: number, p: Proj): string {
  return `model.layers.${layer}.block_sparse_moe.experts.${expert}.${PROJ_FILES[p]}.weight`;
}

interface Planned {
  readonly name: string;
  readonly shape: [number, number];
  readonly bytes: number;
}

function layerTensors(s: SparseModelSpec, layer: number): Planned[] {
  const out: Planned[] = [{ name: `model.layers.${layer}.block_sparse_moe.gate.weight`, shape: [s.experts, s.hidden], bytes: s.experts * s.hidden * 2 }];
  for (let j = 0; j < s.experts; j++) {
    for (const p of ['gate', 'up', 'down'] as const) {
      const shape: [number, number] = p === 'down' ? [s.hidden, s.intermediate] : [s.intermediate, s.hidden];
      out.push({ name: expertTensorName(layer, j, p), shape, bytes: shape[0] * shape[1] * 2 });
    }
  }
  return out;
}

/** Deterministic BF16 values of the data layer: the top halves of f32 numbers in [-1, 1), never NaN. */
export function expertBytes(s: SparseModelSpec, expert: number, p: Proj): Uint8Array {
  const n = s.hidden * s.intermediate;
  const out = new Uint8Array(n * 2);
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  let x = (expert * 7919 + p.charCodeAt(0) * 104729 + 1) >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0; // LCG
    f[0] = x / 2 ** 31 - 1;
    const bits = u[0]! >>> 16;
    out[2 * i] = bits & 0xff;
    out[2 * i + 1] = bits >>> 8;
  }
  return out;
}

/** BF16 little-endian bytes -> f32 values: the test's own decoder. */
export function decodeBf16(bytes: Uint8Array): Float32Array {
  const u = new Uint32Array(bytes.length / 2);
  for (let i = 0; i < u.length; i++) u[i] = ((bytes[2 * i]! | (bytes[2 * i + 1]! << 8)) << 16) >>> 0;
  return new Float32Array(u.buffer);
}

export interface SparseModel {
  readonly files: string[];
  readonly totalBytes: number;
  /** Bytes of each shard's header (8 + N). */
  readonly headerBytes: Map<string, number>;
}

export async function writeSparseModel(dir: string, s: SparseModelSpec): Promise<SparseModel> {
  const files: string[] = [];
  const weightMap: Record<string, string> = {};
  const headerBytes = new Map<string, number>();
  let totalBytes = 0;
  const perShard = Math.ceil(s.layers / s.shards);
  for (let k = 0; k < s.shards; k++) {
    const file = `model-${String(k + 1).padStart(5, '0')}-of-${String(s.shards).padStart(5, '0')}.safetensors`;
    const tensors = [];
    for (let l = k * perShard; l < Math.min(s.layers, (k + 1) * perShard); l++) tensors.push(...layerTensors(s, l));
    const header: Record<string, unknown> = { __metadata__: { format: 'pt', ...(k === 0 ? { padding: 'x'.repeat(s.bigHeaderPadding) } : {}) } };
    const offsets = new Map<string, number>();
    let off = 0;
    for (const t of tensors) {
      header[t.name] = { dtype: 'BF16', shape: t.shape, data_offsets: [off, off + t.bytes] };
      offsets.set(t.name, off);
      weightMap[t.name] = file;
      off += t.bytes;
    }
    const json = Buffer.from(JSON.stringify(header), 'utf8');
    const prefix = Buffer.alloc(8);
    prefix.writeBigUInt64LE(BigInt(json.length));
    const fh = await open(join(dir, file), 'w');
    try {
      await fh.write(prefix, 0, 8, 0);
      await fh.write(json, 0, json.length, 8);
      const dataStart = 8 + json.length;
      for (let j = 0; j < s.experts; j++) {
        for (const p of ['gate', 'up', 'down'] as const) {
          const name = expertTensorName(s.dataLayer, j, p);
          const at = offsets.get(name);
          if (at !== undefined) await fh.write(expertBytes(s, j, p), 0, undefined, dataStart + at);
        }
      }
      await fh.truncate(dataStart + off); // the rest: a hole that reads as zeros
    } finally {
      await fh.close();
    }
    files.push(file);
    headerBytes.set(file, 8 + json.length);
    totalBytes += 8 + json.length + off;
  }
  await writeFile(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: totalBytes }, weight_map: weightMap }));
  const config = { model_type: 'mixtral', hidden_size: s.hidden, intermediate_size: s.intermediate, num_hidden_layers: s.layers, num_local_experts: s.experts, hidden_act: 'silu', vocab_size: 64 };
  await writeFile(join(dir, 'config.json'), JSON.stringify(config));
  return { files, totalBytes, headerBytes };
}
