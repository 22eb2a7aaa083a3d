import { strict as assert } from 'node:assert';
import { checkFixedRank, energyKept, energyRank, energyRankAllExperts, overlayWeightBytes, rankForTargetRatio } from '../../src/engine/overlay/rank-rules';
import { isMoeInspectorError } from '../../src/engine/errors';

describe('overlay rank rules', () => {
  it('energy rank: the smallest k whose leading s^2 reach the share of ||delta||^2 (hand-built spectra)', () => {
    // s^2 = 50, 30, 15, 5 (total 100): cumulative 0.5, 0.8, 0.95, 1.0
    const s = [50, 30, 15, 5].map(Math.sqrt);
    assert.equal(energyRank(s, 100, 0.5), 1);
    assert.equal(energyRank(s, 100, 0.8), 2);
    assert.equal(energyRank(s, 100, 0.9), 3);
    // Exactly reaching the threshold counts (>=, numpy's searchsorted + 1): s^2 = 4 each, total 16, all shares exact.
    assert.equal(energyRank([2, 2, 2, 2], 16, 0.75), 3);
    assert.equal(energyRank([2, 2, 2, 2], 16, 0.5), 2);
    assert.equal(energyRank(s, 100, 0.96), 4);
    // The total comes from ||delta||_F^2, not from s: unresolved tail energy raises the rank.
    assert.equal(energyRank(s, 200, 0.45), 3);
    assert.equal(energyRank([], 0, 0.95), 0);
  });

  it('energy rule over all experts is the max of the per-expert ranks, not one expert\'s', () => {
    const a = [10, 0.1, 0.1].map(Math.sqrt); // rank 1 at 95%
    const b = [4, 3, 3].map(Math.sqrt); // rank 3 at 95%
    assert.equal(energyRankAllExperts([a, b], [10.2, 10], 0.95), 3);
    assert.equal(energyRankAllExperts([a], [10.2], 0.95), 1);
  });

  it('energy kept at a rank', () => {
    assert.ok(Math.abs(energyKept([3, 4].map(Math.sqrt), 10, 1) - 0.3) < 1e-15);
    assert.ok(Math.abs(energyKept([3, 4].map(Math.sqrt), 10, 2) - 0.7) < 1e-15);
    assert.equal(energyKept([], 0, 0), 1);
  });

  it('target ratio: the largest rank still meeting the ratio, checked against brute force', () => {
    for (const [rows, cols, E, orig, ratio, bpv] of [
      [64, 32, 8, 64 * 32 * 8 * 2, 3, 2],
      [2880, 2880, 32, 2880 * 2880 * 32 * 0.53125, 4, 2],
      [100, 50, 16, 100 * 50 * 16 * 4, 2.5, 4],
    ] as const) {
      const g = { rows, cols, numExperts: E, originalBytes: orig };
      const r = rankForTargetRatio(g, ratio, bpv, 'gate');
      let brute = -1;
      for (let k = 0; k <= Math.min(rows, cols); k++) if (orig / overlayWeightBytes(g, k, bpv) >= ratio) brute = k;
      assert.equal(r, brute, `${rows}x${cols} E=${E} ratio ${ratio}`);
    }
  });

  it('target ratio out of reach (base alone too big) is a usage error naming the projection', () => {
    assert.throws(
      () => rankForTargetRatio({ rows: 10, cols: 10, numExperts: 2, originalBytes: 400 }, 3, 4, 'up'),
      (e: unknown) => isMoeInspectorError(e) && e.code === 'usage' && /up projection/.test(e.message),
    );
  });

  it('fixed ranks above min(out, in) are refused', () => {
    assert.equal(checkFixedRank(8, 8, 16, 'down'), 8);
    assert.throws(() => checkFixedRank(9, 8, 16, 'down'), (e: unknown) => isMoeInspectorError(e) && /exceeds min\(out, in\) = 8/.test(e.message));
  });
});
