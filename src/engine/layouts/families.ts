/**
 * The family registry: what config.json's model_type adds to the tensor names. Tensor names decide
 * WHERE the experts are (patterns/); a family rule decides WHICH layers its config declares MoE (to
 * cross-check the tensors), the expert activation, and how a fused gate_up splits. Each rule names
 * the transformers source it follows (models/<family>/modeling_<family>.py, configuration_*.py).
 */
import type { ExpertActivation } from './types';
import { configField, type Config, type ConfigField } from './config';
import type { GateUpSplit } from './patterns/fused-sources';

export interface FamilyRule {
  /**
   * The MoE layers config.json declares for a layer group (null: the single stack or the text
   * experts; "encoder" / "decoder"; "vision"), or null when every layer holding expert tensors is MoE.
   */
  readonly moeLayers: ((c: Config, numLayers: number, group: string | null) => Set<number>) | null;
  /** The config fields the layer rule reads, quoted with their values when the tensors disagree. */
  readonly ruleFields?: readonly string[];
  /** The layer stacks of an encoder-decoder family: each is a named group and checked even where it holds no experts. */
  readonly stackGroups?: readonly ('encoder' | 'decoder')[];
  /** Layers in a group's stack and the field stating it, where not num_hidden_layers (encoder-decoder models count each stack). */
  readonly numLayers?: (c: Config, group: string | null) => ConfigField | null;
  readonly activation: (c: Config) => ExpertActivation;
  /** How a fused `experts.gate_up_proj` divides into gate and up (shapes cannot tell). */
  readonly fusedGateUpSplit: GateUpSplit;
  /** The experts have no gate projection (up -> act -> down): a missing gate is the family's design, not damage. */
  readonly gateless?: boolean;
  /**
   * Per-expert tensors numbered across groups, in order (ernie4_5_vl_moe: text experts 0..E-1, then
   * vision experts E..2E-1), or null when all experts of a layer form one group.
   */
  readonly expertGroups?: (c: Config) => readonly ExpertGroup[] | null;
}

export interface ExpertGroup {
  readonly group: string | null;
  readonly count: number;
  /** The config field that states the count, for errors. */
  readonly field: string;
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

/** Experts without a gate: down(act(up x)), act named by the first of `keys` that config.json has. */
function ungatedAct(keys: readonly string[]): (c: Config) => ExpertActivation {
  return (c) => {
    const key = keys.find((k) => typeof c[k] === 'string');
    const act = key ? String(c[key]) : '';
    if (act === 'relu') return { kind: 'relu' };
    if (act === 'relu2') return { kind: 'relu2' };
    return { kind: 'unknown', note: act ? `${key} ${act}` : `none of ${keys.join(', ')} in config.json` };
  };
}

const numList = (v: unknown): number[] | null => (Array.isArray(v) && v.every((x) => typeof x === 'number') ? (v as number[]) : null);
/** A per-layer list of layer kinds (mlp_layer_types, layers_block_type), or null. */
const kindList = (c: Config, key: string): string[] | null => (Array.isArray(c[key]) ? (c[key] as unknown[]).map(String) : null);
/** Layers whose kind in the config's per-layer list is `kind`; null when the config has no such list. */
const layersOfKind = (c: Config, key: string, kind: string, n: number): Set<number> | null => {
  const types = kindList(c, key);
  return types ? layersWhere(n, (l) => types[l] === kind) : null;
};

/** No layer rule: every layer holding expert tensors is MoE (families not in the registry). */
const EVERY_LAYER: FamilyRule = { moeLayers: null, activation: fromHiddenAct, fusedGateUpSplit: 'halves' };

/**
 * Every decoder layer is MoE (mixtral, minimax, phimoe, olmoe, granitemoe, jetmoe, dbrx, gpt_oss, aria:
 * their decoder layers build the sparse block unconditionally), so a layer without experts is a contradiction.
 */
const ALL_LAYERS: FamilyRule = { ...EVERY_LAYER, moeLayers: (_c, n) => layersWhere(n, () => true), ruleFields: ['num_hidden_layers', 'n_layers'] };

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
  ruleFields: ['decoder_sparse_step', 'mlp_only_layers', 'num_hidden_layers'],
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
  ruleFields: ['first_k_dense_replace', 'moe_layer_freq', 'num_hidden_layers'],
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
  ruleFields: ['moe_layer_interval', 'moe_layer_start_index', 'moe_layer_end_index', 'num_hidden_layers'],
};

