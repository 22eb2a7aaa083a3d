/** Plain-text renderings of neuron-matched provenance, in the seeds' box style. */
import type { LayerAnalysis, LayerProvenance, LayerVerdictReport, ProvenanceReport } from '../engine/report/schema';

const RULE = '='.repeat(70);
const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
const f3 = (x: number | null | undefined): string => (x === null || x === undefined ? '-' : x.toFixed(3));

/** "copy", "permuted-copy (r ~ 0.50)", "split (4 groups)", "partial (experts 0,1,2)". */
export function recipeText(v: LayerVerdictReport, short = false): string {
  if (!v.recipe) return '-';
  const r = v.reinit_share !== undefined && v.reinit_share !== null ? v.reinit_share.toFixed(2) : null;
  if (v.recipe === 'permuted-copy') return short ? `permuted${r ? ` r=${r}` : ''}` : `permuted-copy${r ? ` (re-init ~ ${r})` : ''}`;
  if (v.recipe === 'split') return `split (${v.groups?.length ?? 0} group${v.groups?.length === 1 ? '' : 's'})`;
  if (v.recipe === 'partial') return `partial (experts ${(v.upcycled_experts ?? []).join(',')})`;
  return v.recipe;
}

function groupsText(groups: readonly (readonly number[])[]): string {
  const g = groups.slice(0, 6).map((x) => `{${x.length > 8 ? `${x.slice(0, 8).join(',')},...(${x.length})` : x.join(',')}}`);
  return groups.length > 6 ? `${g.join(' ')} ... (${groups.length} groups)` : g.join(' ') || 'none';
}

/** The provenance lines of one layer (indented, for the analysis box and the provenance box). */
export function provenanceLines(p: LayerProvenance, signal?: LayerAnalysis['signal_rank']): string[] {
  const s = p.summary;
  const lines = [
    `  Neuron matching (${p.method.neuron}, ${p.neurons} neurons/expert, sketch ${p.method.sketch_dim}, threshold cos > ${p.method.threshold.toFixed(3)}):`,
    `    pairs sharing neurons:  ${s.pairs_sharing} / ${s.pairs}${p.pair_experts ? ` (among ${p.pair_experts.length} evenly spaced experts; --pair-experts)` : ''}   median share ${pct(s.median_pair_share)}   mean share ${pct(s.mean_pair_share)}`,
    `    matched cosine:         ${f3(s.mean_matched_cosine)}   Kendall tau ${f3(s.mean_kendall_tau)}   same position ${s.mean_identity_share === null ? '-' : pct(s.mean_identity_share)}`,
    `    groups:                 ${groupsText(p.groups)}${p.unshared_experts.length ? `   unshared: ${p.unshared_experts.length}` : ''}`,
  ];
  if (p.parent) {
    const par = p.parent;
    const shares = par.expert_share;
    lines.push(
      `  Dense parent (${par.neurons} neurons, threshold cos > ${par.threshold.toFixed(3)}):`,
      `    experts from parent:    ${par.experts_from_parent.length} / ${shares.length}   share in parent min ${pct(Math.min(...shares))} max ${pct(Math.max(...shares))}`,
      `    parent covered:         ${pct(par.coverage)}   experts per parent neuron ${f3(par.multiplicity)}   disjoint ${par.disjoint_share === null ? '-' : pct(par.disjoint_share)}`,
    );
  }
  if (signal) {
    const parts = Object.entries(signal).map(([k, v]) => `${k} ${v.mean.toFixed(1)} (${pct(v.ratio)})`);
    if (parts.length) lines.push(`  Rank above storage noise: ${parts.join('   ')}`);
  }
  return lines;
}

export function formatProvenance(r: ProvenanceReport): string {
  const out = [
    RULE,
    'MOE PROVENANCE',
    RULE,
    `Model:     ${r.model.source}${r.model.revision ? ` @ ${r.model.revision}` : ''}`,
    `Family:    ${r.model.family}   experts: ${r.model.num_experts}   MoE layers: ${r.model.moe_layers.length}`,
    `Parent:    ${r.parent ? r.parent.source : '(none: expert-to-expert matching only)'}`,
    `Runtime:   ${r.runtime.execution_provider.toUpperCase()} execution provider, ${r.runtime.seconds.toFixed(1)} s`,
    '',
  ];
  for (const l of r.layers) {
    out.push(`Layer ${l.name ?? l.layer}: ${l.verdict.type.toUpperCase()}, recipe ${recipeText(l.verdict)} (confidence ${(l.verdict.confidence * 100).toFixed(0)}%)`);
    out.push(...provenanceLines(l));
    for (const reason of l.verdict.reasons) out.push(`  - ${reason}`);
    out.push('');
  }
  out.push(RULE);
  return out.join('\n');
}
