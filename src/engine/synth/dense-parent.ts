/**
 * The dense parent of a recipe-built MoE, written beside it: a llama-layout dense model of the same
 * hidden size and layer count whose layer L FFN (model.layers.L.mlp.{gate,up,down}_proj) is the
 * parent the recipe built MoE layer L from. Layers without a recipe get an unrelated random FFN.
 * Stored as F32/F16 when the MoE is, BF16 otherwise (dense parents of MXFP4/FP8 MoEs are BF16).
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { encodePlain } from './encode-matrix';
import { AUX_DTYPE, onesPlan, randomPlan, writeAtomic } from './plans';
import { writeSafetensors, type TensorPlan } from './safetensors-writer';
import type { SyntheticModel } from './generate';

const NAMES = { gate: 'gate_proj', up: 'up_proj', down: 'down_proj' } as const;

export async function writeDenseParent(dir: string, m: SyntheticModel): Promise<void> {
  const { spec } = m;
  const dtype = AUX_DTYPE(spec.dtype);
  const H = spec.hidden;
  const seed = (spec.seed ?? 1234) ^ 0x5eed;
  const layers = spec.numLayers;
  let intermediate = spec.intermediate;
  // One dense stack: the parent of the first group's layers (the text experts, or the encoder of an encoder-decoder).
  const group = m.units[0]?.group ?? null;
  const moeLayers = m.moeLayersOf(group);
  const plans: TensorPlan[] = [randomPlan('model.embed_tokens.weight', [64, H], dtype, seed, 1)];
  for (let l = 0; l < layers; l++) {
    const pre = `model.layers.${l}.`;
    plans.push(onesPlan(`${pre}input_layernorm.weight`, H, dtype), onesPlan(`${pre}post_attention_layernorm.weight`, H, dtype));
    for (const p of ['q', 'k', 'v', 'o']) plans.push(randomPlan(`${pre}self_attn.${p}_proj.weight`, [H, H], dtype, seed, 1 / Math.sqrt(H)));
    const rl = moeLayers.includes(l) ? m.recipeLayer(l, group) : null;
    const P = rl?.parentIntermediate ?? spec.intermediate;
    if (rl && l === moeLayers[0]) intermediate = P;
    // Gateless experts (switch_transformers, nemotron_h, nllb_moe) get a gateless parent: up_proj + down_proj.
    for (const p of m.projections) {
      const shape = p === 'down' ? [H, P] : [P, H];
      const name = `${pre}mlp.${NAMES[p]}.weight`;
      plans.push(
        rl
          ? { name, dtype, shape, produce: async (sink) => sink(encodePlain(m.recipeLayer(l, group)!.parent(p), dtype).bytes) }
          : randomPlan(name, shape, dtype, seed, 1 / Math.sqrt(p === 'down' ? P : H)),
      );
    }
  }
  plans.push(onesPlan('model.norm.weight', H, dtype), randomPlan('lm_head.weight', [64, H], dtype, seed, 1 / Math.sqrt(H)));
  await mkdir(dir, { recursive: true });
  await writeSafetensors(join(dir, 'model.safetensors'), plans, { format: 'pt', generator: 'moe-inspector synth (dense parent)' });
  const config = {
    model_type: 'llama',
    architectures: ['LlamaForCausalLM'],
    hidden_size: H,
    intermediate_size: intermediate,
    num_hidden_layers: layers,
    num_attention_heads: 1,
    num_key_value_heads: 1,
    hidden_act: m.projections.includes('gate') ? 'silu' : 'relu',
    vocab_size: 64,
  };
  await writeAtomic(join(dir, 'config.json'), JSON.stringify(config, null, 2));
}