/** jamba (JambaConfig.layers_num_experts): MoE iff layer % expert_layer_period == expert_layer_offset. */
const JAMBA: FamilyRule = {
  ...EVERY_LAYER,
  moeLayers: (c, n) => {
    const period = num(c['expert_layer_period'], 1);
    const offset = num(c['expert_layer_offset'], 0);
    return layersWhere(n, (l) => l % period === offset);
  },
  ruleFields: ['expert_layer_period', 'expert_layer_offset', 'num_hidden_layers'],
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
  ruleFields: ['moe_layers', 'interleave_moe_layer_step', 'num_hidden_layers'],
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
  ...ALL_LAYERS,
  activation: (c) => ({ kind: 'gpt-oss', alpha: 1.702, limit: num(c['swiglu_limit'], 7) }),
  fusedGateUpSplit: 'interleaved',
};

/**
 * nemotron_h (NemotronHConfig): hybrid_override_pattern, one character per layer, "E" = MoE (M = Mamba,
 * * = attention, - = MLP); newer configs spell it layers_block_type ["mamba", "moe", ...].
 * NemotronHMoE experts are up_proj -> relu2 (mlp_hidden_act) -> down_proj, no gate; shared_experts apart.
 */
const NEMOTRON_H: FamilyRule = {
  moeLayers: (c, n) => {
    const pattern = typeof c['hybrid_override_pattern'] === 'string' ? [...(c['hybrid_override_pattern'] as string)] : null;
    return layersOfKind(c, 'layers_block_type', 'moe', n) ?? layersWhere(n, (l) => (pattern ? pattern[l] === 'E' : true));
  },
  ruleFields: ['hybrid_override_pattern', 'layers_block_type', 'num_hidden_layers'],
  activation: ungatedAct(['mlp_hidden_act', 'hidden_act']),
  fusedGateUpSplit: 'halves',
  gateless: true,
};

/**
 * switch_transformers (SwitchTransformersStack): encoder (num_layers) and decoder (num_decoder_layers)
 * stacks; block i is sparse iff sparse_step > 0 and (i % sparse_step == 1 or sparse_step == 1), with
 * encoder_sparse_step / decoder_sparse_step. Experts (SwitchTransformersDenseActDense): wi [d_ff, d_model]
 * -> dense_act_fn (relu) -> wo [d_model, d_ff], no gate, no bias.
 */
const SWITCH: FamilyRule = {
  moeLayers: (c, n, group) => {
    const step = num(c[group === 'decoder' ? 'decoder_sparse_step' : 'encoder_sparse_step'], 1);
    return layersWhere(n, (l) => step > 0 && (l % step === 1 || step === 1));
  },
  ruleFields: ['num_layers', 'num_decoder_layers', 'encoder_sparse_step', 'decoder_sparse_step'],
  stackGroups: ['encoder', 'decoder'],
  numLayers: (c, group) => (group === 'decoder' ? (configField(c, 'num_decoder_layers') ?? configField(c, 'num_layers')) : configField(c, 'num_layers')),
  activation: ungatedAct(['dense_act_fn', 'feed_forward_proj']),
  fusedGateUpSplit: 'halves',
  gateless: true,
};

/**
 * nllb_moe (NllbMoeEncoder / NllbMoeDecoder): encoder_layers / decoder_layers; layer i is sparse iff
 * sparse_step > 0 and (i + 1) % sparse_step == 0 (encoder_sparse_step / decoder_sparse_step). Experts
 * (NllbMoeDenseActDense): fc1 [ffn_dim, d_model] + bias -> activation_function (relu) -> fc2 + bias.
 */
const NLLB_MOE: FamilyRule = {
  moeLayers: (c, n, group) => {
    const step = num(c[group === 'decoder' ? 'decoder_sparse_step' : 'encoder_sparse_step'], 4);
    return layersWhere(n, (l) => step > 0 && (l + 1) % step === 0);
  },
  ruleFields: ['encoder_layers', 'decoder_layers', 'encoder_sparse_step', 'decoder_sparse_step'],
  stackGroups: ['encoder', 'decoder'],
  numLayers: (c, group) => configField(c, group === 'decoder' ? 'decoder_layers' : 'encoder_layers'),
  activation: ungatedAct(['activation_function']),
  fusedGateUpSplit: 'halves',
  gateless: true,
};

