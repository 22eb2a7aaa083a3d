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
import type { LayerProvenance, LayerVerdictReport, Verdict, VerdictThresholds } from '../report/schema';

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

// ------------------------------------------------------------------------------------------------
// Verdict with recipe (README, "Verdict with recipe"): from neuron-matched provenance, with or
// without the dense parent, beside the rank + cosine rule above.

/** Share of neurons two experts must share (median over pairs) to read as copies rather than split pieces. */
export const COPY_MIN_PAIR_SHARE = 0.15;
/** Mean identity share of matches above which copies kept their neuron order (copy, not permuted-copy). */
export const IDENTITY_MIN = 0.9;
/**
 * Without the parent, "no expert shares a neuron" is also what a disjoint split (LLaMA-MoE) or
 * Drop-Upcycling with r = 1 leaves: native is then said with at most this confidence.
 */
export const NATIVE_WITHOUT_PARENT_CAP = 0.8;
/** With the parent, native can still be Drop-Upcycling with r = 1 (every neuron re-initialised): never certain. */
export const NATIVE_WITH_PARENT_CAP = 0.85;

export interface RecipeVerdictInput {
  readonly provenance: LayerProvenance;
  /** The seeds' rule on this layer (rank + cosine), where the spectra were computed. */
  readonly rule?: LayerVerdict;
  /** Mean over experts of the gate (or up) delta's singular values above the storage-noise edge / max rank. */
  readonly signalRankRatio: number | null;
}

const pct1 = (x: number): string => `${(100 * x).toFixed(1)}%`;
const f3 = (x: number | null | undefined): string => (x === null || x === undefined ? '-' : x.toFixed(3));

/**
 * How cleanly the expert pairs separate into sharing and not sharing: the share of pairs whose
 * shared count is at least twice the significance bar or at most the null's expected count + 1.
 */
function pairPurity(p: LayerProvenance): number {
  const E = p.shared_share.length;
  const bar = p.method.min_shared;
  const nullMax = p.neurons * p.method.alpha + 1;
  let clean = 0;
  let all = 0;
  for (let a = 0; a < E; a++) {
    for (let b = a + 1; b < E; b++) {
      const n = Math.round(p.shared_share[a]![b]! * p.neurons);
      all++;
      if (n >= 2 * bar || n <= nullMax) clean++;
    }
  }
  return all === 0 ? 0 : clean / all;
}

/**
 * How far the matched cosines stand above the threshold: 1 at 1.5 tau or more, 0 at tau. Near tau,
 * drift has pushed part of the shared neurons below the threshold, so shares and groups are
 * truncated and the structure read from them is less sure.
 */
export function matchStrength(meanMatchedCosine: number | null, tau: number): number {
  return meanMatchedCosine === null ? 0 : clip01((meanMatchedCosine - tau) / (0.5 * tau));
}

