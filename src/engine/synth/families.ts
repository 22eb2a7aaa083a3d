/**
 * How each family names and stores its tensors, for the generator (the reader's patterns.ts is the
 * other side; the round-trip tests hold the two together). Shapes per fact sheet section 4.
 */
import type { Projection } from '../layouts/types';
import type { SynthDtype } from './encode-matrix';

export const SYNTH_FAMILIES = [
  'olmoe', 'mixtral', 'minimax', 'phimoe', 'qwen2_moe', 'qwen3_moe', 'deepseek_v2', 'deepseek_v3', 'kimi_k2', 'glm4_moe',
  'ernie4_5_moe', 'granitemoe', 'jetmoe', 'dbrx', 'jamba', 'llama4', 'gpt_oss', 'fused',
  'nemotron_h', 'nemotron_h_fused', 'switch_transformers', 'nllb_moe', 'aria', 'step3p7', 'ernie4_5_vl_moe', 'ernie4_5_vl_moe_fused',
] as const;
export type SynthFamily = (typeof SYNTH_FAMILIES)[number];

/** Per-projection tensor names of one expert; no `gate` for experts without one. */
export interface ExpertNames {
  readonly gate?: string;
  readonly up: string;
  readonly down: string;
}

/** How expert weights are stored. */
export type Storage =
  | {
      readonly kind: 'per-expert';
      readonly block: string;
      readonly names: ExpertNames;
      /** "expert_" for `experts.expert_{j}` (switch_transformers, nllb_moe). */
      readonly label?: string;
      /** Per-expert `.bias` siblings (nllb_moe), read apart and never folded. */
      readonly biases?: boolean;
    }
  | { readonly kind: 'gpt-oss' } // MXFP4 blocks (out-major, interleaved) or bf16 [E,H,2I] interleaved columns
  | { readonly kind: 'fused'; readonly block: string; readonly inputMajor: boolean } // halves
  | { readonly kind: 'input-linear'; readonly block: string }
  | { readonly kind: 'dbrx' }
  // block.{gate,up,down}_proj<suffix> [E, I, H] / [E, H, I]: step3p7 (".weight"), transformers' NemotronHExperts ("", no gate)
  | { readonly kind: 'stacked'; readonly block: string; readonly suffix: '.weight' | '' }
  | { readonly kind: 'grouped-gemm'; readonly block: string }; // block.fc1.weight [E, H, 2I] (gate columns first), fc2 [E, I, H] (aria)

/** One layer stack of an encoder-decoder model, with what differs between the stacks. */
export interface SynthStack {
  readonly group: 'encoder' | 'decoder';
  readonly layerPrefix: string;
  readonly block: string; // expert block inside the layer
  readonly router: string;
  readonly denseMlp: string;
}

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
  /** Projections the experts have (default gate, up, down). */
  readonly projections?: readonly Projection[];
  /** Encoder and decoder stacks (the per-expert block, router and dense FFN of each); default one stack at layerPrefix. */
  readonly stacks?: readonly SynthStack[];
  /** Vision experts numbered after the text experts in the same layer (ernie4_5_vl_moe): their intermediate size. */
  readonly visionIntermediate?: (s: SynthShape) => number;
  /** Vision experts in their own block instead (transformers' text_moe / vision_moe), with their own router. */
  readonly visionBlock?: string;
  readonly visionRouter?: string;
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

const UNGATED = ['up', 'down'] as const;
/** Every other layer MoE (odd layers) when there are several, else the one layer. */
const oddLayers = (l: number, s: SynthShape): boolean => s.numLayers === 1 || l % 2 === 1;
/** The layers from 1 on when there are several (a dense first layer), else the one layer. */
const fromOne = (l: number, s: SynthShape): boolean => s.numLayers === 1 || l >= 1;

const encDec = (encPrefix: string, decPrefix: string, block: (g: 'encoder' | 'decoder') => string, router: (g: 'encoder' | 'decoder') => string, dense: (g: 'encoder' | 'decoder') => string): SynthStack[] =>
  (['encoder', 'decoder'] as const).map((g) => ({ group: g, layerPrefix: g === 'encoder' ? encPrefix : decPrefix, block: block(g), router: router(g), denseMlp: dense(g) }));

