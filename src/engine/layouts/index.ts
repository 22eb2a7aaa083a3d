/**
 * From a Checkpoint to a MoeModel: which layers are MoE, how many routed experts, and how to read
 * each expert's gate/up/down matrix. Tensor names decide where the weights are; config.json decides
 * the family, the expert count and the layer rule, and the two are cross-checked.
 */
import { MoeInspectorError } from '../errors';
import type { Checkpoint } from '../model/checkpoint';
import { configExpertCount, configHidden, configMoeLayers, configNumLayers, expertActivation, textConfig, type Config } from './config';
import { matchDbrx, matchFusedExperts, matchGptOssMxfp4, matchInputLinear, matchPerExpert, type LayerTensors, type PatternContext, type PatternMatch } from './patterns';
import { layerIndex, type LayerIndex, type MoeLayerLayout, type MoeModel, type Projection } from './types';

const LAYER_NAME = /^(.*?\b(?:layers|blocks))\.(\d+)\.(.+)$/;
const ROUTER = /(^|\.)(router|gate|shared_expert_gate)(\.layer)?\.(weight|bias|e_score_correction_bias)$|e_score_correction_bias$/;
const SHARED = /shared_experts?\./;

interface LayerGroup {
  readonly prefix: string;
  readonly layer: number;
  readonly rest: Map<string, string>;
}

function groupByLayer(ckpt: Checkpoint): LayerGroup[] {
  const groups = new Map<string, LayerGroup>();
  for (const name of ckpt.tensors.keys()) {
    const m = LAYER_NAME.exec(name);
    if (!m) continue;
    const key = `${m[1]}|${m[2]}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { prefix: m[1]!, layer: Number(m[2]), rest: new Map() }));
    g.rest.set(m[3]!, name);
  }
  return [...groups.values()].sort((a, b) => a.layer - b.layer);
}

function matchLayer(g: LayerTensors, ctx: PatternContext, configExperts: number | null): PatternMatch | null {
  return matchGptOssMxfp4(g, ctx) ?? matchFusedExperts(g, ctx) ?? matchInputLinear(g, ctx) ?? matchDbrx(g, ctx, configExperts) ?? matchPerExpert(g, ctx);
}

function fp8BlockOf(c: Config): readonly [number, number] {
  const q = c['quantization_config'] as { weight_block_size?: unknown } | undefined;
  const b = q?.weight_block_size;
  return Array.isArray(b) && b.length === 2 && b.every((x) => Number.isInteger(x) && x > 0) ? [b[0] as number, b[1] as number] : [128, 128];
}

function notMoe(ckpt: Checkpoint, family: string): MoeInspectorError {
  const what = ckpt.config === null ? 'no config.json' : `model_type ${family}`;
  return new MoeInspectorError(
    'not-moe',
    `not a Mixture-of-Experts model: ${what}, ${ckpt.tensors.size} tensors, no routed expert tensors found (looked for experts.N.*_proj / w1-w3, experts.gate_up_proj[_blocks], input_linear, ffn.experts.mlp.w1)`,
    { file: ckpt.source },
  );
}

export function resolveMoeModel(ckpt: Checkpoint): MoeModel {
  const config = textConfig(ckpt.config ?? {});
  const family = typeof config['model_type'] === 'string' ? (config['model_type'] as string) : 'unknown';
  const configExperts = configExpertCount(config);
  const numLayers = configNumLayers(config);
  const ctx: PatternContext = { ckpt, family, hidden: configHidden(config), fp8Block: fp8BlockOf(config) };

  const found: { group: LayerGroup; match: PatternMatch }[] = [];
  for (const group of groupByLayer(ckpt)) {
    if (numLayers !== null && group.layer >= numLayers) continue; // MTP / next-token modules past the decoder stack
    const match = matchLayer(group, ctx, configExperts);
    if (match) found.push({ group, match });
  }
  if (found.length === 0) throw notMoe(ckpt, family);
  const prefixes = new Set(found.map((f) => f.group.prefix));
  if (prefixes.size > 1) throw new MoeInspectorError('layout', `expert tensors under several layer stacks: ${[...prefixes].join(', ')}`, { file: ckpt.source });

  const numExperts = found[0]!.match.numExperts;
  for (const f of found) {
    if (f.match.numExperts !== numExperts) throw new MoeInspectorError('layout', `layer ${f.group.layer} has ${f.match.numExperts} experts, layer ${found[0]!.group.layer} has ${numExperts}`, { file: ckpt.source });
  }
  if (configExperts !== null && configExperts !== numExperts) {
    throw new MoeInspectorError('layout', `config.json declares ${configExperts} routed experts but the tensors hold ${numExperts}`, { file: ckpt.source });
  }
  crossCheckLayers(ckpt, family, config, numLayers, found.map((f) => f.group.layer));

  const layers = new Map<LayerIndex, { layout: MoeLayerLayout; match: PatternMatch }>();
  for (const { group, match } of found) {
    const layer = layerIndex(group.layer);
    const restNames = [...group.rest.entries()];
    layers.set(layer, {
      match,
      layout: {
        layer,
        numExperts,
        projections: { gate: match.projections.gate.layout, up: match.projections.up.layout, down: match.projections.down.layout },
        routerTensors: restNames.filter(([r]) => ROUTER.test(r) && !SHARED.test(r) && !/experts\.\d+\./.test(r)).map(([, full]) => full),
        sharedExpertTensors: restNames.filter(([r]) => SHARED.test(r)).map(([, full]) => full),
      },
    });
  }
  const get = (layer: LayerIndex, proj: Projection, expert: number) => {
    const l = layers.get(layer);
    if (!l) throw new MoeInspectorError('usage', `layer ${layer} is not a MoE layer`, { file: ckpt.source });
    if (!Number.isInteger(expert) || expert < 0 || expert >= numExperts) throw new MoeInspectorError('usage', `expert ${expert} out of range 0..${numExperts - 1}`, { file: ckpt.source });
    return l.match.projections[proj];
  };
  return {
    family: family === 'unknown' ? `detected:${found[0]!.match.pattern}` : family,
    numExperts,
    numLayers,
    layers: [...layers.values()].map((l) => l.layout),
    activation: expertActivation(family, config),
    async readExpert(layer, proj, expert) {
      const src = get(layer, proj, expert);
      const [rows, cols] = src.layout.shape;
      return { rows, cols, data: await src.read(expert) };
    },
    readExpertBias(layer, proj, expert) {
      return get(layer, proj, expert).readBias(expert);
    },
  };
}

/** The family's config rule and the tensors must name the same MoE layers. */
function crossCheckLayers(ckpt: Checkpoint, family: string, config: Config, numLayers: number | null, layers: number[]): void {
  if (numLayers === null) return;
  const expected = configMoeLayers(family, config, numLayers);
  if (expected === null) return;
  const have = new Set(layers);
  const missing = [...expected].filter((l) => !have.has(l));
  const extra = layers.filter((l) => !expected.has(l));
  if (missing.length > 0 || extra.length > 0) {
    throw new MoeInspectorError(
      'layout',
      `config.json's ${family} layer rule and the tensors disagree: ${missing.length ? `no expert tensors for MoE layers ${missing.join(',')}` : ''}${missing.length && extra.length ? '; ' : ''}${extra.length ? `expert tensors in layers the config calls dense: ${extra.join(',')}` : ''}`,
      { file: ckpt.source },
    );
  }
}
