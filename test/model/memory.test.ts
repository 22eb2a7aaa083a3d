/**
 * A >= 2 GiB single-file checkpoint is opened and one expert read in a child process whose peak
 * RSS must stay far below the file size: proof that nothing reads the whole file.
 * Skipped with MOE_SKIP_BIG=1 (it writes 2 GiB to os.tmpdir()).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const EXPERTS = 32;
const ROWS = 4096;
const COLS = 8192;
const EXPERT_BYTES = ROWS * COLS * 2; // BF16: 64 MiB per expert, 2 GiB in all
const CHUNK_BYTES = 16 * 1024 * 1024;
/** Node + tsx (~100 MB) + one expert's bytes (64 MiB) + its f32 decode (128 MiB), with headroom; the file is 2 GiB. */
const RSS_BOUND_BYTES = 400 * 1024 * 1024;

/** Streams the file with a minimal writer: header, then each expert's pattern chunk repeated. */
function writeBigCheckpoint(path: string): void {
  const header: Record<string, unknown> = {};
  for (let e = 0; e < EXPERTS; e++) header[`experts.${e}.weight`] = { dtype: 'BF16', shape: [ROWS, COLS], data_offsets: [e * EXPERT_BYTES, (e + 1) * EXPERT_BYTES] };
  let text = JSON.stringify(header);
  text += ' '.repeat((8 - (text.length % 8)) % 8);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(text.length));
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, prefix);
    writeSync(fd, Buffer.from(text, 'utf8'));
    const chunk = Buffer.alloc(CHUNK_BYTES);
    for (let e = 0; e < EXPERTS; e++) {
      // bf16 code 0x3c00 + e * 16 + (k % 16) at flat index k (the child checks exactly this).
      for (let k = 0; k < CHUNK_BYTES / 2; k++) chunk.writeUInt16LE(0x3c00 + e * 16 + (k % 16), k * 2);
      for (let written = 0; written < EXPERT_BYTES; written += CHUNK_BYTES) writeSync(fd, chunk);
    }
  } finally {
    closeSync(fd);
  }
}

describe('memory: a 2 GiB checkpoint is read by byte range', function () {
  if (process.env['MOE_SKIP_BIG'] === '1') {
    it.skip('skipped: MOE_SKIP_BIG=1');
    return;
  }
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), 'moe-inspector-big-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it(`opening it and decoding one expert keeps the child's peak RSS under ${RSS_BOUND_BYTES / 2 ** 20} MiB`, () => {
    const file = join(dir, 'model.safetensors');
    writeBigCheckpoint(file);
    const size = statSync(file).size;
    assert.ok(size >= 2 * 2 ** 30, `file is ${size} bytes`);
    const out = execFileSync(process.execPath, ['--import', 'tsx', join(__dirname, 'fixtures', 'read-one-expert.ts'), file, '29'], {
      encoding: 'utf8',
      env: { ...process.env, ORT_DISABLE_TELEMETRY: '1' },
    });
    const r = JSON.parse(out) as { maxRssBytes: number; elements: number; mismatches: number; tensors: number; fileBytes: number };
    assert.equal(r.tensors, EXPERTS);
    assert.equal(r.fileBytes, size);
    assert.equal(r.elements, ROWS * COLS);
    assert.equal(r.mismatches, 0);
    assert.ok(r.maxRssBytes < RSS_BOUND_BYTES, `peak RSS ${(r.maxRssBytes / 2 ** 20).toFixed(0)} MiB for a ${(size / 2 ** 30).toFixed(2)} GiB file`);
    console.log(`      peak RSS of the reader: ${(r.maxRssBytes / 2 ** 20).toFixed(0)} MiB (file ${(size / 2 ** 30).toFixed(2)} GiB, one expert 64 MiB bf16 -> 128 MiB f32)`);
  });
});
