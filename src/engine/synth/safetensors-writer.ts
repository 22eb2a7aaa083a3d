/**
 * A streaming safetensors writer: the header is built from the tensors' declared sizes, then each
 * tensor's bytes are produced in chunks, so a multi-GB file never sits in memory. Written to a temp
 * file and renamed: a crash leaves no half-written checkpoint. The header is padded with spaces to a
 * multiple of 8 bytes, as the reference writer does.
 */
import { open, rename, rm } from 'node:fs/promises';
import { DTYPE_BITS, type Dtype } from '../formats/dtype';

export interface TensorPlan {
  readonly name: string;
  readonly dtype: Dtype;
  readonly shape: readonly number[];
  /** Produces exactly the tensor's bytes, in order, through `sink`. */
  readonly produce: (sink: (chunk: Uint8Array) => Promise<void>) => Promise<void>;
}

export function byteLengthOf(dtype: Dtype, shape: readonly number[]): number {
  return (shape.reduce((a, b) => a * b, 1) * DTYPE_BITS[dtype]) / 8;
}

export function buildHeader(tensors: readonly Omit<TensorPlan, 'produce'>[], metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) header['__metadata__'] = metadata;
  let offset = 0;
  for (const t of tensors) {
    const len = byteLengthOf(t.dtype, t.shape);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + len] };
    offset += len;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const body = Buffer.from(json, 'utf8');
  const out = new Uint8Array(8 + body.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(body.length), true);
  out.set(body, 8);
  return out;
}

export async function writeSafetensors(path: string, tensors: readonly TensorPlan[], metadata?: Record<string, string>): Promise<number> {
  const tmp = `${path}.partial-${process.pid}`;
  const fh = await open(tmp, 'w');
  try {
    const header = buildHeader(tensors, metadata);
    let pos = 0;
    const write = async (chunk: Uint8Array): Promise<void> => {
      await fh.write(chunk, 0, chunk.length, pos);
      pos += chunk.length;
    };
    await write(header);
    for (const t of tensors) {
      const start = pos;
      await t.produce(write);
      const expected = byteLengthOf(t.dtype, t.shape);
      if (pos - start !== expected) throw new Error(`writer: tensor ${t.name} produced ${pos - start} bytes, expected ${expected}`);
    }
    await fh.close();
    await rename(tmp, path);
    return pos;
  } catch (e) {
    await fh.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw e;
  }
}
