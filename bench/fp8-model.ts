/**
 * The DeepSeek-V3- and Kimi-K2-shaped bench layers: one MoE layer of E experts, gate/up [I, H] and
 * down [H, I], F8_E4M3 with F32 128x128 block scales (weight_scale_inv), as those releases store
 * them. Written expert by expert through the project's streaming safetensors writer. The synth
 * generator would take ~45 s per expert at this size (Gaussian draws and a searched E4M3 rounding
 * per value), hours for 256 experts; here each value is one draw from a table of 65536 E4M3 codes
 * of Gaussian samples (xorshift index, a different stream per expert and projection) and each tile
 * gets its own scale: independent full-rank experts, a native layer, at disk speed.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { encodeE4M3 } from '../src/engine/synth/encoders';
import { writeSafetensors, type TensorPlan } from '../src/engine/synth/safetensors-writer';

export interface Fp8LayerSpec {
  readonly modelType: 'deepseek_v3' | 'kimi_k2';
  readonly numExperts: number;
  readonly hidden: number;
  readonly intermediate: number;
}

const BLOCK = 128;
/** Codes scale N(0, 1) by 100: |x| up to ~450 fits E4M3's 448 with the rare tail saturating. */
const CODE_SCALE = 100;

function codeTable(): Uint8Array {
  const t = new Uint8Array(65536);
  let s = 0x2545f491;
  const uniform = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return ((s >>> 0) + 0.5) / 2 ** 32;
  };
  for (let i = 0; i < t.length; i++) t[i] = encodeE4M3(Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform()) * CODE_SCALE);
  return t;
}

function codesPlan(name: string, rows: number, cols: number, seed: number, table: Uint8Array): TensorPlan {
  return {
    name,
    dtype: 'F8_E4M3',
    shape: [rows, cols],
    async produce(sink) {
      let s = (seed * 2654435761) >>> 0 || 1;
      const rowsPerChunk = Math.max(1, Math.floor((4 << 20) / cols));
      for (let r0 = 0; r0 < rows; r0 += rowsPerChunk) {
        const chunk = new Uint8Array(Math.min(rowsPerChunk, rows - r0) * cols);
        for (let i = 0; i < chunk.length; i++) {
          s ^= s << 13;
          s ^= s >>> 17;
          s ^= s << 5;
          chunk[i] = table[s & 0xffff]!;
        }
        await sink(chunk);
      }
    },
  };
}

/** One F32 scale per tile: std 1/sqrt(in) spread over the codes' scale, varied by a few percent per tile. */
function scalesPlan(name: string, rows: number, cols: number, seed: number): TensorPlan {
  const gr = Math.ceil(rows / BLOCK);
  const gc = Math.ceil(cols / BLOCK);
  const scales = new Float32Array(gr * gc);
  for (let t = 0; t < scales.length; t++) scales[t] = (1 + 0.05 * Math.sin(seed + t)) / (Math.sqrt(cols) * CODE_SCALE);
  return { name, dtype: 'F32', shape: [gr, gc], produce: (sink) => sink(new Uint8Array(scales.buffer)) };
}

export async function writeFp8Layer(dir: string, spec: Fp8LayerSpec): Promise<void> {
  await mkdir(dir, { recursive: true });
  const { hidden: H, intermediate: I, numExperts: E } = spec;
  await writeFile(
    join(dir, 'config.json'),
    JSON.stringify({
      model_type: spec.modelType,
      hidden_size: H,
      intermediate_size: I,
      moe_intermediate_size: I,
      num_hidden_layers: 1,
      n_routed_experts: E,
      first_k_dense_replace: 0,
      moe_layer_freq: 1,
      hidden_act: 'silu',
      quantization_config: { quant_method: 'fp8', fmt: 'e4m3', activation_scheme: 'dynamic', weight_block_size: [BLOCK, BLOCK] },
    }, null, 2),
  );
  const table = codeTable();
  const plans: TensorPlan[] = [];
  const projections: [string, number, number][] = [['gate_proj', I, H], ['up_proj', I, H], ['down_proj', H, I]];
  for (let j = 0; j < E; j++) {
    for (const [k, [name, rows, cols]] of projections.entries()) {
      const base = `model.layers.0.mlp.experts.${j}.${name}`;
      const seed = j * 3 + k + 1;
      plans.push(codesPlan(`${base}.weight`, rows, cols, seed, table));
      plans.push(scalesPlan(`${base}.weight_scale_inv`, rows, cols, seed));
    }
  }
  await writeSafetensors(join(dir, 'model.safetensors'), plans, { format: 'pt', generator: 'moe-inspector bench' });
}
