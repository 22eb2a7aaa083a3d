/**
 * From a Checkpoint to a MoeModel: which layers are MoE, how many routed experts, and how to read
 * each expert's gate/up/down matrix. Tensor names decide where the weights are (patterns/); config.json
 * decides the family, the expert count and the layer rule (families.ts), and the two are cross-checked:
 * a config that contradicts the tensors is an error naming both sides, never silently trusted.
 */
import { MoeInspectorError } from '../errors';
import { countNonFinite } from '../formats/finite';
import type { Checkpoint } from '../model/checkpoint';
import { configExpertField, configExtraLayers, configFp8Block, configHidden, configNumLayers, configNumLayersField, textConfig, type Config, type ConfigField } from './config';
import { isKnownFamily, ruleFor, type ExpertGroup, type FamilyRule } from './families';
import { LAYOUT_PATTERNS } from './patterns/registry';
import { ATTENTION, type GroupMatch, type LayerTensors, type PatternContext, type PatternMatch, type ProjSource } from './patterns/types';
import { layerIndex, layerName, type LayerProjections, type LayerRef, type MoeLayerLayout, type MoeModel, type Projection } from './types';

export { FAMILY_RULES, ruleFor } from './families';

/**
 * "<stack>.<N>.<rest>" where the stack ends in layers/blocks/block: model.layers, transformer.blocks,
 * language_model.model.layers, backbone.layers, encoder.block (switch_transformers), model.decoder.layers.
 */
const LAYER_NAME = /^(.*?\b(?:layers|blocks|block))\.(\d+)\.(.+)$/;
const ROUTER = /(^|\.)(router|gate)(\.layer|\.classifier)?\.(weight(_1)?|bias|e_score_correction_bias)$/;
const SHARED = /(^|\.)shared?_experts?(\.|_gate\.)/;
const ROUTED_EXPERT = /experts\.(expert_)?\d+\./;

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

function matchPatterns(g: LayerTensors, ctx: PatternContext): PatternMatch | null {
  for (const p of LAYOUT_PATTERNS) {
    const m = p.match(g, ctx);
    if (m) return m;
  }
  return null;
}

/**
 * Modality-isolated expert blocks in one layer: transformers' Ernie4_5_VLMoeMoeBlock holds `text_moe`
 * and `vision_moe`, each a full sparse block (its own router and experts). Each is matched on its own;
 * the vision experts become the layer's "vision" group, never silently left out.
 */
const MODALITY_BLOCK = /^(.*?)\b(text|vision)_moe\.(.+)$/;

function modalityBlocks(g: LayerTensors): Map<'text' | 'vision', LayerTensors> | null {
  const blocks = new Map<'text' | 'vision', { prefix: string; rest: Map<string, string> }>();
  for (const [rest, full] of g.rest) {
    const m = MODALITY_BLOCK.exec(rest);
    if (!m) continue;
    const kind = m[2] as 'text' | 'vision';
    const b = blocks.get(kind) ?? { prefix: `${g.prefix}${m[1]}${kind}_moe.`, rest: new Map<string, string>() };
    b.rest.set(m[3]!, full);
    blocks.set(kind, b);
  }
  return blocks.size === 0 ? null : blocks;
}

function matchLayer(g: LayerTensors, ctx: PatternContext): PatternMatch | null {
  const blocks = modalityBlocks(g);
  if (!blocks) return matchPatterns(g, ctx);
  const one = { ...ctx, expertGroups: null };
  const text = blocks.get('text') ? matchPatterns(blocks.get('text')!, one) : null;
  const vision = blocks.get('vision') ? matchPatterns(blocks.get('vision')!, one) : null;
  if (!text && !vision) return matchPatterns(g, ctx);
  if (!text) throw new MoeInspectorError('layout', `vision_moe experts without text_moe experts in this layer`, { file: ctx.ckpt.source, tensor: [...blocks.get('vision')!.rest.values()][0] });
  return { ...text, ...(vision ? { extraGroups: [{ group: 'vision', numExperts: vision.numExperts, projections: vision.projections }] } : {}) };
}

