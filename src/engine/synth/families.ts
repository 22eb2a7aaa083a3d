/**
 * How each family names and stores its tensors, for the generator (the reader's patterns.ts is the
 * other side; the round-trip tests hold the two together). Shapes per fact sheet section 4.
 */
import type { Projection } from '../layouts/types';
import type { SynthDtype } from './encode-matrix';

export const SYNTH_FAMILIES = [
  'olmoe', 'mixtral', 'minimax', 'phimoe', 'qwen2_moe', 'qwen3_moe', 'deepseek_v2', 'deepseek_v3', 'kimi_k2', 'glm4_moe',
  'ernie4_5_moe', 'granitemoe', 'jetmoe', 'dbrx', 'jamba', 'llama4', 'gpt_oss', 'fused',
] as const;
export type SynthFamily = (typeof SYNTH_FAMILIES)[number];

/** How expert weights are stored. */
export type Storage =
  | { readonly kind: 'per-expert'; readonly block: string; readonly names: Readonly<Record<Projection, string>> }
  | { readonly kind: 'gpt-oss' } // MXFP4 blocks (out-major, interleaved) or bf16 [E,H,2I] interleaved columns
  | { readonly kind: 'fused'; readonly block: string; readonly inputMajor: boolean } // halves
  | { readonly kind: 'input-linear'; readonly block: string }
  | { readonly kind: 'dbrx' };

export interface SynthShape {
  readonly numLayers: number;
  readonly numExperts: number;
  readonly hidden: number;
  readonly intermediate: number;
  readonly dtype: SynthDtype;
}

export interface FamilyDef {
  readonly modelType: string;
  readonly layerPrefix: string;
  readonly storage: Storage;
  readonly router: string; // inside the layer
  readonly shared?: string; // shared expert block inside the layer
  readonly denseMlp?: string; // dense FFN block of non-MoE layers
  readonly config: (s: SynthShape) => Record<string, unknown>;
  readonly isMoeLayer: (l: number, s: SynthShape) => boolean;
  /** Extra layers past num_hidden_layers holding experts (DeepSeek-V3's MTP module), which readers must skip. */
  readonly extraMoeLayers?: number;
}

const SWIGLU = { gate: 'gate_proj', up: 'up_proj', down: 'down_proj' } as const;
const MIXTRAL = { gate: 'w1', up: 'w3', down: 'w2' } as const;
const all = (): boolean => true;

const base = (s: SynthShape, modelType: string, expertKey: string): Record<string, unknown> => ({
  model_type: modelType,
  hidden_size: s.hidden,
  intermediate_size: s.intermediate,
  num_hidden_layers: s.numLayers,
  hidden_act: 'silu',
  vocab_size: 64,
  [expertKey]: s.numExperts,
});

const mixtralLike = (modelType: string): FamilyDef => ({
  modelType,
  layerPrefix: 'model.layers.',
  storage: { kind: 'per-expert', block: 'block_sparse_moe.experts', names: MIXTRAL },
  router: 'block_sparse_moe.gate.weight',
  config: (s) => base(s, modelType, 'num_local_experts'),
  isMoeLayer: all,
});

const deepseekLike = (modelType: string, mtp: boolean): FamilyDef => ({
  modelType,
  layerPrefix: 'model.layers.',
  storage: { kind: 'per-expert', block: 'mlp.experts', names: SWIGLU },
  router: 'mlp.gate.weight',
  shared: 'mlp.shared_experts',
  denseMlp: 'mlp',
  config: (s) => ({
    ...base(s, modelType, 'n_routed_experts'),
    moe_intermediate_size: s.intermediate,
    first_k_dense_replace: s.numLayers > 1 ? 1 : 0,
    moe_layer_freq: 1,
    n_shared_experts: 1,
    ...(mtp ? { num_nextn_predict_layers: 1 } : {}),
    ...(s.dtype === 'FP8' ? { quantization_config: { quant_method: 'fp8', fmt: 'e4m3', activation_scheme: 'dynamic', weight_block_size: [128, 128] } } : {}),
  }),
  isMoeLayer: (l, s) => l >= (s.numLayers > 1 ? 1 : 0),
  ...(mtp ? { extraMoeLayers: 1 } : {}),
});

