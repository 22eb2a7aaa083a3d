/**
 * Peak memory of the analysis does not grow with the expert count: the same layer shape at E = 8
 * and E = 64 (OLMoE layout, BF16, gate/up/down 1024x1024), analysed in child processes. Holding a
 * projection's experts as float32 (what the analysis did before the two passes) adds at least
 * 56 x 4 MiB = 224 MiB at E = 64 (measured with that code: 340 -> 739 MiB, +399 MiB); the two-pass
 * analysis measured +38 MiB; the bound is 110 MiB.
 * The checkpoints are written here with a minimal streaming writer (the synth generator's Gaussian
 * experts take 30 s at this size): BF16 values from a fixed pseudo-random stream, a different
 * window of it per expert and projection.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const SIZE = 1024;
const MIB = 2 ** 20;
const MAX_GROWTH_BYTES = 110 * MIB;

function writeModel(dir: string, experts: number): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ model_type: 'olmoe', hidden_size: SIZE, intermediate_size: SIZE, num_hidden_layers: 1, num_experts: experts }));
  const bytes = SIZE * SIZE * 2;
  const names = ['gate_proj', 'up_proj', 'down_proj'];
  const header: Record<string, unknown> = {};
  let off = 0;
  for (let j = 0; j < experts; j++) {
    for (const n of names) {
      header[`model.layers.0.mlp.experts.${j}.${n}.weight`] = { dtype: 'BF16', shape: [SIZE, SIZE], data_offsets: [off, off + bytes] };
      off += bytes;
    }
  }
  let text = JSON.stringify(header);
  text += ' '.repeat((8 - (text.length % 8)) % 8);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(text.length));
  // One pseudo-random stream of finite BF16 values (|x| in [2^-8, 2)), read at a different offset per matrix.
  const stream = new Uint16Array(SIZE * SIZE + 3 * experts * 131);
  let s = 0x9e3779b9;
  for (let i = 0; i < stream.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    stream[i] = (s & 0x8000) | ((119 + ((s >>> 16) & 7)) << 7) | ((s >>> 8) & 0x7f);
  }
  const fd = openSync(join(dir, 'model.safetensors'), 'w');
  try {
    writeSync(fd, prefix);
    writeSync(fd, Buffer.from(text, 'utf8'));
    for (let k = 0; k < 3 * experts; k++) writeSync(fd, new Uint8Array(stream.buffer, k * 131 * 2, bytes));
  } finally {
    closeSync(fd);
  }
}

function peakRss(dir: string): { maxRssBytes: number; experts: number; cosineSize: number } {
  const out = execFileSync(process.execPath, ['--import', 'tsx', join(__dirname, 'fixtures', 'analyze-rss.ts'), dir], { encoding: 'utf8', env: { ...process.env, ORT_DISABLE_TELEMETRY: '1' } });
  return JSON.parse(out) as { maxRssBytes: number; experts: number; cosineSize: number };
}

describe('memory: peak RSS of the analysis does not grow with the expert count', function () {
  this.timeout(180_000);
  let root: string;
  before(() => (root = mkdtempSync(join(tmpdir(), 'moe-rss-'))));
  after(() => rmSync(root, { recursive: true, force: true }));

  it(`E = 64 peaks less than ${MAX_GROWTH_BYTES / MIB} MiB above E = 8 (same 1024x1024 layer; float32 experts in memory would add 224 MiB)`, () => {
    const runs = [8, 64].map((E) => {
      const dir = join(root, `e${E}`);
      writeModel(dir, E);
      const r = peakRss(dir);
      rmSync(dir, { recursive: true, force: true });
      assert.equal(r.experts, E);
      assert.equal(r.cosineSize, E); // every expert entered the cosines (pass one read them all)
      return r;
    });
    const growth = runs[1]!.maxRssBytes - runs[0]!.maxRssBytes;
    console.log(`      peak RSS: E=8 ${(runs[0]!.maxRssBytes / MIB).toFixed(0)} MiB, E=64 ${(runs[1]!.maxRssBytes / MIB).toFixed(0)} MiB (growth ${(growth / MIB).toFixed(0)} MiB)`);
    assert.ok(growth < MAX_GROWTH_BYTES, `peak RSS grew by ${(growth / MIB).toFixed(0)} MiB from E=8 to E=64`);
  });
});
