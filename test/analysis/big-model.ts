/**
 * A minimal streaming writer of big OLMoE-layout BF16 checkpoints for the memory tests (the synth
 * generator's Gaussian experts take 30 s at 200 MB): values from a fixed xorshift stream of finite
 * BF16 numbers (|x| in [2^-8, 2)), a different window of it per expert and projection.
 */
import { closeSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export function writeBf16Model(dir: string, experts: number, hidden: number, intermediate: number): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ model_type: 'olmoe', hidden_size: hidden, intermediate_size: intermediate, num_hidden_layers: 1, num_experts: experts, hidden_act: 'silu' }));
  const bytes = hidden * intermediate * 2;
  const shapes: [string, number[]][] = [['gate_proj', [intermediate, hidden]], ['up_proj', [intermediate, hidden]], ['down_proj', [hidden, intermediate]]];
  const header: Record<string, unknown> = {};
  let off = 0;
  for (let j = 0; j < experts; j++) {
    for (const [n, shape] of shapes) {
      header[`model.layers.0.mlp.experts.${j}.${n}.weight`] = { dtype: 'BF16', shape, data_offsets: [off, off + bytes] };
      off += bytes;
    }
  }
  let text = JSON.stringify(header);
  text += ' '.repeat((8 - (text.length % 8)) % 8);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(text.length));
  const stream = new Uint16Array(hidden * intermediate + 3 * experts * 131);
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
