/**
 * Joins a layer's provenance pass (src/engine/provenance) to its spectra: the rank above the
 * storage-noise edge per projection, and the verdict with recipe.
 */
import { PROJECTIONS, type Projection } from '../layouts/types';
import { signalRank } from '../provenance/noise-edge';
import type { AnalysisReport, LayerAnalysis, LayerProvenance, Recipe } from '../report/schema';
import { decideRecipe } from './verdict';

type SignalRanks = NonNullable<LayerAnalysis['signal_rank']>;

export function signalRanks(layer: LayerAnalysis, prov: LayerProvenance): SignalRanks {
  const out: Partial<Record<Projection, SignalRanks[Projection]>> = {};
  for (const p of PROJECTIONS) {
    const pa = layer.projections[p];
    const edge = prov.noise[p]?.edge ?? null;
    if (!pa || edge === null) continue;
    const per = pa.singular_values.map((s) => signalRank(s, edge, pa.singular_value_index));
    const m = per.reduce((a, b) => a + b, 0) / Math.max(1, per.length);
    out[p] = { edge, per_expert: per, mean: m, ratio: m / pa.max_rank };
  }
  return out;
}

/** The layer with its provenance, signal ranks and the verdict with recipe (the rank + cosine rule kept beside it). */
export function withProvenance(layer: LayerAnalysis, prov: LayerProvenance | undefined): LayerAnalysis {
  if (!prov) return layer;
  const signal = signalRanks(layer, prov);
  const ratio = (signal.gate ?? signal.up)?.ratio ?? null;
  const decided = decideRecipe({ provenance: prov, rule: layer.verdict, signalRankRatio: ratio });
  // Experts without a gate: say so in the verdict's own words, as the rank/cosine rule does.
  const gateless = layer.projections.gate === undefined ? ['the experts have no gate projection: neurons are (up row, down column) and the rank tests use up'] : [];
  const verdict = { ...decided, reasons: [...decided.reasons, ...gateless] };
  return { ...layer, verdict, provenance: prov, signal_rank: signal };
}

/** The model's recipe: the most frequent recipe among the layers that carry the model's verdict type. */
export function modelRecipe(r: Pick<AnalysisReport, 'layers' | 'verdict'>): Recipe | undefined {
  const counts = new Map<Recipe, number>();
  for (const l of r.layers) if (l.verdict.type === r.verdict.type && l.verdict.recipe) counts.set(l.verdict.recipe, (counts.get(l.verdict.recipe) ?? 0) + 1);
  return [...counts.entries()].sort((a, b) => b[1] - a[1])[0]?.[0];
}

/** The model verdict with the model's recipe added where the layers carry one (one place: single, resumed and merged runs). */
export function withRecipe(v: AnalysisReport['verdict'], layers: readonly LayerAnalysis[]): AnalysisReport['verdict'] {
  const recipe = modelRecipe({ verdict: v, layers });
  return recipe ? { ...v, recipe } : v;
}
