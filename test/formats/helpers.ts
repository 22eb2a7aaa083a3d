/**
 * Test-only helpers: a tiny safetensors writer written from the spec (independent of the engine's
 * synth writer), temp folders, and an assertion for MoeInspectorError.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MoeInspectorError, type ErrorCode } from '../../src/engine/errors';

export interface RawTensor {
  readonly name: string;
  readonly dtype: string;
  readonly shape: readonly number[];
  readonly data: Uint8Array;
}

/** 8-byte little-endian N, the header text (as UTF-8), then the data: no validation at all. */
export function rawFile(header: string | Uint8Array, data: Uint8Array = new Uint8Array(0), declaredLength?: bigint): Uint8Array {
  const h = typeof header === 'string' ? new TextEncoder().encode(header) : header;
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, declaredLength ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

/** A valid file: contiguous data in the given order, header padded with spaces to 8 bytes like the reference writer. */
export function safetensorsFile(tensors: readonly RawTensor[], metadata?: Record<string, string>, pad = true): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header['__metadata__'] = metadata;
  let offset = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.length] };
    offset += t.data.length;
  }
  let text = JSON.stringify(header);
  if (pad) text += ' '.repeat((8 - (new TextEncoder().encode(text).length % 8)) % 8);
  const data = new Uint8Array(offset);
  let at = 0;
  for (const t of tensors) {
    data.set(t.data, at);
    at += t.data.length;
  }
  return rawFile(text, data);
}

export function f32Bytes(values: readonly number[]): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const dv = new DataView(out.buffer);
  values.forEach((v, i) => dv.setFloat32(i * 4, v, true));
  return out;
}

export function bf16Bytes(values: readonly number[]): Uint8Array {
  // Only for values exact in bf16: take the top half of the f32 bits.
  const out = new Uint8Array(values.length * 2);
  const dv = new DataView(out.buffer);
  const tmp = new DataView(new ArrayBuffer(4));
  values.forEach((v, i) => {
    tmp.setFloat32(0, v, true);
    assert.equal(tmp.getUint16(0, true), 0, `${v} is not exact in bf16`);
    dv.setUint16(i * 2, tmp.getUint16(2, true), true);
  });
  return out;
}

export class TempDir {
  readonly path = mkdtempSync(join(tmpdir(), 'moe-inspector-test-'));
  file(name: string, bytes: Uint8Array | string): string {
    const p = join(this.path, name);
    writeFileSync(p, bytes);
    return p;
  }
  remove(): void {
    rmSync(this.path, { recursive: true, force: true });
  }
}

/** Awaits `p`, expects a MoeInspectorError with `code` whose message contains every fragment. */
export async function rejectsWith(p: Promise<unknown>, code: ErrorCode, ...fragments: string[]): Promise<MoeInspectorError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof MoeInspectorError, `expected MoeInspectorError, got ${String(e)}`);
    assert.equal(e.code, code, `code of: ${e.message}`);
    for (const f of fragments) assert.ok(e.message.includes(f), `message ${JSON.stringify(e.message)} should mention ${JSON.stringify(f)}`);
    return e;
  }
  assert.fail(`expected a '${code}' error, but it succeeded`);
}

export function throwsWith(fn: () => unknown, code: ErrorCode, ...fragments: string[]): MoeInspectorError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof MoeInspectorError, `expected MoeInspectorError, got ${String(e)}`);
    assert.equal(e.code, code, `code of: ${e.message}`);
    for (const f of fragments) assert.ok(e.message.includes(f), `message ${JSON.stringify(e.message)} should mention ${JSON.stringify(f)}`);
    return e;
  }
  assert.fail(`expected a '${code}' error, but it succeeded`);
}
