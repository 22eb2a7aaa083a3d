/**
 * The statistics of provenance against independent references: the normal quantile against
 * tabulated values, the extreme-value match threshold against random neurons, Kendall tau against
 * the O(m^2) definition, the storage-noise variance against measured rounding errors, and the
 * Marchenko-Pastur edge against an exact float64 SVD of generated noise.
 */
import { strict as assert } from 'node:assert';
import { matchThreshold, minSharedCount, normalQuantile } from '../../src/engine/provenance/null-threshold';
import { countInversions, contiguity, kendallTau } from '../../src/engine/provenance/match';
import { neuronMatrix, neuronCosine } from '../../src/engine/provenance/neurons';
import { noiseEdge, roundingVariance, signalRank } from '../../src/engine/provenance/noise-edge';
import { encodeMatrix } from '../../src/engine/synth/encode-matrix';
import { fillGaussian, uniforms } from '../../src/engine/synth/random';
import { singularValues64 } from '../synth/svd64';

const gaussian = (n: number, seed: number, std = 1): Float32Array => {
  const x = new Float32Array(n);
  fillGaussian(x, seed, std);
  return x;
};

describe('provenance statistics', function () {
  it('normal quantile matches tabulated values to 1e-6', () => {
    const table: [number, number][] = [[0.5, 0], [0.975, 1.959963985], [0.999, 3.090232306], [1e-6, -4.753424309], [0.841344746, 1]];
    for (const [p, z] of table) assert.ok(Math.abs(normalQuantile(p) - z) < 1e-6, `${p}: ${normalQuantile(p)} vs ${z}`);
  });

  it('the match threshold tau(D, I, alpha) is exceeded by the best of I random neurons with probability alpha (measured)', () => {
    // Random FFNs (gate, up, down iid Gaussian), H = 32 -> D = 96; 1500 neurons each against I = 64 random candidates.
    const H = 32;
    const I = 64;
    const alpha = 0.05;
    const tau = matchThreshold(3 * H, I, alpha);
    let exceed = 0;
    let trials = 0;
    for (let t = 0; t < 24; t++) {
      const ffn = (seed: number) => neuronMatrix({ gate: { rows: I, cols: H, data: gaussian(I * H, seed) }, up: { rows: I, cols: H, data: gaussian(I * H, seed + 1) }, down: { rows: H, cols: I, data: gaussian(I * H, seed + 2) } }, 'random');
      const a = ffn(1000 + 10 * t);
      const b = ffn(5000 + 10 * t);
      for (let i = 0; i < I; i++) {
        let best = -1;
        for (let j = 0; j < I; j++) best = Math.max(best, neuronCosine(a, i, b, j));
        trials++;
        if (best > tau) exceed++;
      }
    }
    const rate = exceed / trials;
    const sd = Math.sqrt((alpha * (1 - alpha)) / trials);
    assert.ok(Math.abs(rate - alpha) < 4 * sd, `best-of-${I} exceeded tau=${tau.toFixed(4)} in ${rate} of ${trials} (alpha ${alpha}, 4 sd ${4 * sd})`);
    // the asymptotic form sqrt(2 ln I / D) is the right order
    assert.ok(tau > 0.5 * Math.sqrt((2 * Math.log(I)) / (3 * H)) && tau < 2 * Math.sqrt((2 * Math.log(I)) / (3 * H)));
    assert.ok(minSharedCount(64) >= 3 && minSharedCount(100000) > 100);
  });

  it('neuron vectors equal their definition (float64 reference), with and without a gate, at sizes off the copy tiles', () => {
    for (const [I, H, gated] of [[70, 130, true], [3, 200, false], [129, 65, true]] as const) {
      const gate = gaussian(I * H, 11, 0.3);
      const up = gaussian(I * H, 12, 2);
      const down = gaussian(H * I, 13, 0.01);
      down.fill(0, 0, I); // row 0 of down is zero: column norms still come from the other rows
      for (let h = 0; h < H; h++) down[h * I + (I - 1)] = 0; // the last neuron's down column is all zero: a zero part
      const n = neuronMatrix({ gate: gated ? { rows: I, cols: H, data: gate } : null, up: { rows: I, cols: H, data: up }, down: { rows: H, cols: I, data: down } }, 'reference');
      const parts = gated ? 3 : 2;
      assert.equal(n.dim, parts * H);
      for (let i = 0; i < I; i++) {
        const vec = [...(gated ? [Array.from(gate.subarray(i * H, (i + 1) * H))] : []), Array.from(up.subarray(i * H, (i + 1) * H)), Array.from({ length: H }, (_, h) => down[h * I + i]!)];
        const ref = vec.flatMap((part) => {
          const norm = Math.sqrt(part.reduce((s, v) => s + v * v, 0));
          return part.map((v) => (norm > 0 ? v / norm / Math.sqrt(parts) : 0));
        });
        for (let d = 0; d < n.dim; d++) assert.ok(Math.abs(n.data[i * n.dim + d]! - ref[d]!) <= 1e-7 * Math.max(1e-30, Math.abs(ref[d]!)) + 1e-12, `I=${I} H=${H} neuron ${i} dim ${d}: ${n.data[i * n.dim + d]} vs ${ref[d]}`);
      }
    }
  });

  it('Kendall tau and contiguity agree with their definitions', () => {
    const u = uniforms(7);
    for (let trial = 0; trial < 20; trial++) {
      const m = 2 + Math.floor(u() * 40);
      const cols = Int32Array.from({ length: m }, (_, i) => i).sort(() => u() - 0.5);
      const rows = Int32Array.from({ length: m }, (_, i) => i * 2);
      let conc = 0;
      let disc = 0;
      for (let i = 0; i < m; i++) for (let j = i + 1; j < m; j++) (cols[j]! > cols[i]! ? conc++ : disc++);
      assert.ok(Math.abs(kendallTau(rows, cols)! - (conc - disc) / (conc + disc)) < 1e-12);
      assert.equal(countInversions(Array.from(cols)), disc);
    }
    assert.equal(kendallTau(Int32Array.of(0, 1, 2), Int32Array.of(5, 6, 7)), 1);
    assert.equal(contiguity(Int32Array.of(0, 1, 2, 5, 6), Int32Array.of(10, 11, 12, 3, 9)), 2 / 3);
  });

  it('storage rounding variance matches the measured rounding error of BF16, F16, FP8 blocks and MXFP4 (within 10%)', () => {
    const rows = 96;
    const cols = 128;
    const w = gaussian(rows * cols, 42, 0.05);
    const cases = [
      { dtype: 'BF16' as const, enc: { kind: 'plain' as const, dtype: 'BF16' as const } },
      { dtype: 'F16' as const, enc: { kind: 'plain' as const, dtype: 'F16' as const } },
      { dtype: 'FP8' as const, enc: { kind: 'fp8-block' as const, dtype: 'F8_E4M3' as const, scaleDtype: 'F32' as const, block: [128, 128] as const } },
      { dtype: 'MXFP4' as const, enc: { kind: 'mxfp4' as const } },
    ];
    for (const c of cases) {
      const q = encodeMatrix(w, rows, cols, c.dtype).values;
      let measured = 0;
      for (let i = 0; i < w.length; i++) measured += (q[i]! - w[i]!) ** 2;
      measured /= w.length;
      const predicted = roundingVariance(q, rows, cols, c.enc)!;
      assert.ok(Math.abs(predicted / measured - 1) < 0.1, `${c.dtype}: predicted ${predicted} measured ${measured}`);
    }
  });

  it('the largest singular value of iid noise sits at the Marchenko-Pastur edge sigma (sqrt m + sqrt n), and signalRank counts what stands above it', () => {
    const m = 60;
    const n = 90;
    const sigma = 0.01;
    for (const seed of [1, 2, 3]) {
      const s = singularValues64(gaussian(m * n, seed, sigma), m, n);
      const edge = sigma * (Math.sqrt(m) + Math.sqrt(n));
      assert.ok(s[0]! < edge * 1.05 && s[0]! > edge * 0.85, `sigma_max ${s[0]} vs edge ${edge}`);
    }
    // rank-3 signal of singular values 5x the edge + noise of that sigma: exactly 3 above the edge
    const x = gaussian(m * n, 9, sigma);
    const edge = noiseEdge(sigma, m, n, Infinity);
    for (let k = 0; k < 3; k++) {
      const u = gaussian(m, 100 + k);
      const v = gaussian(n, 200 + k);
      const nu = Math.hypot(...u);
      const nv = Math.hypot(...v);
      for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) x[i * n + j]! += (5 * edge * u[i]! * v[j]!) / (nu * nv);
    }
    assert.equal(signalRank(singularValues64(x, m, n), edge), 3);
  });
});