function noExperts(ckpt: Checkpoint, modelType: string | null, configExperts: ConfigField | null): MoeInspectorError {
  const what = ckpt.config === null ? 'no config.json' : modelType === null ? 'config.json without model_type' : `model_type ${modelType}`;
  const looked = 'looked for experts.N.{gate,up,down}_proj / w1,w3,w2 / expert_N.{wi,wo} / expert_N.{fc1,fc2}, experts.gate_up_proj[_blocks], experts.fc1, stacked 3-D gate_proj, input_linear, ffn.experts.mlp.w1';
  if (configExperts !== null) {
    return new MoeInspectorError('layout', `${what}: config.json ${configExperts.field} = ${configExperts.value} declares routed experts, but no expert tensors of a known layout were found among ${ckpt.tensors.size} tensors (${looked})`, { file: ckpt.source });
  }
  return new MoeInspectorError('not-moe', `not a Mixture-of-Experts model: ${what}, no expert count in config, no expert tensors among ${ckpt.tensors.size} tensors (${looked})`, { file: ckpt.source });
}

/** Where a layer's experts come from: its stack's group, and the pattern's readers. */
interface Found {
  readonly group: string | null;
  readonly tensors: LayerGroup;
  readonly match: GroupMatch;
  readonly pattern: string;
}

/**
 * A layer whose experts form two groups (ernie4_5_vl_moe) has one router per group: `gate.weight` and
 * `gate.weight_1` in the original checkpoints, `text_moe.gate` and `vision_moe.gate` in transformers'. Its shared
 * experts serve both and are reported once, with the first group.
 */
const SECOND_ROUTER = /\.weight_1$|(^|\.)vision_moe\./;

function layerLayout(f: Found): MoeLayerLayout {
  const rest = [...f.tensors.rest.entries()].filter(([r]) => !ATTENTION.test(r));
  const extra = f.group === 'vision';
  const routers = rest.filter(([r]) => ROUTER.test(r) && !SHARED.test(r) && !ROUTED_EXPERT.test(r)).map(([, full]) => full);
  const p = f.match.projections;
  const projections: LayerProjections = { ...(p.gate ? { gate: p.gate.layout } : {}), up: p.up.layout, down: p.down.layout };
  return {
    layer: layerIndex(f.tensors.layer),
    group: f.group,
    name: layerName(f.group, f.tensors.layer),
    numExperts: f.match.numExperts,
    projections,
    routerTensors: routers.filter((n) => SECOND_ROUTER.test(n) === extra),
    sharedExpertTensors: extra ? [] : rest.filter(([r]) => SHARED.test(r)).map(([, full]) => full),
  };
}

/**
 * Group names of the layer stacks that hold experts: null for a single stack; the path component
 * naming each stack ("encoder", "decoder") when there are several (encoder-decoder MoE).
 */
function stackGroups(ckpt: Checkpoint, stacks: string[], named: boolean): Map<string, string | null> {
  if (stacks.length === 1 && !named) return new Map([[stacks[0]!, null]]);
  const names = stacks.map((s) => s.split('.').filter((x) => !['model', 'layers', 'blocks', 'block'].includes(x)).pop() ?? s);
  if (new Set(names).size !== names.length || !names.every((n) => /^(encoder|decoder)$/.test(n))) {
    throw new MoeInspectorError('layout', `expert tensors under several layer stacks: ${stacks.join(', ')} (only an encoder and a decoder stack are read as two layer groups)`, { file: ckpt.source });
  }
  return new Map(stacks.map((s, i) => [s, names[i]!]));
}

const GROUP_ORDER = (g: string | null): string => (g === null ? '0' : g === 'encoder' ? '1' : g === 'decoder' ? '2' : `3${g}`);