export function decideRecipe(input: RecipeVerdictInput): LayerVerdictReport {
  const { provenance: p, rule } = input;
  const E = p.shared_share.length;
  const s = p.summary;
  const strength = matchStrength(s.mean_matched_cosine, p.method.threshold);
  const purity = pairPurity(p) * (0.5 + 0.5 * strength);
  const evidence: Record<string, number | null> = {
    pairs_sharing: s.pairs_sharing,
    pairs: s.pairs,
    median_pair_share: s.median_pair_share,
    mean_pair_share: s.mean_pair_share,
    mean_matched_cosine: s.mean_matched_cosine,
    mean_kendall_tau: s.mean_kendall_tau,
    mean_identity_share: s.mean_identity_share,
    groups: p.groups.length,
    match_threshold: p.method.threshold,
    pair_purity: pairPurity(p),
    match_strength: strength,
    signal_rank_ratio: input.signalRankRatio,
    rule_confidence: rule?.confidence ?? null,
  };
  const reasons = [
    `${s.pairs_sharing} of ${s.pairs} expert pairs share neurons (>= ${p.method.min_shared} of ${p.neurons} matched above cosine ${p.method.threshold.toFixed(3)}, null alpha ${p.method.alpha}); median pair share ${pct1(s.median_pair_share)}, matched cosine ${f3(s.mean_matched_cosine)}, Kendall tau ${f3(s.mean_kendall_tau)}, same-position matches ${s.mean_identity_share === null ? '-' : pct1(s.mean_identity_share)}`,
    ...(input.signalRankRatio !== null ? [`delta rank above the storage-noise edge: ${pct1(input.signalRankRatio)} of max rank`] : []),
    ...(rule ? [`rank + cosine rule: ${rule.type} (${(100 * rule.confidence).toFixed(0)}%)`] : []),
    ...(p.pair_experts ? [`pairs among ${E} evenly spaced experts (${p.pair_experts.slice(0, 4).join(', ')}, ...), not all of the layer's: groups and unshared experts are of those`] : []),
  ];
  const base = { reasons, evidence, ...(rule ? { rank_cosine_rule: { type: rule.type, confidence: rule.confidence } } : {}) };
  const conf = (x: number): number => round3(Math.min(0.99, Math.max(0, x)));
  if (p.parent) return withParent(p, base, conf);
  const all = p.pair_experts ? [...p.pair_experts] : Array.from({ length: E }, (_, j) => j);
  if (s.pairs_sharing === 0) {
    return { ...base, type: 'native', recipe: 'native', confidence: conf(Math.min(NATIVE_WITHOUT_PARENT_CAP, 0.5 + 0.3 * purity)), reasons: [...reasons, 'no two experts share neurons; without the dense parent a disjoint split or a full re-initialisation would look the same'] };
  }
  const groups = p.groups;
  if (groups.length === 1 && groups[0]!.length === E) {
    if (s.median_pair_share >= COPY_MIN_PAIR_SHARE) {
      const identity = (s.mean_identity_share ?? 0) >= IDENTITY_MIN;
      const reinit = identity ? null : round3(Math.max(0, 1 - Math.sqrt(s.median_pair_share)));
      return {
        ...base,
        type: 'upcycled',
        recipe: identity ? 'copy' : 'permuted-copy',
        reinit_share: reinit,
        groups,
        upcycled_experts: all,
        confidence: conf(0.55 + 0.44 * purity),
        reasons: [...reasons, identity ? 'every expert is the same FFN at the same neuron positions' : `every expert holds the same neurons in a different order; re-initialised share ~ 1 - sqrt(pair share) = ${f3(reinit)}`],
      };
    }
    return { ...base, type: 'upcycled', recipe: 'split', groups, upcycled_experts: all, confidence: conf(0.4 + 0.45 * purity), reasons: [...reasons, 'all experts share a few neurons with each other (replicated, shuffled and sliced pieces of one FFN, Qwen2-style)'] };
  }
  if (groups.length === 1) {
    return { ...base, type: 'upcycled', recipe: 'partial', groups, upcycled_experts: groups[0]!, confidence: conf(0.5 + 0.45 * purity), reasons: [...reasons, `experts ${groups[0]!.join(', ')} share neurons; ${p.unshared_experts.length} experts share none (partial upcycling)`] };
  }
  return { ...base, type: 'upcycled', recipe: 'split', groups, upcycled_experts: groups.flat(), confidence: conf(0.5 + 0.45 * purity), reasons: [...reasons, `${groups.length} groups of experts share neurons within, none across: pieces of one FFN, each replicated`] };
}

