/**
 * The verdict rule (quoted in the README). Evidence per layer:
 *   r = gate rank_ratio (mean 95%-energy rank of the gate deltas / max_rank); up where the experts have no gate
 *   c = mean over the analysed projections of the mean pairwise cosine of raw expert weights
 * upcycled  iff r < upcycled_max_rank_ratio and c > upcycled_min_cosine
 * native    iff r > native_min_rank_ratio  and c < native_max_cosine
 * otherwise uncertain.
 * Confidence of a met verdict = 0.5 + 0.5 * (the smaller of its two margins), each margin in [0, 1]
 * measuring how far past its threshold the evidence lies (full at a fixed distance, below), so a
 * verdict that barely passes one test gets ~0.5 and one far past both gets 1.
 * Confidence of 'uncertain' = 1 - the larger of the two verdicts' mean margins: near 1 when the
 * evidence meets neither rule at all, lower when one rule was nearly met.
 */
import type { Projection } from '../layouts/types';
import type { Verdict, VerdictThresholds } from '../report/schema';

export interface VerdictEvidence {
  /** rank_ratio of the rank projection (the gate; up where the experts have no gate). */
  readonly gateRankRatio: number;
  readonly meanCosine: number;
  /** Which projection gateRankRatio is of: 'gate' (default) or 'up' for experts without a gate. */
  readonly rankProjection?: 'gate' | 'up';
}

export interface LayerVerdict {
  readonly type: Verdict;
  readonly confidence: number;
  readonly reasons: readonly string[];
}

const clip01 = (x: number): number => Math.min(1, Math.max(0, x));

/** Distances past a threshold at which a margin is full (1). */
const FULL = { upRank: 0.04, upCos: 0.25, natRank: 0.2, natCos: 0.1 } as const;

export function decideVerdict(ev: VerdictEvidence, t: VerdictThresholds): LayerVerdict {
  const { gateRankRatio: r, meanCosine: c } = ev;
  const up = [clip01((t.upcycled_max_rank_ratio - r) / FULL.upRank), clip01((c - t.upcycled_min_cosine) / FULL.upCos)] as const;
  const nat = [clip01((r - t.native_min_rank_ratio) / FULL.natRank), clip01((t.native_max_cosine - c) / FULL.natCos)] as const;
  const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
  const rp = ev.rankProjection ?? 'gate';
  const reasons = [
    `${rp} rank ratio ${pct(r)} (upcycled < ${pct(t.upcycled_max_rank_ratio)}, native > ${pct(t.native_min_rank_ratio)})`,
    `mean expert cosine ${c.toFixed(3)} (upcycled > ${t.upcycled_min_cosine}, native < ${t.native_max_cosine})`,
    ...(rp === 'up' ? ['the experts have no gate projection: the rank test uses up'] : []),
  ];
  if (r < t.upcycled_max_rank_ratio && c > t.upcycled_min_cosine) {
    return { type: 'upcycled', confidence: round3(0.5 + 0.5 * Math.min(...up)), reasons };
  }
  if (r > t.native_min_rank_ratio && c < t.native_max_cosine) {
    return { type: 'native', confidence: round3(0.5 + 0.5 * Math.min(...nat)), reasons };
  }
  const nearest = Math.max(mean(up), mean(nat));
  return { type: 'uncertain', confidence: round3(clip01(1 - nearest)), reasons: [...reasons, 'meets neither rule'] };
}

/**
 * Model verdict from layer verdicts: the type with the largest summed confidence; its confidence is
 * that sum divided by the number of layers, so disagreeing layers lower it. A tie is 'uncertain'.
 */
export function modelVerdict(layers: readonly LayerVerdict[]): { type: Verdict; confidence: number } {
  if (layers.length === 0) return { type: 'uncertain', confidence: 0 };
  const sums = new Map<Verdict, number>();
  for (const l of layers) sums.set(l.type, (sums.get(l.type) ?? 0) + l.confidence);
  const ranked = [...sums.entries()].sort((a, b) => b[1] - a[1]);
  const [best, second] = ranked;
  if (!best) return { type: 'uncertain', confidence: 0 };
  if (second && second[1] === best[1]) return { type: 'uncertain', confidence: round3(best[1] / layers.length) };
  return { type: best[0], confidence: round3(best[1] / layers.length) };
}

/** The cosine evidence: mean over the projections present of their mean pairwise cosine. */
export function meanCosineOf(perProjection: Partial<Record<Projection, number>>): number {
  const vals = Object.values(perProjection).filter((v): v is number => typeof v === 'number');
  return vals.length === 0 ? 0 : mean(vals);
}

function mean(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
