/**
 * safetensors header parsing speed: a valid header of 10^6 tensor entries (about 90 MB of JSON: short
 * names, so that 10^6 entries fit the reference's 100 MB header limit), parsed and validated by the project's reader, against
 * JSON.parse of the same bytes (UTF-8 decode + parse, no validation at all). The reference Rust
 * reader cannot be installed here (no PyPI/crates access), so JSON.parse stands in for it: V8's
 * parser is native code, like serde_json. Goal: at most 1.5x the reference's time.
 * Run: npx tsx bench/header-bench.ts   (part of npm run bench)
 */
import type { ByteSource } from '../src/engine/io/byte-source';
import { readSafetensorsHeader } from '../src/engine/formats/safetensors';

export interface HeaderBenchResult {
  readonly entries: number;
  readonly headerMB: number;
  readonly readerSeconds: number;
  readonly jsonParseSeconds: number;
  readonly ratio: number;
}

/** A header as the reference writer lays it out: contiguous BF16 experts, spaces to a multiple of 8. */
function bigHeader(entries: number): { file: Uint8Array; headerBytes: number } {
  const parts: string[] = ['{"__metadata__":{"format":"pt"}'];
  const perExpert = 2 * 64 * 128; // BF16 [64, 128]
  for (let k = 0; k < entries; k++) {
    const layer = Math.floor(k / 3072);
    const expert = Math.floor(k / 3) % 1024;
    const proj = ['w1', 'w3', 'w2'][k % 3];
    parts.push(`,"h.${layer}.e.${expert}.${proj}":{"dtype":"BF16","shape":[64,128],"data_offsets":[${k * perExpert},${(k + 1) * perExpert}]}`);
  }
  parts.push('}');
  let text = parts.join('');
  text += ' '.repeat((8 - (text.length % 8)) % 8);
  const header = new TextEncoder().encode(text);
  // The data section is never read: a virtual file whose size says where it ends.
  const file = new Uint8Array(8 + header.length);
  new DataView(file.buffer).setBigUint64(0, BigInt(header.length), true);
  file.set(header, 8);
  return { file, headerBytes: header.length + entries * perExpert };
}

function source(file: Uint8Array, dataBytes: number): ByteSource {
  return {
    name: 'bench.safetensors',
    size: file.length + dataBytes,
    read: async (offset, length) => file.subarray(offset, offset + length),
    close: async () => {},
  };
}

function timeJsonParse(file: Uint8Array): number {
  const t0 = performance.now();
  const parsed = JSON.parse(new TextDecoder().decode(file.subarray(8))) as Record<string, unknown>;
  const seconds = (performance.now() - t0) / 1000;
  if (parsed['__metadata__'] === undefined) throw new Error('JSON.parse lost the metadata');
  return seconds;
}

async function timeReader(src: ByteSource): Promise<{ seconds: number; tensors: number }> {
  const t0 = performance.now();
  const h = await readSafetensorsHeader(src);
  return { seconds: (performance.now() - t0) / 1000, tensors: h.tensors.length };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function runHeaderBench(entries = 1_000_000, reps = 3): Promise<HeaderBenchResult> {
  const { file } = bigHeader(entries);
  const headerLength = file.length - 8;
  const dataBytes = entries * 2 * 64 * 128;
  const src = source(file, dataBytes);
  const reader: number[] = [];
  const json: number[] = [];
  let count = 0;
  // Alternate the two so that noise from other processes on the machine hits both alike; each
  // result is dropped before the other parser runs, so neither pays for the other's garbage.
  for (let r = 0; r < reps + 1; r++) {
    const tJson = timeJsonParse(file);
    const { seconds: tReader, tensors } = await timeReader(src);
    count = tensors;
    if (r > 0) {
      // r = 0 warms the JIT up
      json.push(tJson);
      reader.push(tReader);
    }
  }
  if (count !== entries) throw new Error(`parsed ${count} entries, expected ${entries}`);
  const readerSeconds = median(reader);
  const jsonParseSeconds = median(json);
  return { entries, headerMB: headerLength / 1e6, readerSeconds, jsonParseSeconds, ratio: readerSeconds / jsonParseSeconds };
}

if (require.main === module && /header-bench\.[jt]s$/.test(process.argv[1] ?? '')) {
  runHeaderBench().then((r) => process.stdout.write(`header ${JSON.stringify(r)}\n`));
}
