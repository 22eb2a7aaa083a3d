/**
 * From a Checkpoint to a MoeModel: which layers are MoE, how many routed experts, and how to read
 * each expert's gate/up/down matrix. Tensor names decide where the weights are (patterns/); config.json
 * decides the family, the expert count and the layer rule (families.ts), and the two are cross-checked.
 */
import { MoeInspectorError } from '../errors';
import { countNonFinite } from '../formats/finite';
import type { Checkpoint } from '../model/checkpoint';
import { configExpertCount, configFp8Block, configHidden, configNumLayers, textConfig, type Config } from './config';
import { isKnownFamily, ruleFor } from './families';
import { LAYOUT_PATTERNS } from './patterns/registry';
import { ATTENTION, type LayerTensors, type PatternContext, type PatternMatch } from './patterns/types';
import { layerIndex, type LayerIndex, type MoeLayerLayout, type MoeModel, type Projection } from './types';

export { FAMILY_RULES, ruleFor } from './families';

/** "<stack>.<N>.<rest>" where the stack ends in layers/blocks: model.layers, transformer.blocks, language_model.model.layers. */
const LAYER_NAME = /^(.*?\b(?:layers|blocks))\.(\d+)\.(.+)$/;
const ROUTER = /(^|\.)(router|gate)(\.layer)?\.(weight|bias|e_score_correction_bias)$/;
const SHARED = /(^|\.)shared_experts?(\.|_gate\.)/;
const ROUTED_EXPERT = /experts\.\d+\./;

interface LayerGroup extends LayerTensors {
  readonly stack: string;
  readonly layer: number;
}

function groupByLayer(ckpt: Checkpoint): LayerGroup[] {
  const groups = new Map<string, { stack: string; layer: number; prefix: string; rest: Map<string, string> }>();
  for (const name of ckpt.tensors.keys()) {
    const m = LAYER_NAME.exec(name);
    if (!m) continue;
    const prefix = `${m[1]}.${m[2]}.`;
    let g = groups.get(prefix);
    if (!g) groups.set(prefix, (g = { stack: m[1]!, layer: Number(m[2]), prefix, rest: new Map() }));
    g.rest.set(m[3]!, name);
  }
  return [...groups.values()].sort((a, b) => a.layer - b.layer || a.stack.localeCompare(b.stack));
}

function matchLayer(g: LayerTensors, ctx: PatternContext): PatternMatch | null {
  for (const p of LAYOUT_PATTERNS) {
    const m = p.match(g, ctx);
    if (m) return m;
  }
  return null;
}

function noExperts(ckpt: Checkpoint, modelType: string | null, configExperts: number | null): MoeInspectorError {
  const what = ckpt.config === null ? 'no config.json' : modelType === null ? 'config.json without model_type' : `model_type ${modelType}`;
  const looked = 'looked for experts.N.{gate,up,down}_proj / w1,w3,w2, experts.gate_up_proj[_blocks], input_linear, ffn.experts.mlp.w1';
  if (configExperts !== null) {
    return new MoeInspectorError('layout', `${what} declares ${configExperts} experts, but no expert tensors of a known layout were found among ${ckpt.tensors.size} tensors (${looked})`, { file: ckpt.source });
  }
  return new MoeInspectorError('not-moe', `not a Mixture-of-Experts model: ${what}, no expert count in config, no expert tensors among ${ckpt.tensors.size} tensors (${looked})`, { file: ckpt.source });
}

function layerLayout(group: LayerGroup, match: PatternMatch): MoeLayerLayout {
  const rest = [...group.rest.entries()].filter(([r]) => !ATTENTION.test(r));
  return {
    layer: layerIndex(group.layer),
    numExperts: match.numExperts,
    projections: { gate: match.projections.gate.layout, up: match.projections.up.layout, down: match.projections.down.layout },
    routerTensors: rest.filter(([r]) => ROUTER.test(r) && !SHARED.test(r) && !ROUTED_EXPERT.test(r)).map(([, full]) => full),
    sharedExpertTensors: rest.filter(([r]) => SHARED.test(r)).map(([, full]) => full),
  };
}

