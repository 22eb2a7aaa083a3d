/** Reading config.json's generic facts; families name the same thing differently (fact sheet section 4). */
export type Config = Readonly<Record<string, unknown>>;

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/** Configs of multimodal models nest the language model (llama4: text_config). */
export function textConfig(config: Config): Config {
  const t = config['text_config'];
  // The top-level model_type names the family (llama4's text_config says llama4_text).
  return typeof t === 'object' && t !== null ? { ...config, ...(t as Config), model_type: config['model_type'] } : config;
}

/** A config.json field and its value, so that errors can name the side of a contradiction that the config states. */
export interface ConfigField {
  readonly field: string;
  readonly value: number;
}

/**
 * Routed expert count: num_local_experts (mixtral, gpt_oss, granite), num_experts (olmoe, qwen,
 * switch_transformers, nllb_moe), n_routed_experts (deepseek, glm, nemotron_h), moe_num_experts
 * (ernie, aria, step3p7; a list [text, vision] in ernie4_5_vl_moe's original config: the first is the
 * text count), ffn_config.moe_num_experts (dbrx).
 */
export function configExpertField(c: Config): ConfigField | null {
  for (const k of ['num_local_experts', 'num_experts', 'n_routed_experts', 'moe_num_experts']) {
    const raw = c[k];
    const v = num(Array.isArray(raw) ? raw[0] : raw);
    if (v !== null && v > 1) return { field: Array.isArray(raw) ? `${k}[0]` : k, value: v };
  }
  const ffn = c['ffn_config'];
  if (typeof ffn === 'object' && ffn !== null) {
    const v = num((ffn as Config)['moe_num_experts']);
    if (v !== null) return { field: 'ffn_config.moe_num_experts', value: v };
  }
  return null;
}

export function configExpertCount(c: Config): number | null {
  return configExpertField(c)?.value ?? null;
}

/** Layers past num_hidden_layers that the config itself declares (multi-token-prediction modules). */
export function configExtraLayers(c: Config): number {
  return num(c['num_nextn_predict_layers']) ?? num(c['num_mtp_layers']) ?? 0;
}

export function configNumLayers(c: Config): number | null {
  return configNumLayersField(c)?.value ?? null;
}

/** The decoder layer count and the field that states it (num_hidden_layers; n_layers in dbrx). */
export function configNumLayersField(c: Config): ConfigField | null {
  for (const k of ['num_hidden_layers', 'n_layers', 'num_layers']) {
    const v = num(c[k]);
    if (v !== null) return { field: k, value: v };
  }
  return null;
}

/** A number field of config.json, named. */
export function configField(c: Config, field: string): ConfigField | null {
  const v = num(c[field]);
  return v === null ? null : { field, value: v };
}

export function configHidden(c: Config): number | null {
  return num(c['hidden_size']) ?? num(c['d_model']);
}

/** quantization_config.weight_block_size (DeepSeek-V3 FP8); [128, 128] when absent. */
export function configFp8Block(c: Config): readonly [number, number] {
  const q = c['quantization_config'] as { weight_block_size?: unknown } | undefined;
  const b = q?.weight_block_size;
  return Array.isArray(b) && b.length === 2 && b.every((x) => Number.isInteger(x) && x > 0) ? [b[0] as number, b[1] as number] : [128, 128];
}
