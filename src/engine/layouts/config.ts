/**
 * What config.json says about experts. Families name the same thing differently (fact sheet
 * section 4); every rule here names the family it comes from.
 */
import type { ExpertActivation } from './types';

export type Config = Readonly<Record<string, unknown>>;

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/** Configs of multimodal models nest the language model (llama4: text_config). */
export function textConfig(config: Config): Config {
  const t = config['text_config'];
  // The top-level model_type names the family (llama4's text_config says llama4_text).
  return typeof t === 'object' && t !== null ? { ...config, ...(t as Config), model_type: config['model_type'] } : config;
}

/** Routed expert count: num_local_experts (mixtral, gpt_oss, granite), num_experts (olmoe, qwen), n_routed_experts (deepseek, glm), moe_num_experts (ernie), ffn_config.moe_num_experts (dbrx). */
export function configExpertCount(c: Config): number | null {
  for (const k of ['num_local_experts', 'num_experts', 'n_routed_experts', 'moe_num_experts']) {
    const v = num(c[k]);
    if (v !== null && v > 1) return v;
  }
  const ffn = c['ffn_config'];
  if (typeof ffn === 'object' && ffn !== null) return num((ffn as Config)['moe_num_experts']);
  return null;
}

export function configNumLayers(c: Config): number | null {
  return num(c['num_hidden_layers']) ?? num(c['n_layers']) ?? num(c['num_layers']);
}

export function configHidden(c: Config): number | null {
  return num(c['hidden_size']) ?? num(c['d_model']);
}

/**
 * The layers a family's config declares MoE, or null when the family has no such rule (every layer
 * with expert tensors is MoE). Used to cross-check the tensors, never instead of them.
 */
export function configMoeLayers(family: string, c: Config, numLayers: number): Set<number> | null {
  const all = Array.from({ length: numLayers }, (_, i) => i);
  const pick = (f: (l: number) => boolean): Set<number> => new Set(all.filter(f));
  switch (family) {
    case 'qwen2_moe':
    case 'qwen3_moe': {
      const step = num(c['decoder_sparse_step']) ?? 1;
      const dense = new Set(Array.isArray(c['mlp_only_layers']) ? (c['mlp_only_layers'] as number[]) : []);
      return pick((l) => !dense.has(l) && (l + 1) % step === 0);
    }
    case 'deepseek_v2':
    case 'deepseek_v3':
    case 'kimi_k2':
    case 'glm4_moe': {
      const k = num(c['first_k_dense_replace']) ?? 0;
      const freq = num(c['moe_layer_freq']) ?? 1;
      return pick((l) => l >= k && l % freq === 0);
    }
    case 'ernie4_5_moe': {
      const every = num(c['moe_layer_interval']) ?? 1;
      const start = num(c['moe_layer_start_index']) ?? 0;
      const end = num(c['moe_layer_end_index']) ?? numLayers - 1;
      return pick((l) => (l + 1) % every === 0 && l >= start && l <= (end < 0 ? numLayers - 1 : end));
    }
    case 'jamba': {
      const period = num(c['expert_layer_period']) ?? 1;
      const offset = num(c['expert_layer_offset']) ?? 0;
      return pick((l) => l % period === offset);
    }
    case 'llama4': {
      if (Array.isArray(c['moe_layers'])) return new Set(c['moe_layers'] as number[]);
      const step = num(c['interleave_moe_layer_step']) ?? 1;
      return pick((l) => (l + 1) % step === 0);
    }
    default:
      return null;
  }
}

/** The expert nonlinearity, for overlay verify. gpt_oss: transformers GptOssExperts (alpha 1.702, clamp at swiglu_limit). */
export function expertActivation(family: string, c: Config): ExpertActivation {
  if (family === 'gpt_oss') return { kind: 'gpt-oss', alpha: 1.702, limit: num(c['swiglu_limit']) ?? 7 };
  const act = String(c['hidden_act'] ?? c['activation_function'] ?? (family === 'dbrx' ? 'silu' : ''));
  if (act === 'silu' || act === 'swish') return { kind: 'swiglu' };
  if (act.startsWith('gelu')) return { kind: 'gelu-glu' };
  return { kind: 'unknown', note: act ? `hidden_act ${act}` : 'no hidden_act in config' };
}