export function resolveMoeModel(ckpt: Checkpoint): MoeModel {
  const config = textConfig(ckpt.config ?? {});
  const modelType = typeof config['model_type'] === 'string' ? (config['model_type'] as string) : null;
  const family = modelType ?? 'unknown';
  const rule = ruleFor(family);
  const configExperts = configExpertCount(config);
  const numLayers = configNumLayers(config);
  const ctx: PatternContext = { ckpt, family, rule, hidden: configHidden(config), configExperts, fp8Block: configFp8Block(config) };

  const found: { group: LayerGroup; match: PatternMatch }[] = [];
  for (const group of groupByLayer(ckpt)) {
    if (numLayers !== null && group.layer >= numLayers) continue; // MTP / next-token modules past the decoder stack
    const match = matchLayer(group, ctx);
    if (match) found.push({ group, match });
  }
  if (found.length === 0) throw noExperts(ckpt, modelType, configExperts);
  checkConsistent(ckpt, found, configExperts);
  crossCheckLayers(ckpt, family, config, numLayers, found.map((f) => f.group.layer));

  const layers = new Map<LayerIndex, { layout: MoeLayerLayout; match: PatternMatch }>();
  for (const { group, match } of found) layers.set(layerIndex(group.layer), { layout: layerLayout(group, match), match });
  const numExperts = found[0]!.match.numExperts;
  const sourceOf = (layer: LayerIndex, proj: Projection, expert: number) => {
    const l = layers.get(layer);
    if (!l) throw new MoeInspectorError('usage', `layer ${layer} is not a MoE layer (MoE layers: ${[...layers.keys()].join(', ')})`, { file: ckpt.source });
    if (!Number.isInteger(expert) || expert < 0 || expert >= numExperts) throw new MoeInspectorError('usage', `expert ${expert} out of range 0..${numExperts - 1}`, { file: ckpt.source });
    return l.match.projections[proj];
  };
  return {
    family: isKnownFamily(family) ? family : `detected:${found[0]!.match.pattern}`,
    numExperts,
    numLayers,
    layers: [...layers.values()].map((l) => l.layout),
    activation: rule.activation(config),
    async readExpert(layer, proj, expert) {
      const src = sourceOf(layer, proj, expert);
      const [rows, cols] = src.layout.shape;
      return { rows, cols, data: await src.read(expert) };
    },
    async readExpertBias(layer, proj, expert) {
      return sourceOf(layer, proj, expert).readBias(expert);
    },
    rowBlocks(layer, proj) {
      const blocks = sourceOf(layer, proj, 0).rowBlocks;
      return {
        rows: blocks.rows,
        cols: blocks.cols,
        transposed: blocks.transposed,
        async read(expert, first, count) {
          const src = sourceOf(layer, proj, expert);
          const data = await blocks.read(expert, first, count);
          // A NaN/Inf in a block: the whole-expert read reports it with the expert's full count.
          const bad = countNonFinite(data);
          if (bad > 0) {
            await src.read(expert);
            throw new MoeInspectorError('non-finite', `${bad} NaN/Inf value${bad === 1 ? '' : 's'} in rows ${first}..${first + count - 1} of expert ${expert}`, { file: ckpt.source, tensor: src.layout.tensors[0]! });
          }
          return data;
        },
        prefetch: (expert) => (sourceOf(layer, proj, expert), blocks.prefetch(expert)),
      };
    },
  };
}

/** One layer stack, one expert count, and the count config.json declares. */
function checkConsistent(ckpt: Checkpoint, found: { group: LayerGroup; match: PatternMatch }[], configExperts: number | null): void {
  const stacks = new Set(found.map((f) => f.group.stack));
  if (stacks.size > 1) throw new MoeInspectorError('layout', `expert tensors under several layer stacks: ${[...stacks].join(', ')}`, { file: ckpt.source });
  const first = found[0]!;
  for (const f of found) {
    if (f.match.numExperts !== first.match.numExperts) {
      throw new MoeInspectorError('layout', `layer ${f.group.layer} has ${f.match.numExperts} experts, layer ${first.group.layer} has ${first.match.numExperts}`, { file: ckpt.source });
    }
  }
  if (configExperts !== null && configExperts !== first.match.numExperts) {
    throw new MoeInspectorError('layout', `config.json declares ${configExperts} routed experts but the tensors hold ${first.match.numExperts}`, { file: ckpt.source });
  }
}

/** The family's config rule and the tensors must name the same MoE layers. */
function crossCheckLayers(ckpt: Checkpoint, family: string, config: Config, numLayers: number | null, layers: number[]): void {
  const rule = ruleFor(family).moeLayers;
  if (numLayers === null || rule === null) return;
  const expected = rule(config, numLayers);
  const have = new Set(layers);
  const missing = [...expected].filter((l) => !have.has(l));
  const extra = layers.filter((l) => !expected.has(l));
  if (missing.length === 0 && extra.length === 0) return;
  const parts = [
    ...(missing.length ? [`no expert tensors for MoE layers ${missing.join(',')}`] : []),
    ...(extra.length ? [`expert tensors in layers the config calls dense: ${extra.join(',')}`] : []),
  ];
  throw new MoeInspectorError('layout', `config.json's ${family} layer rule and the tensors disagree: ${parts.join('; ')}`, { file: ckpt.source });
}
