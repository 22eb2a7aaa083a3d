/** Test helpers: temp folders, checkpoint views that hide tensors or change config, byte counting. */
import { strict as assert } from 'node:assert';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MoeInspectorError, type ErrorCode } from '../../src/engine/errors';
import type { Checkpoint, TensorEntry } from '../../src/engine/model/checkpoint';

export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'moe-layouts-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The same checkpoint seen with some tensors removed and/or another config. Reads go to the real files. */
export function viewOf(ckpt: Checkpoint, change: { drop?: (name: string) => boolean; config?: Record<string, unknown> | null; retype?: (t: TensorEntry) => TensorEntry }): Checkpoint {
  const tensors = new Map<string, TensorEntry>();
  for (const [n, t] of ckpt.tensors) if (!change.drop?.(n)) tensors.set(n, change.retype ? change.retype(t) : t);
  return {
    source: ckpt.source,
    revision: ckpt.revision,
    config: change.config !== undefined ? change.config : ckpt.config,
    tensors,
    fileMetadata: ckpt.fileMetadata,
    totalBytes: ckpt.totalBytes,
    readTensorBytes: (name, range) => ckpt.readTensorBytes(name, range),
    close: () => ckpt.close(),
  };
}

/** A checkpoint that records every readTensorBytes call. */
export function countingView(ckpt: Checkpoint): { ckpt: Checkpoint; reads: { name: string; offset: number; length: number }[] } {
  const reads: { name: string; offset: number; length: number }[] = [];
  return {
    reads,
    ckpt: {
      ...viewOf(ckpt, {}),
      async readTensorBytes(name, range) {
        const b = await ckpt.readTensorBytes(name, range);
        reads.push({ name, offset: range?.offset ?? 0, length: b.length });
        return b;
      },
    },
  };
}

export async function rejectsWith(p: Promise<unknown> | (() => unknown), code: ErrorCode, check: (e: MoeInspectorError) => void = () => undefined): Promise<MoeInspectorError> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    assert.ok(e instanceof MoeInspectorError, `expected MoeInspectorError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    check(e);
    return e;
  }
  assert.fail(`expected a '${code}' error, got success`);
}

export function sameBits(a: Float32Array, b: Float32Array): boolean {
  return a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}
