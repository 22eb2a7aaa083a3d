/**
 * Overlay compute --save and verify --overlay keep one expert's factors in memory, however many
 * experts the layer has: the same 512x512 layer at E = 16 and E = 256 (OLMoE layout, BF16, ranks 32),
 * in child processes. Keeping every expert's factors (what compute and verify did before) holds
 * 256 x 3 x 32 x (512 + 512) x 4 B = 96 MiB more at E = 256: measured with that code, 308 MB peak
 * at E = 256; the streaming code measured 194 MB (E = 16) and 201 MB (E = 256).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeBf16Model } from '../analysis/big-model';

const MIB = 2 ** 20;
const MAX_GROWTH_BYTES = 50 * MIB;

function run(dir: string, save: string): { maxRssBytes: number; experts: number; computed: number; verified: number } {
  const out = execFileSync(process.execPath, ['--import', 'tsx', join(__dirname, 'fixtures', 'overlay-rss.ts'), dir, save, '32'], { encoding: 'utf8', env: { ...process.env, ORT_DISABLE_TELEMETRY: '1' } });
  return JSON.parse(out) as { maxRssBytes: number; experts: number; computed: number; verified: number };
}

describe('memory: overlay compute and verify do not grow with the expert count', function () {
  this.timeout(400_000);
  let root: string;
  before(() => (root = mkdtempSync(join(tmpdir(), 'moe-overlay-rss-'))));
  after(() => rmSync(root, { recursive: true, force: true }));

  it(`E = 256 peaks less than ${MAX_GROWTH_BYTES / MIB} MiB above E = 16 (512x512 layer, ranks 32; all factors in memory would add 96 MiB)`, () => {
    const runs = [16, 256].map((E) => {
      const dir = join(root, `e${E}`);
      writeBf16Model(dir, E, 512, 512);
      const r = run(dir, join(root, `overlay-${E}`));
      rmSync(dir, { recursive: true, force: true });
      assert.deepEqual([r.experts, r.computed, r.verified], [E, E, E]);
      return r;
    });
    const growth = runs[1]!.maxRssBytes - runs[0]!.maxRssBytes;
    console.log(`      peak RSS: E=16 ${(runs[0]!.maxRssBytes / MIB).toFixed(0)} MiB, E=256 ${(runs[1]!.maxRssBytes / MIB).toFixed(0)} MiB (growth ${(growth / MIB).toFixed(0)} MiB)`);
    assert.ok(growth < MAX_GROWTH_BYTES, `peak RSS grew by ${(growth / MIB).toFixed(0)} MiB from E=16 to E=256`);
  });
});
