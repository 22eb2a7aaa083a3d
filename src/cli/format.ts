/** Plain-text renderings of the reports, in the spirit of the seeds' boxes. */
import type { AnalysisReport, CompareReport, InfoReport, LayerAnalysis, ProjectionAnalysis } from '../engine/report/schema';
import { PROJECTIONS } from '../engine/layouts/types';
import { provenanceLines, recipeText } from './format-provenance';

const RULE = '='.repeat(70);

const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;

function rankLine(name: string, p: ProjectionAnalysis | undefined): string {
  if (!p) return `  ${name.padEnd(18)} (not analysed)`;
  const s = p.effective_rank_summary['0.95'];
  return `  ${`${name} rank (95%):`.padEnd(20)}${s.mean.toFixed(1).padStart(8)} / ${p.max_rank} (${pct(p.rank_ratio).padStart(6)})  min ${s.min}  max ${s.max}   cosine ${p.cosine.mean.toFixed(3)} (+/- ${p.cosine.std.toFixed(3)})`;
}

export function formatLayer(l: LayerAnalysis): string {
  const lines = [`Layer ${l.name ?? l.layer}: ${l.verdict.type.toUpperCase()}${l.verdict.recipe ? `, recipe ${recipeText(l.verdict)}` : ''} (confidence ${(l.verdict.confidence * 100).toFixed(0)}%)`];
  for (const p of PROJECTIONS) if (p !== 'gate' || l.projections.gate) lines.push(rankLine(p[0]!.toUpperCase() + p.slice(1), l.projections[p]));
  const any = l.projections.gate ?? l.projections.up ?? l.projections.down;
  if (any) lines.push(`  experts analysed: ${Array.isArray(any.experts_analyzed) ? any.experts_analyzed.length : any.experts_analyzed}`);
  if (l.provenance) lines.push(...provenanceLines(l.provenance, l.signal_rank));
  if (l.estimated_overlay_ratio !== null) lines.push(`  estimated overlay ratio (95% ranks, base counted): ${l.estimated_overlay_ratio.toFixed(2)}x`);
  for (const r of l.verdict.reasons) lines.push(`  - ${r}`);
  return lines.join('\n');
}

export function formatAnalysis(r: AnalysisReport): string {
  const out = [
    RULE,
    'MOE TYPE ANALYSIS',
    RULE,
    `Model:     ${r.model.source}${r.model.revision ? ` @ ${r.model.revision}` : ''}`,
    `Family:    ${r.model.family}   experts: ${r.model.num_experts}   MoE layers: ${r.model.moe_layers.length}${r.model.shared_experts ? '   (+ shared expert, not counted as routed)' : ''}`,
    `Type:      ${r.verdict.type.toUpperCase()}${r.verdict.recipe ? ` / ${r.verdict.recipe}` : ''} (confidence ${(r.verdict.confidence * 100).toFixed(0)}%, ${r.layers.length} layer${r.layers.length === 1 ? '' : 's'} analysed)`,
    `Runtime:   ${r.runtime.execution_provider.toUpperCase()} execution provider, ${r.runtime.seconds.toFixed(1)} s`,
    ...runLine(r),
    '',
  ];
  for (const l of r.layers) out.push(formatLayer(l), '');
  out.push(RULE);
  return out.join('\n');
}

/** Said only when the report is not simply one finished run: a shard, a merge, an unfinished run. */
function runLine(r: AnalysisReport): string[] {
  const s = r.status;
  if (!s) return [];
  const shard = r.options.shard ? `shard ${r.options.shard.index}/${r.options.shard.count}, ` : '';
  const merged = r.merged_from ? `merged from ${r.merged_from.length} parts, ` : '';
  if (!shard && !merged && s.state === 'complete') return [];
  return [`Run:       ${shard}${merged}${s.state}: ${s.layers_done.length} of ${s.layers_planned.length} planned layers done`];
}

function cell(s: string, w: number): string {
  return s.length > w ? s.slice(0, w) : s.padEnd(w);
}

/**
 * @param jsonWritten where the full JSON report went (-o FILE), or null: the text then points at
 *   how to get it instead of speaking of a file that was not written
 */
