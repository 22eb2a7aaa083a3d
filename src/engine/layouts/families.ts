/**
 * The family registry: what config.json's model_type adds to the tensor names. Tensor names decide
 * WHERE the experts are (patterns/); a family rule decides WHICH layers its config declares MoE (to
 * cross-check the tensors), the expert activation, and how a fused gate_up splits. Each rule names
 * the transformers source it follows (models/<family>/modeling_<family>.py, configuration_*.py).
 */
import type { ExpertActivation } from './types';
import type { Config } from './config';
import type { GateUpSplit } from './patterns/fused-sources';

export interface FamilyRule {
  /** The MoE layers config.json declares, or null when every layer holding expert tensors is MoE. */
  readonly moeLayers: ((c: Config, numLayers: number) => Set<number>) | null;
  readonly activation: (c: Config) => ExpertActivation;
  /** How a fused `experts.gate_up_proj` divides into gate and up (shapes cannot tell). */
  readonly fusedGateUpSplit: GateUpSplit;
}

const num = (v: unknown, fallback: number): number => (typeof v === 'number' && Number.isFinite(v) ? v : fallback);
const layersWhere = (n: number, f: (l: number) => boolean): Set<number> => new Set(Array.from({ length: n }, (_, l) => l).filter(f));

/** silu -> SwiGLU down(silu(gate x) * up x); gelu* -> the GeGLU analogue. */
function fromHiddenAct(c: Config): ExpertActivation {
  const ffn = c['ffn_config'] as { ffn_act_fn?: { name?: unknown } } | undefined; // dbrx
  const act = String(c['hidden_act'] ?? c['activation_function'] ?? ffn?.ffn_act_fn?.name ?? '');
  if (act === 'silu' || act === 'swish') return { kind: 'swiglu' };
  if (act.startsWith('gelu')) return { kind: 'gelu-glu' };
  return { kind: 'unknown', note: act ? `hidden_act ${act}` : 'no hidden_act in config.json' };
}

/** Every decoder layer is MoE: mixtral, minimax, phimoe, olmoe, granitemoe, jetmoe, dbrx, gpt_oss. */
const EVERY_LAYER: FamilyRule = { moeLayers: null, activation: fromHiddenAct, fusedGateUpSplit: 'halves' };

/**
 * qwen2_moe / qwen3_moe (Qwen2MoeDecoderLayer, Qwen3MoeDecoderLayer): MoE iff
 * layer not in mlp_only_layers and (layer + 1) % decoder_sparse_step == 0.
 */
const QWEN: FamilyRule = {
  ...EVERY_LAYER,
  moeLayers: (c, n) => {
    const step = num(c['decoder_sparse_step'], 1);
    const dense = new Set(Array.isArray(c['mlp_only_layers']) ? (c['mlp_only_layers'] as number[]) : []);
    return layersWhere(n, (l) => !dense.has(l) && (l + 1) % step === 0);
  },
};

/**
 * deepseek_v2 (DeepseekV2DecoderLayer: layer >= first_k_dense_replace and layer % moe_layer_freq == 0),
 * deepseek_v3, kimi_k2 (DeepseekV3 architecture), glm4_moe (Glm4MoeDecoderLayer): layer >=
 * first_k_dense_replace. Layers at or past num_hidden_layers (V3's MTP module) are not decoder layers.
 */
const DEEPSEEK: FamilyRule = {
  ...EVERY_LAYER,
  moeLayers: (c, n) => {
    const k = num(c['first_k_dense_replace'], 0);
    const freq = num(c['moe_layer_freq'], 1);
    return layersWhere(n, (l) => l >= k && l % freq === 0);
  },
};

/**
 * ernie4_5_moe (Ernie4_5_MoeDecoderLayer): MoE iff (layer + 1) % moe_layer_interval == 0 and
 * moe_layer_start_index <= layer <= moe_layer_end_index (-1 or absent: the last layer).
 */
const ERNIE: FamilyRule = {
  ...EVERY_LAYER,
  moeLayers: (c, n) => {
    const every = num(c['moe_layer_interval'], 1);
    const start = num(c['moe_layer_start_index'], 0);
    const endRaw = num(c['moe_layer_end_index'], n - 1);
    const end = endRaw < 0 ? n - 1 : endRaw;
    return layersWhere(n, (l) => (l + 1) % every === 0 && l >= start && l <= end);
  },
};

/** jamba (JambaConfig.layers_num_experts): MoE iff layer % expert_layer_period == expert_layer_offset. */
const JAMBA: FamilyRule = {
  ...EVERY_LAYER,
  moeLayers: (c, n) => {
    const period = num(c['expert_layer_period'], 1);
    const offset = num(c['expert_layer_offset'], 0);
    return layersWhere(n, (l) => l % period === offset);
  },
};

/**
 * llama4 (Llama4TextConfig): moe_layers, default every interleave_moe_layer_step-th layer,
 * range(step - 1, n, step). Llama4TextExperts' fused gate_up_proj [E, H, 2I]: gate = first I columns.
 */
const LLAMA4: FamilyRule = {
  ...EVERY_LAYER,
  moeLayers: (c, n) => {
    if (Array.isArray(c['moe_layers'])) return new Set(c['moe_layers'] as number[]);
    const step = num(c['interleave_moe_layer_step'], 1);
    return layersWhere(n, (l) => (l + 1) % step === 0);
  },
};

/**
 * gpt_oss (GptOssExperts): every layer MoE; gate_up interleaved (gate = [..., ::2], up = [..., 1::2]).
 * The expert function, with biases b_gu, b_d added to the projections' outputs:
 *   gate = min(gate, limit)                     (clamp above only)
 *   up   = clamp(up, -limit, limit)
 *   glu  = gate * sigmoid(alpha * gate)          alpha = 1.702
 *   out  = down((up + 1) * glu)                  limit = swiglu_limit (7.0)
 */
const GPT_OSS: FamilyRule = {
  moeLayers: null,
  activation: (c) => ({ kind: 'gpt-oss', alpha: 1.702, limit: num(c['swiglu_limit'], 7) }),
  fusedGateUpSplit: 'interleaved',
};

export const FAMILY_RULES: Readonly<Record<string, FamilyRule>> = {
  mixtral: EVERY_LAYER,
  minimax: EVERY_LAYER,
  phimoe: EVERY_LAYER,
  olmoe: EVERY_LAYER,
  granitemoe: EVERY_LAYER,
  granitemoeshared: EVERY_LAYER,
  jetmoe: EVERY_LAYER,
  dbrx: EVERY_LAYER,
  qwen2_moe: QWEN,
  qwen3_moe: QWEN,
  deepseek_v2: DEEPSEEK,
  deepseek_v3: DEEPSEEK,
  kimi_k2: DEEPSEEK,
  glm4_moe: DEEPSEEK,
  ernie4_5_moe: ERNIE,
  jamba: JAMBA,
  llama4: LLAMA4,
  gpt_oss: GPT_OSS,
};

/** The rule of a known model_type; other (or unknown) families get no layer rule and the defaults. */
export function ruleFor(family: string): FamilyRule {
  return FAMILY_RULES[family] ?? EVERY_LAYER;
}

export function isKnownFamily(family: string): boolean {
  return family in FAMILY_RULES;
}
