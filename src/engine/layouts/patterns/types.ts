/** What a layout pattern is: a recogniser of one way of storing routed experts, and its readers. */
import type { Checkpoint } from '../../model/checkpoint';
import type { ProjectionLayout, RowBlockSource } from '../types';
import type { ExpertGroup, FamilyRule } from '../families';

/** Reads expert j of one projection of one layer: [out, in] float32, exact, bias apart. */
export interface ProjSource {
  readonly layout: ProjectionLayout;
  read(j: number): Promise<Float32Array>;
  readBias(j: number): Promise<Float32Array | null>;
  /** Pass-one row blocks of every expert (see RowBlockSource). */
  readonly rowBlocks: RowBlockSource;
}

/** The tensors of one decoder layer. */
export interface LayerTensors {
  /** Full-name prefix of the layer, e.g. "model.layers.3." */
  readonly prefix: string;
  /** Tensor names without the prefix -> full name. */
  readonly rest: ReadonlyMap<string, string>;
}

/** The readers of one layer's experts: `gate` absent where the experts have none (LayerProjections). */
export interface ProjSources {
  readonly gate?: ProjSource;
  readonly up: ProjSource;
  readonly down: ProjSource;
}

export interface GroupMatch {
  readonly numExperts: number;
  readonly projections: ProjSources;
}

export interface PatternMatch extends GroupMatch {
  readonly pattern: string;
  /** Experts of the same layer that form another group (ernie4_5_vl_moe's vision experts). */
  readonly extraGroups?: readonly (GroupMatch & { readonly group: string })[];
}

export interface PatternContext {
  readonly ckpt: Checkpoint;
  readonly family: string;
  readonly rule: FamilyRule;
  /** hidden_size from config.json, for cross-checks; null when the config does not say. */
  readonly hidden: number | null;
  /** From config.json's expert count key, when the layout cannot tell (DBRX's [E*I, H] tensors). */
  readonly configExperts: number | null;
  /** quantization_config.weight_block_size (DeepSeek-V3 FP8), default [128, 128]. */
  readonly fp8Block: readonly [number, number];
  /** Per-expert tensors numbered across groups (FamilyRule.expertGroups), or null. */
  readonly expertGroups: readonly ExpertGroup[] | null;
}

export interface LayoutPattern {
  readonly name: string;
  /** null when this layer's names are not this pattern; throws 'layout' when they are but do not fit it. */
  match(layer: LayerTensors, ctx: PatternContext): PatternMatch | null;
}

/** Names inside a layer that belong to attention, which some families also build from experts (JetMoE MoA). */
export const ATTENTION = /(^|\.)(self_)?attn\.|(^|\.)(self_)?attention\./;