export const FAMILIES: Readonly<Record<SynthFamily, FamilyDef>> = {
  olmoe: { modelType: 'olmoe', layerPrefix: 'model.layers.', storage: { kind: 'per-expert', block: 'mlp.experts', names: SWIGLU }, router: 'mlp.gate.weight', config: (s) => base(s, 'olmoe', 'num_experts'), isMoeLayer: all },
  mixtral: mixtralLike('mixtral'),
  minimax: mixtralLike('minimax'),
  phimoe: mixtralLike('phimoe'),
  qwen2_moe: {
    modelType: 'qwen2_moe',
    layerPrefix: 'model.layers.',
    storage: { kind: 'per-expert', block: 'mlp.experts', names: SWIGLU },
    router: 'mlp.gate.weight',
    shared: 'mlp.shared_expert',
    config: (s) => ({ ...base(s, 'qwen2_moe', 'num_experts'), moe_intermediate_size: s.intermediate, decoder_sparse_step: 1, mlp_only_layers: [], shared_expert_intermediate_size: s.intermediate }),
    isMoeLayer: all,
  },
  qwen3_moe: {
    modelType: 'qwen3_moe',
    layerPrefix: 'model.layers.',
    storage: { kind: 'per-expert', block: 'mlp.experts', names: SWIGLU },
    router: 'mlp.gate.weight',
    config: (s) => ({ ...base(s, 'qwen3_moe', 'num_experts'), moe_intermediate_size: s.intermediate, decoder_sparse_step: 1, mlp_only_layers: [] }),
    isMoeLayer: all,
  },
  deepseek_v2: deepseekLike('deepseek_v2', false),
  deepseek_v3: deepseekLike('deepseek_v3', true),
  kimi_k2: deepseekLike('kimi_k2', false),
  glm4_moe: deepseekLike('glm4_moe', false),
  ernie4_5_moe: {
    modelType: 'ernie4_5_moe',
    layerPrefix: 'model.layers.',
    storage: { kind: 'per-expert', block: 'mlp.experts', names: SWIGLU },
    router: 'mlp.gate.weight',
    config: (s) => ({ ...base(s, 'ernie4_5_moe', 'moe_num_experts'), moe_intermediate_size: s.intermediate, moe_layer_interval: 1, moe_layer_start_index: 0 }),
    isMoeLayer: all,
  },
  granitemoe: { modelType: 'granitemoe', layerPrefix: 'model.layers.', storage: { kind: 'input-linear', block: 'block_sparse_moe' }, router: 'block_sparse_moe.router.layer.weight', config: (s) => base(s, 'granitemoe', 'num_local_experts'), isMoeLayer: all },
  jetmoe: { modelType: 'jetmoe', layerPrefix: 'model.layers.', storage: { kind: 'input-linear', block: 'mlp' }, router: 'mlp.router.layer.weight', config: (s) => base(s, 'jetmoe', 'num_local_experts'), isMoeLayer: all },
  dbrx: {
    modelType: 'dbrx',
    layerPrefix: 'transformer.blocks.',
    storage: { kind: 'dbrx' },
    router: 'ffn.router.layer.weight',
    config: (s) => ({ model_type: 'dbrx', d_model: s.hidden, n_layers: s.numLayers, vocab_size: 64, ffn_config: { moe_num_experts: s.numExperts, ffn_hidden_size: s.intermediate, ffn_act_fn: { name: 'silu' } } }),
    isMoeLayer: all,
  },
  jamba: {
    modelType: 'jamba',
    layerPrefix: 'model.layers.',
    storage: { kind: 'per-expert', block: 'feed_forward.experts', names: SWIGLU },
    router: 'feed_forward.router.weight',
    denseMlp: 'feed_forward',
    config: (s) => ({ ...base(s, 'jamba', 'num_experts'), expert_layer_period: s.numLayers > 1 ? 2 : 1, expert_layer_offset: s.numLayers > 1 ? 1 : 0 }),
    isMoeLayer: (l, s) => (s.numLayers > 1 ? l % 2 === 1 : true),
  },
  llama4: {
    modelType: 'llama4',
    layerPrefix: 'language_model.model.layers.',
    storage: { kind: 'fused', block: 'feed_forward.experts', inputMajor: true },
    router: 'feed_forward.router.weight',
    shared: 'feed_forward.shared_expert',
    config: (s) => ({ model_type: 'llama4', text_config: { ...base(s, 'llama4_text', 'num_local_experts'), intermediate_size: s.intermediate, interleave_moe_layer_step: 1 } }),
    isMoeLayer: all,
  },
  gpt_oss: {
    modelType: 'gpt_oss',
    layerPrefix: 'model.layers.',
    storage: { kind: 'gpt-oss' },
    router: 'mlp.router.weight',
    config: (s) => ({
      ...base(s, 'gpt_oss', 'num_local_experts'),
      swiglu_limit: 7.0,
      ...(s.dtype === 'MXFP4' ? { quantization_config: { quant_method: 'mxfp4', modules_to_not_convert: ['model.layers.*.self_attn', 'model.layers.*.mlp.router', 'model.embed_tokens', 'lm_head'] } } : {}),
    }),
    isMoeLayer: all,
  },
  fused: {
    modelType: 'qwen3_5_moe',
    layerPrefix: 'model.layers.',
    storage: { kind: 'fused', block: 'mlp.experts', inputMajor: false },
    router: 'mlp.gate.weight',
    config: (s) => ({ ...base(s, 'qwen3_5_moe', 'num_experts'), moe_intermediate_size: s.intermediate }),
    isMoeLayer: all,
  },
};