// NemotronH: hybrid_override_pattern "M" (Mamba) / "E" (MoE); experts up -> relu2 -> down, no gate.
const NEMOTRON_H: FamilyDef = {
  modelType: 'nemotron_h',
  layerPrefix: 'backbone.layers.',
  storage: { kind: 'per-expert', block: 'mixer.experts', names: { up: 'up_proj', down: 'down_proj' } },
  router: 'mixer.gate.weight',
  shared: 'mixer.shared_experts',
  denseMlp: 'mixer',
  projections: UNGATED,
  config: (s) => ({
    model_type: 'nemotron_h', hidden_size: s.hidden, num_hidden_layers: s.numLayers, vocab_size: 64, n_routed_experts: s.numExperts,
    moe_intermediate_size: s.intermediate, moe_shared_expert_intermediate_size: s.intermediate, mlp_hidden_act: 'relu2',
    hybrid_override_pattern: Array.from({ length: s.numLayers }, (_, l) => (oddLayers(l, s) ? 'E' : 'M')).join(''),
  }),
  isMoeLayer: oddLayers,
};

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
  nemotron_h: NEMOTRON_H,
  // NemotronH as transformers' NemotronHExperts saves it: mixer.experts.up_proj [E, I, H], down_proj [E, H, I], no ".weight".
  nemotron_h_fused: { ...NEMOTRON_H, storage: { kind: 'stacked', block: 'mixer.experts', suffix: '' } },
  // SwitchTransformers: encoder (layer.1) and decoder (layer.2) blocks, sparse every other block; wi/wo, no gate.
  switch_transformers: {
    modelType: 'switch_transformers',
    layerPrefix: 'encoder.block.',
    storage: { kind: 'per-expert', block: 'layer.1.mlp.experts', names: { up: 'wi', down: 'wo' }, label: 'expert_' },
    router: 'layer.1.mlp.router.classifier.weight',
    projections: UNGATED,
    stacks: encDec('encoder.block.', 'decoder.block.', (g) => `layer.${g === 'encoder' ? 1 : 2}.mlp.experts`, (g) => `layer.${g === 'encoder' ? 1 : 2}.mlp.router.classifier.weight`, (g) => `layer.${g === 'encoder' ? 1 : 2}.DenseReluDense`),
    config: (s) => {
      const step = s.numLayers > 1 ? 2 : 1;
      return { model_type: 'switch_transformers', d_model: s.hidden, d_ff: s.intermediate, num_layers: s.numLayers, num_decoder_layers: s.numLayers, num_experts: s.numExperts, encoder_sparse_step: step, decoder_sparse_step: step, dense_act_fn: 'relu', vocab_size: 64 };
    },
    isMoeLayer: oddLayers, // step 2: i % 2 == 1
  },
  // NllbMoe: model.{encoder,decoder}.layers.L.ffn.experts.expert_j.{fc1,fc2} with biases, sparse where (i+1) % step == 0.
  nllb_moe: {
    modelType: 'nllb_moe',
    layerPrefix: 'model.encoder.layers.',
    storage: { kind: 'per-expert', block: 'ffn.experts', names: { up: 'fc1', down: 'fc2' }, label: 'expert_', biases: true },
    router: 'ffn.router.classifier.weight',
    projections: UNGATED,
    stacks: encDec('model.encoder.layers.', 'model.decoder.layers.', () => 'ffn.experts', () => 'ffn.router.classifier.weight', () => 'ffn'),
    config: (s) => {
      const step = s.numLayers > 1 ? 2 : 1;
      return {
        model_type: 'nllb_moe', d_model: s.hidden, encoder_ffn_dim: s.intermediate, decoder_ffn_dim: s.intermediate, encoder_layers: s.numLayers, decoder_layers: s.numLayers,
        num_experts: s.numExperts, encoder_sparse_step: step, decoder_sparse_step: step, activation_function: 'relu', vocab_size: 64,
      };
    },
    isMoeLayer: oddLayers, // step 2: (i + 1) % 2 == 0
  },
  // Aria: language_model.model.layers.L.mlp.experts.fc1 [E, H, 2I] (gate columns first) / fc2 [E, I, H]; every layer MoE.
  aria: {
    modelType: 'aria',
    layerPrefix: 'language_model.model.layers.',
    storage: { kind: 'grouped-gemm', block: 'mlp.experts' },
    router: 'mlp.router.weight',
    shared: 'mlp.shared_experts',
    config: (s) => ({ model_type: 'aria', text_config: { ...base(s, 'aria_text', 'moe_num_experts'), moe_num_shared_experts: 1 } }),
    isMoeLayer: all,
  },
  // Step-3.7 original checkpoints: model.layers.L.moe.{gate,up,down}_proj.weight stacked 3-D; dense layer 0; one MTP layer.
  step3p7: {
    modelType: 'step3p7',
    layerPrefix: 'model.layers.',
    storage: { kind: 'stacked', block: 'moe', suffix: '.weight' },
    router: 'moe.gate.weight',
    shared: 'share_expert',
    denseMlp: 'mlp',
    config: (s) => ({
      ...base(s, 'step3p7', 'moe_num_experts'), moe_intermediate_size: s.intermediate, share_expert_dim: s.intermediate, num_nextn_predict_layers: 1,
      moe_layers_enum: Array.from({ length: s.numLayers }, (_, l) => l).filter((l) => fromOne(l, s)).join(','),
    }),
    isMoeLayer: fromOne,
    extraMoeLayers: 1,
  },
  // ERNIE-4.5-VL original checkpoints: mlp.experts.0..E-1 text, E..2E-1 vision (smaller intermediate); lists per modality.
  ernie4_5_vl_moe: {
    modelType: 'ernie4_5_vl_moe',
    layerPrefix: 'model.layers.',
    storage: { kind: 'per-expert', block: 'mlp.experts', names: SWIGLU },
    router: 'mlp.gate.weight',
    shared: 'mlp.shared_experts',
    denseMlp: 'mlp',
    visionIntermediate: (s) => Math.max(1, Math.floor(s.intermediate / 2)),
    config: (s) => {
      const first = s.numLayers > 1 ? 1 : 0;
      return {
        ...base(s, 'ernie4_5_vl_moe', 'moe_num_experts'), moe_num_experts: [s.numExperts, s.numExperts],
        moe_intermediate_size: [s.intermediate, Math.max(1, Math.floor(s.intermediate / 2))], moe_layer_interval: 1,
        moe_layer_start_index: [first, first], moe_layer_end_index: [s.numLayers - 1, s.numLayers - 1], moe_num_shared_experts: 1,
      };
    },
    isMoeLayer: fromOne,
  },
  // ERNIE-4.5-VL as transformers saves it (Ernie4_5_VLMoeMoeBlock): mlp.text_moe / mlp.vision_moe, each fused
  // experts [E, 2I, H] / [E, H, I] and a router; text_config with one moe_num_experts and mlp_layer_types.
  ernie4_5_vl_moe_fused: {
    modelType: 'ernie4_5_vl_moe',
    layerPrefix: 'model.language_model.layers.',
    storage: { kind: 'fused', block: 'mlp.text_moe.experts', inputMajor: false },
    router: 'mlp.text_moe.gate.weight',
    visionBlock: 'mlp.vision_moe.experts',
    visionRouter: 'mlp.vision_moe.gate.weight',
    shared: 'mlp.shared_experts',
    denseMlp: 'mlp',
    visionIntermediate: (s) => Math.max(1, Math.floor(s.intermediate / 2)),
    config: (s) => ({
      model_type: 'ernie4_5_vl_moe',
      text_config: {
        ...base(s, 'ernie4_5_vl_moe_text', 'moe_num_experts'), moe_intermediate_size: [s.intermediate, Math.max(1, Math.floor(s.intermediate / 2))],
        moe_num_shared_experts: 1, mlp_layer_types: Array.from({ length: s.numLayers }, (_, l) => (fromOne(l, s) ? 'sparse' : 'dense')),
      },
    }),
    isMoeLayer: fromOne,
  },
};
