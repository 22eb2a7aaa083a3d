/**
 * Decoding throughput for the closing notes: BF16 -> f32 and MXFP4 -> f32, each over ~256 MB of
 * stored bytes, decoded one expert-sized piece at a time (as the layouts read them).
 * Run: npx tsx bench/decode-bench.ts
 */
import { decodeToFloat32 } from '../src/engine/formats/decode';
import { decodeMxfp4 } from '../src/engine/formats/mxfp4';

const TOTAL_BYTES = 256 * 1024 * 1024;

export interface DecodeBenchResult {
  readonly format: string;
  readonly inputMB: number;
  readonly seconds: number;
  /** Stored (input) megabytes per second. */
  readonly mbPerSecond: number;
  /** Decoded values per second, in millions. */
  readonly mValuesPerSecond: number;
}

function pseudoRandomBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

function timeRepeated(pieceBytes: number, decodeOnce: () => Float32Array): { seconds: number; values: number; inputBytes: number } {
  decodeOnce(); // warm-up: let the JIT compile the loop
  const reps = Math.max(1, Math.round(TOTAL_BYTES / pieceBytes));
  let values = 0;
  const t0 = process.hrtime.bigint();
  for (let r = 0; r < reps; r++) values += decodeOnce().length;
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return { seconds, values, inputBytes: reps * pieceBytes };
}

function result(format: string, m: { seconds: number; values: number; inputBytes: number }): DecodeBenchResult {
  return { format, inputMB: m.inputBytes / 1e6, seconds: m.seconds, mbPerSecond: m.inputBytes / 1e6 / m.seconds, mValuesPerSecond: m.values / 1e6 / m.seconds };
}

export function runDecodeBench(): DecodeBenchResult[] {
  // One Mixtral-sized BF16 expert matrix slice: 4096 x 4096 (32 MiB).
  const bf16 = pseudoRandomBytes(4096 * 4096 * 2, 1);
  const bf16Result = result('BF16', timeRepeated(bf16.length, () => decodeToFloat32(bf16, 'BF16')));
  // One GPT-OSS-20B gate_up expert: 5760 rows x 90 groups of 32 (8.3 MB of blocks + scales).
  const rows = 5760;
  const groups = 90;
  const blocks = pseudoRandomBytes(rows * groups * 16, 2);
  const scales = Uint8Array.from(pseudoRandomBytes(rows * groups, 3), (b) => 110 + (b % 20));
  const mxResult = result('MXFP4', timeRepeated(blocks.length + scales.length, () => decodeMxfp4(blocks, scales, rows, groups)));
  return [bf16Result, mxResult];
}

// Run directly (npx tsx bench/decode-bench.ts); inside the bench bundle this module is not the entry.
if (require.main === module && /decode-bench\.[jt]s$/.test(process.argv[1] ?? '')) {
  for (const r of runDecodeBench()) {
    console.log(`${r.format.padEnd(6)} ${r.inputMB.toFixed(0)} MB stored in ${r.seconds.toFixed(2)} s: ${r.mbPerSecond.toFixed(0)} MB/s stored, ${r.mValuesPerSecond.toFixed(0)} M values/s`);
  }
}
