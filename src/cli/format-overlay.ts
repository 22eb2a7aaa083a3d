/** Plain-text rendering of an overlay report (compute, verify or estimate). */
import { PROJECTIONS } from '../engine/layouts/types';
import type { OverlayReport } from '../engine/report/schema';

const RULE = '='.repeat(78);

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v.toFixed(0) : v.toFixed(2)} ${units[u]}`;
}

const ratio = (r: number): string => (Number.isFinite(r) ? `${r.toFixed(2)}x` : 'n/a');
const stats = (xs: readonly number[]): string => (xs.length === 0 ? 'not measured' : `mean ${(xs.reduce((a, b) => a + b, 0) / xs.length).toExponential(2)}  max ${Math.max(...xs).toExponential(2)}`);

function ruleText(r: OverlayReport): string {
  const rule = r.options?.rank_rule as { kind: string; energy?: number; ratio?: number; gate?: number; up?: number; down?: number } | undefined;
  if (!rule) return 'n/a';
  if (rule.kind === 'energy') return `energy ${rule.energy}: smallest rank where every expert keeps it`;
  if (rule.kind === 'target-ratio') return `target ratio ${rule.ratio}x per projection`;
  return `fixed gate ${rule.gate} / up ${rule.up} / down ${rule.down}`;
}

/** Below this share of delta energy kept by some expert, compute's figures come with a warning. */
export const LOW_ENERGY_KEPT = 0.9;
/** The verdict's native rule: a 95%-energy rank above this share of the maximum rank. */
const NATIVE_RANK_SHARE = 0.5;

type OverlayLayer = OverlayReport['layers'][number];

/** What the weight error includes: computed from the spectrum (exact factors) or rebuilt from stored ones. */
function errorLabel(source: 'spectrum' | 'reconstruction' | undefined, dtype: string): string {
  if (source === 'reconstruction') return `weight error (rebuilt from the ${dtype} overlay, so its storage rounding included)`;
  return `weight error (exact float32 factors, before rounding to ${dtype})`;
}

function layerRatio(l: OverlayLayer): string {
  const x = l.ratio ?? NaN;
  return Number.isFinite(x) && x <= 1 ? `${ratio(x)}: no compression` : ratio(x);
}

/** Warnings that keep a ratio from being read alone: experts that lose much energy, layers that look native. */
function layerWarnings(r: OverlayReport, l: OverlayLayer): string[] {
  const lowEnergy: string[] = [];
  const native: string[] = [];
  const rule = (r.options?.rank_rule as { kind?: string } | undefined)?.kind;
  for (const p of PROJECTIONS) {
    const pr = l.projections[p];
    if (!pr) continue;
    const kept = pr.energy_kept.length > 0 ? Math.min(...pr.energy_kept) : 1;
    if (kept < LOW_ENERGY_KEPT) lowEnergy.push(`${(100 * kept).toFixed(1)}% (${p}, rank ${pr.rank})`);
    const maxRank = pr.shape ? Math.min(...pr.shape) : 0;
    // Only the energy rule measures what the experts need; fixed or ratio-driven ranks are the user's choice.
    if (rule === 'energy' && maxRank > 0 && pr.rank / maxRank > NATIVE_RANK_SHARE) native.push(`${p} rank ${pr.rank} of ${maxRank} (${((100 * pr.rank) / maxRank).toFixed(0)}%)`);
  }
  const out: string[] = [];
  if (native.length > 0) {
    out.push(`warning: layer ${l.layer} looks native: to keep that energy it needs ${native.join(', ')}, above the ${100 * NATIVE_RANK_SHARE}% of a native layer; an overlay does not suit it`);
  }
  if (lowEnergy.length > 0) {
    out.push(`warning: layer ${l.layer}: an expert keeps only ${lowEnergy.join(', ')} of its delta energy, below ${100 * LOW_ENERGY_KEPT}%: the ${ratio(l.ratio ?? NaN)} comes with a large weight error; raise the ranks or use --energy`);
  }
  return out;
}

export function formatOverlay(r: OverlayReport): string {
  const dtype = r.options?.overlay_dtype ?? '?';
  const out = [
    RULE,
    `MOE OVERLAY ${r.mode.toUpperCase()}`,
    RULE,
    `Model:     ${r.model.source}${r.model.revision ? ` @ ${r.model.revision}` : ''}   (${r.model.family})`,
    `Ranks:     ${ruleText(r)}   overlay dtype ${r.options?.overlay_dtype ?? '?'}`,
  ];
  if (r.mode === 'verify' && r.options) {
    out.push(`Inputs:    ${r.options.tokens} seeded tokens, N(0,1) per element, seed ${r.options.seed}${r.options.inputs_file ? `; and ${r.options.inputs_file}` : ''}`);
    if (r.options.overlay_dir) out.push(`Overlay:   ${r.options.overlay_dir}`);
  }
  out.push('');
  for (const l of r.layers) {
    out.push(`Layer ${l.layer}: ${formatBytes(l.original_bytes ?? 0)} -> ${formatBytes(l.overlay_bytes ?? 0)} (${layerRatio(l)})`);
    for (const p of PROJECTIONS) {
      const pr = l.projections[p];
      if (!pr) continue;
      const shape = pr.shape ? `[${pr.shape.join('x')}]` : '';
      out.push(`  ${p.padEnd(5)} ${shape.padEnd(12)} rank ${String(pr.rank).padStart(5)}  ${pr.encoding ?? ''}`);
      out.push(`        ${errorLabel(pr.error_source, dtype)} ${stats(pr.relative_error)}`);
      out.push(`        delta energy kept min ${pr.energy_kept.length ? Math.min(...pr.energy_kept).toFixed(4) : 'n/a'}`);
      if (pr.output_error) out.push(`        output error (this projection only) mean ${pr.output_error.mean.toExponential(2)} max ${pr.output_error.max.toExponential(2)}`);
    }
    const eo = l.expert_output_error;
    if (eo?.seeded) out.push(`  expert output error (seeded):  mean ${eo.seeded.mean.toExponential(2)}  max ${eo.seeded.max.toExponential(2)}`);
    if (eo?.inputs_file) out.push(`  expert output error (--inputs): mean ${eo.inputs_file.mean.toExponential(2)}  max ${eo.inputs_file.max.toExponential(2)}`);
    if (l.output_error_note) out.push(`  ${l.output_error_note}`);
    if (r.mode !== 'verify') out.push(...layerWarnings(r, l).map((w) => `  ${w}`));
  }
  out.push('');
  if (r.non_expert_bytes) {
    out.push('Kept as stored (not routed expert weights):');
    for (const [k, v] of Object.entries(r.non_expert_bytes)) if (v > 0) out.push(`  ${k.padEnd(16)} ${formatBytes(v)}`);
    if (r.expert_bytes) out.push(`Routed experts:    ${formatBytes(r.expert_bytes.original)} -> ${formatBytes(r.expert_bytes.overlay)} (${ratio(r.expert_bytes.original / r.expert_bytes.overlay)})`);
  }
  const scope = r.totals.scope === 'whole-model' ? 'whole model' : 'expert weights of these layers';
  out.push(`Total (${scope}): ${formatBytes(r.totals.original_bytes)} -> ${formatBytes(r.totals.overlay_bytes)} (${ratio(r.totals.ratio)})`);
  if (r.compressible === false || r.note) out.push(r.note ?? 'not compressible');
  if (r.verification) {
    const v = r.verification;
    out.push(`Verify:    ${v.passed ? 'PASS' : 'FAIL'}  worst ${v.criterion.replace('_', ' ')} ${v.worst.toExponential(3)} vs --max-error ${v.max_error}`);
  }
  if (r.saved) out.push(`Saved:     ${r.saved.dir} (${r.saved.files.join(', ')})`);
  if (r.runtime) out.push(`Runtime:   ${r.runtime.execution_provider.toUpperCase()}, ${r.runtime.seconds.toFixed(1)} s`);
  out.push(RULE);
  return out.join('\n');
}