export function formatCompare(c: CompareReport, jsonWritten: string | null = null): string {
  const [a, b] = c.models;
  const w = 18;
  const sep = `+${'-'.repeat(24)}+${'-'.repeat(w + 2)}+${'-'.repeat(w + 2)}+`;
  const row = (k: string, x: string, y: string): string => `| ${cell(k, 22)} | ${cell(x, w)} | ${cell(y, w)} |`;
  const first = (r: AnalysisReport): LayerAnalysis | undefined => r.layers[0];
  const rank = (r: AnalysisReport, p: 'gate' | 'up' | 'down'): string => {
    const pr = first(r)?.projections[p];
    return pr ? `${pr.effective_rank_summary['0.95'].mean.toFixed(0)}/${pr.max_rank} (${pct(pr.rank_ratio)})` : '-';
  };
  const cos = (r: AnalysisReport): string => {
    const l = first(r);
    if (!l) return '-';
    const v = PROJECTIONS.map((p) => l.projections[p]?.cosine.mean).filter((x): x is number => x !== undefined);
    return (v.reduce((s, x) => s + x, 0) / v.length).toFixed(3);
  };
  const ratio = (r: AnalysisReport): string => {
    const x = first(r)?.estimated_overlay_ratio;
    return x === null || x === undefined ? 'No' : `Yes (${x.toFixed(1)}x)`;
  };
  const prov = (r: AnalysisReport, f: (p: NonNullable<LayerAnalysis['provenance']>) => string): string => {
    const p = first(r)?.provenance;
    return p ? f(p) : '-';
  };
  const fx = (x: number | null): string => (x === null ? '-' : x.toFixed(2));
  const sig = (r: AnalysisReport): string => {
    const s = first(r)?.signal_rank?.gate ?? first(r)?.signal_rank?.up;
    return s ? `${s.mean.toFixed(1)} (${pct(s.ratio)})` : '-';
  };
  return [
    RULE,
    'MOE TYPE COMPARISON',
    RULE,
    sep,
    row('Metric', name(a), name(b)),
    sep,
    row('Type', `${a.verdict.type.toUpperCase()} ${(a.verdict.confidence * 100).toFixed(0)}%`, `${b.verdict.type.toUpperCase()} ${(b.verdict.confidence * 100).toFixed(0)}%`),
    row('Family', a.model.family, b.model.family),
    row('Experts', String(a.model.num_experts), String(b.model.num_experts)),
    row('Layer', String(first(a)?.name ?? first(a)?.layer ?? '-'), String(first(b)?.name ?? first(b)?.layer ?? '-')),
    row('Gate rank (95%)', rank(a, 'gate'), rank(b, 'gate')),
    row('Up rank (95%)', rank(a, 'up'), rank(b, 'up')),
    row('Down rank (95%)', rank(a, 'down'), rank(b, 'down')),
    row('Cosine (mean of projs)', cos(a), cos(b)),
    row('Compressible', ratio(a), ratio(b)),
    row('Recipe', first(a) ? recipeText(first(a)!.verdict, true) : '-', first(b) ? recipeText(first(b)!.verdict, true) : '-'),
    row('Pairs sharing neurons', prov(a, (p) => `${p.summary.pairs_sharing}/${p.summary.pairs}`), prov(b, (p) => `${p.summary.pairs_sharing}/${p.summary.pairs}`)),
    row('Median pair share', prov(a, (p) => pct(p.summary.median_pair_share)), prov(b, (p) => pct(p.summary.median_pair_share))),
    row('Matched cos / tau', prov(a, (p) => `${fx(p.summary.mean_matched_cosine)} / ${fx(p.summary.mean_kendall_tau)}`), prov(b, (p) => `${fx(p.summary.mean_matched_cosine)} / ${fx(p.summary.mean_kendall_tau)}`)),
    row('Expert groups', prov(a, (p) => String(p.groups.length)), prov(b, (p) => String(p.groups.length))),
    row('Gate rank > noise edge', sig(a), sig(b)),
    sep,
    ...(a.layers.length > 1 || b.layers.length > 1
      ? [`(table shows the first analysed layer; per-layer results are in ${jsonWritten !== null ? `the JSON report ${jsonWritten}` : 'the JSON report: add -o FILE or --json'})`]
      : []),
  ].join('\n');
}

function name(r: AnalysisReport): string {
  const parts = r.model.source.replace(/[\\/]+$/, '').split(/[\\/]/);
  return parts[parts.length - 1] ?? r.model.source;
}

export function formatInfo(r: InfoReport): string {
  const gb = (b: number): string => (b >= 1e9 ? `${(b / 1e9).toFixed(2)} GB` : `${(b / 1e6).toFixed(2)} MB`);
  const lines = [`Model:        ${r.source}${r.revision ? ` @ ${r.revision}` : ''}`, `Family:       ${r.family}`];
  if (r.moe_error) {
    // --headers-only on a model whose experts were not resolved: say why, in words, instead of "0 experts".
    lines.push(`Experts:      not resolved (headers only): ${r.moe_error.message}`);
  } else {
    lines.push(
      `Experts:      ${r.num_experts} routed${r.shared_experts.present ? ` (+ shared expert: ${r.shared_experts.tensors} tensors)` : ''}`,
      `MoE layers:   ${r.moe_layers.length}${r.num_layers !== null ? ` of ${r.num_layers}` : ''}: ${r.moe_layer_names.join(',')}`,
    );
    const groups = r.layer_groups.length > 1 ? r.layer_groups : [{ group: null, num_experts: r.num_experts, moe_layers: r.moe_layers, projections: r.projections }];
    for (const g of groups) {
      if (g.group !== null) lines.push(`  group ${g.group}: ${g.num_experts} experts, layers ${g.moe_layers.join(',')}`);
      for (const p of PROJECTIONS) {
        const x = g.projections[p];
        if (x) lines.push(`  ${g.group !== null ? '  ' : ''}${p.padEnd(5)} [${x.shape.join(', ')}]  ${x.encoding}`);
      }
      if (!g.projections.gate) lines.push(`  ${g.group !== null ? '  ' : ''}(no gate projection: the experts are up -> activation -> down)`);
    }
  }
  lines.push(`Parameters:   ${r.parameters.total.toLocaleString('en-US')} total, ${r.parameters.routed_experts.toLocaleString('en-US')} in routed experts, ${r.parameters.other.toLocaleString('en-US')} other`);
  lines.push('Dtypes:');
  for (const [d, v] of Object.entries(r.dtypes)) lines.push(`  ${d.padEnd(12)} ${String(v.tensors).padStart(6)} tensors  ${gb(v.bytes)}`);
  lines.push(`Files:        ${r.files.length}, ${gb(r.total_bytes)} in all`);
  return lines.join('\n');
}
