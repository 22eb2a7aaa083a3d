/**
 * Where a checkpoint's bytes go, from the tensors' real byte lengths (MXFP4 blocks + scales, FP8 +
 * block scales, BF16: whatever is stored), never from parameter counts times an assumed width.
 */
import type { Checkpoint } from '../model/checkpoint';
import { projectionsOf, type MoeLayerLayout, type MoeModel, type Projection } from '../layouts/types';

/** Everything that is not a routed expert weight: an overlay keeps these bytes as they are. */
export const NON_EXPERT_CATEGORIES = ['expert_biases', 'router', 'shared_experts', 'attention', 'embeddings', 'norms', 'dense_mlp', 'other'] as const;
export type NonExpertCategory = (typeof NON_EXPERT_CATEGORIES)[number];

export type ByteBreakdown = Record<NonExpertCategory, number>;

export interface CheckpointBytes {
  /** Sum of every tensor's byte length (headers excluded). */
  readonly tensorBytes: number;
  /** Routed expert weights (and their scales) per MoE layer and projection. */
  readonly expertWeights: ReadonlyMap<number, Readonly<Record<Projection, number>>>;
  readonly nonExpert: Readonly<ByteBreakdown>;
}

const isBias = (name: string): boolean => /(^|[._])bias$/.test(name);

/**
 * Expert weight bytes of each projection of one layer. A fused tensor (gate_up_proj) listed by two
 * projections is split evenly between them: both halves have the same shape and encoding.
 */
export function projectionWeightBytes(ckpt: Checkpoint, layer: MoeLayerLayout): Record<Projection, number> {
  const sharers = new Map<string, number>();
  for (const p of projectionsOf(layer.projections)) for (const t of layer.projections[p]!.tensors) if (!isBias(t)) sharers.set(t, (sharers.get(t) ?? 0) + 1);
  const out = { gate: 0, up: 0, down: 0 };
  for (const p of projectionsOf(layer.projections)) {
    for (const t of layer.projections[p]!.tensors) {
      if (isBias(t)) continue;
      out[p] += byteLengthOf(ckpt, t) / sharers.get(t)!;
    }
  }
  return out;
}

/** The per-expert bias tensors of one layer (copied untouched into an overlay). */
export function expertBiasTensors(layer: MoeLayerLayout): string[] {
  return [...new Set(projectionsOf(layer.projections).flatMap((p) => layer.projections[p]!.tensors.filter(isBias)))];
}

function byteLengthOf(ckpt: Checkpoint, name: string): number {
  const t = ckpt.tensors.get(name);
  return t ? t.byteLength : 0;
}

function categoryOf(name: string): NonExpertCategory {
  if (/(embed|lm_head|\bwte\b|\bwpe\b|tok_embeddings)/.test(name)) return 'embeddings';
  if (/(attn|attention)/.test(name)) return 'attention';
  if (/norm/.test(name)) return 'norms';
  if (/(mlp|ffn|feed_forward)\./.test(name)) return 'dense_mlp';
  return 'other';
}

export function checkpointBytes(ckpt: Checkpoint, model: MoeModel): CheckpointBytes {
  const nonExpert: ByteBreakdown = Object.fromEntries(NON_EXPERT_CATEGORIES.map((c) => [c, 0])) as ByteBreakdown;
  const expertWeights = new Map<number, Record<Projection, number>>();
  const claimed = new Set<string>();
  for (const layer of model.layers) {
    expertWeights.set(layer.layer, projectionWeightBytes(ckpt, layer));
    for (const p of projectionsOf(layer.projections)) for (const t of layer.projections[p]!.tensors) if (!isBias(t)) claimed.add(t);
    const add = (names: readonly string[], c: NonExpertCategory): void => {
      for (const n of names) {
        if (claimed.has(n)) continue;
        claimed.add(n);
        nonExpert[c] += byteLengthOf(ckpt, n);
      }
    };
    add(expertBiasTensors(layer), 'expert_biases');
    add(layer.routerTensors, 'router');
    add(layer.sharedExpertTensors, 'shared_experts');
  }
  let tensorBytes = 0;
  for (const t of ckpt.tensors.values()) {
    tensorBytes += t.byteLength;
    if (!claimed.has(t.name)) nonExpert[categoryOf(t.name)] += t.byteLength;
  }
  return { tensorBytes, expertWeights, nonExpert };
}