function withParent(p: LayerProvenance, base: Pick<LayerVerdictReport, 'reasons' | 'evidence' | 'rank_cosine_rule'>, conf: (x: number) => number): LayerVerdictReport {
  const par = p.parent!;
  const E = par.expert_share.length; // every expert is matched against the parent, paired or not
  const from = par.experts_from_parent;
  const meanShare = from.length ? from.reduce((a, j) => a + par.expert_share[j]!, 0) / from.length : 0;
  const tau = from.map((j) => par.expert_kendall_tau[j]).filter((x): x is number => x !== null);
  const contig = from.map((j) => par.expert_contiguity[j]).filter((x): x is number => x !== null);
  const meanOf = (xs: number[]): number | null => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);
  const parentCos = meanOf(from.map((j) => par.expert_matched_cosine[j]).filter((x): x is number => x !== null));
  const evidence = { ...base.evidence, parent_neurons: par.neurons, parent_coverage: par.coverage, parent_multiplicity: par.multiplicity, parent_disjoint_share: par.disjoint_share, experts_from_parent: from.length, mean_share_in_parent: meanShare, mean_parent_kendall_tau: meanOf(tau), mean_parent_contiguity: meanOf(contig), mean_parent_matched_cosine: parentCos };
  // How cleanly experts split into "from the parent" and "not": shares far from the bar either way.
  const bar = p.method.min_shared / p.neurons;
  const clean = (par.expert_share.filter((x) => x >= 2 * bar || x <= (p.neurons * p.method.alpha + 1) / p.neurons).length / E) * (from.length ? 0.5 + 0.5 * matchStrength(parentCos, par.threshold) : 1);
  const reasons = [
    ...base.reasons,
    `dense parent ${par.source}: ${from.length} of ${E} experts found in it (mean share ${pct1(meanShare)}), parent neurons covered ${pct1(par.coverage)}, each used by ${f3(par.multiplicity)} experts on average, ${par.disjoint_share === null ? '-' : pct1(par.disjoint_share)} by exactly one; contiguity ${f3(meanOf(contig))}`,
  ];
  const out = { ...base, evidence, reasons };
  if (from.length === 0) return { ...out, type: 'native', recipe: 'native', confidence: conf(Math.min(NATIVE_WITH_PARENT_CAP, 0.6 + 0.39 * clean)), reasons: [...reasons, 'no expert inherits neurons from this parent (a re-initialisation of every neuron, Drop-Upcycling r = 1, would look the same)'] };
  const all = Array.from({ length: E }, (_, j) => j);
  if (from.length < E) return { ...out, type: 'upcycled', recipe: 'partial', upcycled_experts: from, confidence: conf(0.55 + 0.44 * clean), reasons: [...reasons, `experts ${from.join(', ')} come from the parent, the others do not (partial upcycling)`] };
  if (p.neurons < par.neurons) {
    const contiguous = (meanOf(contig) ?? 0) > 0.9;
    return {
      ...out,
      type: 'upcycled',
      recipe: 'split',
      groups: p.groups.length ? p.groups : all.map((j) => [j]),
      upcycled_experts: all,
      confidence: conf(0.55 + 0.44 * clean),
      reasons: [...reasons, `experts (${p.neurons} neurons) are pieces of the parent's ${par.neurons}: ${(par.disjoint_share ?? 0) > 0.9 ? 'disjoint pieces (partition)' : 'overlapping pieces (replicated segments)'}${contiguous ? ', cut in contiguous blocks (unshuffled)' : ', shuffled'}`],
    };
  }
  const identity = (meanOf(tau) ?? 0) >= IDENTITY_MIN && (meanOf(contig) ?? 0) >= IDENTITY_MIN;
  const reinit = identity ? null : round3(Math.max(0, 1 - meanShare));
  return {
    ...out,
    type: 'upcycled',
    recipe: identity ? 'copy' : 'permuted-copy',
    reinit_share: reinit,
    upcycled_experts: all,
    confidence: conf(0.55 + 0.44 * clean),
    reasons: [...reasons, identity ? 'every expert is the parent FFN at the same neuron positions' : `every expert is the parent FFN with its neurons permuted; re-initialised share ~ 1 - share in parent = ${f3(reinit)}`],
  };
}