export function resolveMoeModel(ckpt: Checkpoint): MoeModel {
  const config = textConfig(ckpt.config ?? {});
  const modelType = typeof config['model_type'] === 'string' ? (config['model_type'] as string) : null;
  const family = modelType ?? 'unknown';
  const rule = ruleFor(family);
  const configExperts = configExpertField(config);
  const ctx: PatternContext = {
    ckpt,
    family,
    rule,
    hidden: configHidden(config),
    configExperts: configExperts?.value ?? null,
    fp8Block: configFp8Block(config),
    expertGroups: rule.expertGroups?.(config) ?? null,
  };

  const matched: { tensors: LayerGroup; match: PatternMatch }[] = [];
  for (const tensors of groupByLayer(ckpt)) {
    const match = matchLayer(tensors, ctx);
    if (match) matched.push({ tensors, match });
  }
  if (matched.length === 0) throw noExperts(ckpt, modelType, configExperts);
  const groupOf = stackGroups(ckpt, [...new Set(matched.map((m) => m.tensors.stack))], rule.stackGroups !== undefined);
  const inStack = dropDeclaredExtraLayers(ckpt, config, rule, groupOf, matched);
  const found: Found[] = inStack.flatMap(({ tensors, match }) => [
    { group: groupOf.get(tensors.stack)!, tensors, match, pattern: match.pattern },
    ...(match.extraGroups ?? []).map((g) => ({ group: g.group, tensors, match: g, pattern: match.pattern })),
  ]);
  found.sort((a, b) => GROUP_ORDER(a.group).localeCompare(GROUP_ORDER(b.group)) || a.tensors.layer - b.tensors.layer);
  checkExpertCounts(ckpt, found, configExperts, ctx.expertGroups);
  // Every group the family declares is checked, also one whose MoE layers are all missing
  // (an encoder-decoder stack; ernie4_5_vl_moe's vision experts).
  const declared = [...(rule.stackGroups ?? []), ...(ctx.expertGroups ?? []).map((g) => g.group)];
  for (const g of new Set([...declared, ...found.map((f) => f.group)])) {
    crossCheckLayers(ckpt, family, config, g, found.filter((f) => f.group === g).map((f) => f.tensors.layer));
  }
  return moeModel(ckpt, family, rule, config, found);
}