/**
 * step3p7 / step3p5 (Step3p7TextConfig): MoE layers from mlp_layer_types ("sparse"), else the original
 * checkpoints' moe_layers_enum (comma-separated string or list), else every layer from 3 on. The
 * original checkpoints store moe.{gate,up,down}_proj.weight as stacked 3-D tensors; the shared expert
 * (share_expert.*) is not routed. num_nextn_predict_layers MTP layers follow the decoder stack.
 */
const STEP3P7: FamilyRule = {
  ...EVERY_LAYER,
  moeLayers: (c, n) => {
    const typed = layersOfKind(c, 'mlp_layer_types', 'sparse', n);
    if (typed) return typed;
    const e = c['moe_layers_enum'];
    const listed = typeof e === 'string' ? e.split(',').filter((x) => x.trim() !== '').map(Number) : numList(e);
    if (listed) return new Set(listed.filter((l) => l < n));
    return layersWhere(n, (l) => l >= 3);
  },
  ruleFields: ['mlp_layer_types', 'moe_layers_enum', 'num_hidden_layers'],
};

/**
 * ernie4_5_vl_moe (original ERNIE-4.5-VL checkpoints; transformers convert_ernie4_5_vl_moe_to_hf.py):
 * mlp.experts.{0..2E-1}: text experts first, then vision experts, moe_num_experts [E_text, E_vision]
 * (one number E in converted configs: the same for both), moe_intermediate_size [I_text, I_vision].
 * MoE iff (layer + 1) % moe_layer_interval == 0 and moe_layer_start_index <= layer <=
 * moe_layer_end_index, each index a list per modality (or one number); mlp_layer_types where given.
 */
const ERNIE_VL: FamilyRule = {
  ...EVERY_LAYER,
  moeLayers: (c, n, group) => {
    const typed = layersOfKind(c, 'mlp_layer_types', 'sparse', n);
    if (typed) return typed;
    const k = group === 'vision' ? 1 : 0;
    const pick = (key: string, dflt: number): number => {
      const v = c[key];
      return Array.isArray(v) ? num(v[k], dflt) : num(v, dflt);
    };
    const every = num(c['moe_layer_interval'], 1);
    const start = pick('moe_layer_start_index', 0);
    const endRaw = pick('moe_layer_end_index', n - 1);
    const end = endRaw < 0 ? n - 1 : endRaw;
    return layersWhere(n, (l) => (l + 1) % every === 0 && l >= start && l <= end);
  },
  ruleFields: ['mlp_layer_types', 'moe_layer_interval', 'moe_layer_start_index', 'moe_layer_end_index', 'num_hidden_layers'],
  expertGroups: (c) => {
    const v = c['moe_num_experts'];
    const list = numList(v);
    if (list && list.length === 2) return [{ group: null, count: list[0]!, field: 'moe_num_experts[0]' }, { group: 'vision', count: list[1]!, field: 'moe_num_experts[1]' }];
    if (typeof v === 'number') return [{ group: null, count: v, field: 'moe_num_experts' }, { group: 'vision', count: v, field: 'moe_num_experts' }];
    return null;
  },
};

export const FAMILY_RULES: Readonly<Record<string, FamilyRule>> = {
  mixtral: ALL_LAYERS,
  minimax: ALL_LAYERS,
  phimoe: ALL_LAYERS,
  olmoe: ALL_LAYERS,
  granitemoe: ALL_LAYERS,
  granitemoeshared: ALL_LAYERS,
  jetmoe: ALL_LAYERS,
  dbrx: ALL_LAYERS,
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
  nemotron_h: NEMOTRON_H,
  switch_transformers: SWITCH,
  nllb_moe: NLLB_MOE,
  // aria (AriaTextDecoderLayer): every layer is AriaTextMoELayer; fc1/fc2 layout in patterns/grouped-gemm.ts.
  aria: ALL_LAYERS,
  step3p7: STEP3P7,
  step3p5: STEP3P7,
  ernie4_5_vl_moe: ERNIE_VL,
};

/** The rule of a known model_type; other (or unknown) families get no layer rule and the defaults. */
export function ruleFor(family: string): FamilyRule {
  return FAMILY_RULES[family] ?? EVERY_LAYER;
}

export function isKnownFamily(family: string): boolean {
  return family in FAMILY_RULES;
}
