/**
 * Peak memory of the analysis does not grow with the expert count: the same layer shape at E = 8
 * and E = 64 (OLMoE layout, BF16, gate/up/down 1024x1024), analysed in child processes. Holding a
 * projection's experts as float32 (what the analysis did before the two passes) adds at least
 * 56 x 4 MiB = 224 MiB at E = 64 (measured with that code: 340 -> 739 MiB, +399 MiB); the two-pass
 * analysis measured +18..61 MiB over runs (GC timing varies); the bound is 150 MiB.
 * The checkpoints are written by big-model.ts (the synth generator's Gaussian experts take 30 s at this size).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { writeBf16Model } from './big-model';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const SIZE = 1024;
const MIB = 2 ** 20;
const MAX_GROWTH_BYTES = 150 * MIB;

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
      writeBf16Model(dir, E, SIZE, SIZE);
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