function moeModel(ckpt: Checkpoint, family: string, rule: FamilyRule, config: Config, found: Found[]): MoeModel {
  const byName = new Map(found.map((f) => [layerName(f.group, f.tensors.layer), { layout: layerLayout(f), match: f.match }]));
  const layerOf = (ref: LayerRef) => {
    const l = typeof ref === 'string' ? byName.get(ref) : (byName.get(String(ref)) ?? uniqueByIndex(ref));
    if (!l) throw new MoeInspectorError('usage', `layer ${ref} is not a MoE layer (MoE layers: ${[...byName.keys()].join(', ')})`, { file: ckpt.source });
    return l;
  };
  const uniqueByIndex = (n: number) => {
    const all = [...byName.values()].filter((l) => l.layout.layer === n);
    if (all.length > 1) throw new MoeInspectorError('usage', `layer ${n} is ambiguous: name it as ${all.map((l) => l.layout.name).join(' or ')}`, { file: ckpt.source });
    return all[0];
  };
  const sourceOf = (ref: LayerRef, proj: Projection, expert: number): ProjSource => {
    const l = layerOf(ref);
    const n = l.layout.numExperts;
    if (!Number.isInteger(expert) || expert < 0 || expert >= n) throw new MoeInspectorError('usage', `expert ${expert} out of range 0..${n - 1}`, { file: ckpt.source });
    const src = l.match.projections[proj];
    if (!src) throw new MoeInspectorError('usage', `layer ${l.layout.name}: the ${family} experts have no ${proj} projection`, { file: ckpt.source });
    return src;
  };
  return {
    family: isKnownFamily(family) ? family : `detected:${found[0]!.pattern}`,
    numExperts: found[0]!.match.numExperts,
    numLayers: rule.numLayers ? null : configNumLayers(config),
    layers: [...byName.values()].map((l) => l.layout),
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

function numLayersOf(config: Config, rule: FamilyRule, group: string | null): ConfigField | null {
  return rule.numLayers ? rule.numLayers(config, group) : configNumLayersField(config);
}

/**
 * Layers past the stack's declared length are kept out only where config.json itself declares them
 * (num_nextn_predict_layers: DeepSeek-V3 / step3p7 multi-token-prediction modules). Expert tensors past
 * that are a contradiction: the config would drop them, so it is an error naming both sides.
 */
/** Every tensor a match reads (weights, scales, biases), in all its groups. */
function expertTensorsOf(m: PatternMatch): string[] {
  const groups: GroupMatch[] = [m, ...(m.extraGroups ?? [])];
  return [...new Set(groups.flatMap((g) => Object.values(g.projections).flatMap((p: ProjSource) => p.layout.tensors)))];
}

function dropDeclaredExtraLayers<T extends { tensors: LayerGroup; match: PatternMatch }>(ckpt: Checkpoint, config: Config, rule: FamilyRule, groupOf: Map<string, string | null>, matched: T[]): T[] {
  const extra = configExtraLayers(config);
  const kept: T[] = [];
  const beyond = new Map<string, { layers: number[]; tensors: string[]; n: ConfigField }>();
  for (const m of matched) {
    const group = groupOf.get(m.tensors.stack)!;
    const n = numLayersOf(config, rule, group);
    if (n === null || m.tensors.layer < n.value) kept.push(m);
    else if (m.tensors.layer >= n.value + extra) {
      const b = beyond.get(m.tensors.stack) ?? { layers: [], tensors: [], n };
      b.layers.push(m.tensors.layer);
      b.tensors.push(...expertTensorsOf(m.match));
      beyond.set(m.tensors.stack, b);
    }
  }
  for (const [stack, b] of beyond) {
    throw new MoeInspectorError(
      'layout',
      `config.json ${b.n.field} = ${b.n.value}${extra ? ` (+ num_nextn_predict_layers = ${extra})` : ''}, but ${stack} ${b.layers.join(', ')} ${b.layers.length === 1 ? 'holds' : 'hold'} ${b.tensors.length} expert tensors (e.g. ${b.tensors[0]}): the config would drop them`,
      { file: ckpt.source, tensor: b.tensors[0] },
    );
  }
  return kept;
}

/** Within each group one expert count per layer, and the count config.json declares (both sides named). */
function checkExpertCounts(ckpt: Checkpoint, found: Found[], configExperts: ConfigField | null, expertGroups: readonly ExpertGroup[] | null): void {
  for (const g of new Set(found.map((f) => f.group))) {
    const inGroup = found.filter((f) => f.group === g);
    const first = inGroup[0]!;
    for (const f of inGroup) {
      if (f.match.numExperts !== first.match.numExperts) {
        throw new MoeInspectorError('layout', `layer ${layerName(g, f.tensors.layer)} has ${f.match.numExperts} experts (${f.tensors.prefix}…), layer ${layerName(g, first.tensors.layer)} has ${first.match.numExperts}`, { file: ckpt.source });
      }
    }
  }
  // A second group's count (ernie4_5_vl_moe's vision experts) against the config's count for it.
  for (const g of (expertGroups ?? []).slice(1)) {
    const f = found.find((x) => x.group === g.group);
    if (f && f.match.numExperts !== g.count) {
      throw new MoeInspectorError('layout', `config.json ${g.field} = ${g.count} ${g.group} experts, but the tensors hold ${f.match.numExperts} (layer ${layerName(f.group, f.tensors.layer)}: ${f.match.projections.up.layout.tensors[0]})`, { file: ckpt.source });
    }
  }
  const main = found.find((f) => f.group === null || f.group === 'encoder' || f.group === 'decoder') ?? found[0]!;
  if (configExperts !== null && configExperts.value !== main.match.numExperts) {
    const names = main.match.projections.up.layout.tensors;
    throw new MoeInspectorError(
      'layout',
      `config.json ${configExperts.field} = ${configExperts.value}, but the tensors hold ${main.match.numExperts} routed experts per layer (layer ${layerName(main.group, main.tensors.layer)}: ${names.length > 1 ? `${names[0]} … ${names[names.length - 1]}` : names[0]})`,
      { file: ckpt.source },
    );
  }
}

/** The family's config rule and the tensors must name the same MoE layers (in each layer group). */
function crossCheckLayers(ckpt: Checkpoint, family: string, config: Config, group: string | null, layers: number[]): void {
  const fr = ruleFor(family);
  const rule = fr.moeLayers;
  const numLayers = numLayersOf(config, fr, group);
  if (numLayers === null || rule === null) return;
  const expected = rule(config, numLayers.value, group);
  const have = new Set(layers);
  const missing = [...expected].filter((l) => !have.has(l));
  const extra = layers.filter((l) => !expected.has(l));
  if (missing.length === 0 && extra.length === 0) return;
  const where = group === null ? '' : ` (${group} layers)`;
  const parts = [
    ...(missing.length ? [`no expert tensors for MoE layers ${missing.join(',')}`] : []),
    ...(extra.length ? [`expert tensors in layers the config calls dense: ${extra.join(',')}`] : []),
  ];
  const fields = (fr.ruleFields ?? []).filter((f) => f in config).map((f) => `${f} = ${JSON.stringify(config[f])}`);
  throw new MoeInspectorError('layout', `config.json's ${family} layer rule${fields.length ? ` (${fields.join(', ')})` : ''} and the tensors disagree${where}: ${parts.join('; ')}`, { file: ckpt.source });
}
