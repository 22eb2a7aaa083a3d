/**
 * `moe-inspect merge`: shard reports of one model -> the report one run over all their layers would
 * have written. Refuses parts of different runs (model, revision, fingerprint, options other than the
 * layer selection and shard, program version), layers present in two parts, and (unless allowed)
 * unfinished parts or parts that do not cover the layers their selections plan. The verdict is
 * recomputed by assembleAnalysis, the same code a single run ends with.
 */
import { MoeInspectorError } from '../errors';
import { reportMoeLayers, selectFrom, selectionFromRecord } from '../analysis/layer-selection';
import { assembleAnalysis, asAnalysisReport, describeStatus } from './analysis-run';
import { formatLayerIds, layerIdOf, layerKey, type LayerId } from './layer-id';
import { runDifferences } from './run-identity';
import type { AnalysisReport, LayerAnalysis, MergedPart } from './schema';
import { canonicalJson } from '../io/json-file';

export interface MergePart {
  readonly file: string;
  /** The parsed JSON of the file (checked here). */
  readonly report: unknown;
}

export interface MergeOptions {
  /** Merge unfinished parts and parts that leave planned layers out (the result's state is then "partial"). */
  readonly allowIncomplete?: boolean;
}

/** Options that may differ between parts: they choose which layers a part did. */
const PER_PART_OPTIONS = ['layers', 'shard'] as const;

export function mergeAnalysisReports(inputs: readonly MergePart[], opts: MergeOptions = {}): AnalysisReport {
  if (inputs.length === 0) throw new MoeInspectorError('usage', 'merge needs at least one report');
  const parts = inputs.map((p) => ({ file: p.file, report: asAnalysisReport(p.report, p.file) }));
  const first = parts[0]!;
  for (const p of parts.slice(1)) {
    const diffs = runDifferences(first.report, p.report, { ignoreOptions: PER_PART_OPTIONS, labels: [first.file, p.file] });
    if (diffs.length > 0) throw new MoeInspectorError('usage', `not parts of one run: ${diffs.join('; ')}`, { file: p.file });
  }
  for (const p of parts) {
    if (p.report.status!.state !== 'complete' && !opts.allowIncomplete) {
      throw new MoeInspectorError('usage', `unfinished part (${describeStatus(p.report.status!)}): finish it with --resume, or pass --allow-incomplete to merge what it has`, { file: p.file });
    }
  }
  const layers = collectLayers(parts);
  const planned = plannedLayers(parts);
  const have = new Set(layers.map((l) => layerKey(layerIdOf(l))));
  const missing = planned.filter((id) => !have.has(layerKey(id)));
  if (missing.length > 0 && !opts.allowIncomplete) {
    throw new MoeInspectorError('usage', `the parts leave out planned layers ${formatLayerIds(missing)} (a shard missing?); pass --allow-incomplete to merge anyway`);
  }
  const reports = parts.map((p) => p.report);
  const merged = assembleAnalysis(
    {
      schema: first.report.schema,
      program: first.report.program!,
      model: first.report.model,
      options: { ...first.report.options, layers: commonSelection(reports) ?? [...planned], shard: null },
    },
    layers,
    planned,
    missing.length === 0 && reports.every((r) => r.status!.state === 'complete') ? 'complete' : 'partial',
    mergedRuntime(reports),
  );
  return { ...merged, merged_from: parts.map(({ file, report }) => partRecord(file, report)) };
}

/** Every part's layers; a layer in two parts is refused (which result would be the right one?). */
function collectLayers(parts: readonly { file: string; report: AnalysisReport }[]): LayerAnalysis[] {
  const owner = new Map<string, string>();
  const layers: LayerAnalysis[] = [];
  for (const { file, report } of parts) {
    for (const l of report.layers) {
      const key = layerKey(layerIdOf(l));
      const other = owner.get(key);
      if (other !== undefined) throw new MoeInspectorError('usage', `layer ${key} is in two parts: ${other} and ${file}; merge parts of disjoint layers (different --shard indices or --layers)`, { file });
      owner.set(key, file);
      layers.push(l);
    }
  }
  return layers;
}

/**
 * What the parts set out to cover, in model order: a shard's whole selection (all its shards together
 * plan that), an unsharded part's own plan.
 */
function plannedLayers(parts: readonly { file: string; report: AnalysisReport }[]): LayerId[] {
  const moeLayers = reportMoeLayers(parts[0]!.report.model);
  const wanted = new Set<string>();
  for (const { file, report } of parts) {
    const sel = report.options.layers;
    const plan = report.options.shard && sel !== undefined ? selectFrom(moeLayers, selectionFromRecord(sel), file).map(layerIdOf) : report.status!.layers_planned;
    for (const id of plan) wanted.add(layerKey(id));
  }
  return moeLayers.map(layerIdOf).filter((id) => wanted.has(layerKey(id)));
}

/** The parts' layer selection when they all share one (shards of one selection), else null. */
function commonSelection(reports: readonly AnalysisReport[]): AnalysisReport['options']['layers'] | null {
  const sels = new Set(reports.map((r) => canonicalJson(r.options.layers)));
  return sels.size === 1 ? (reports[0]!.options.layers ?? null) : null;
}

function mergedRuntime(reports: readonly AnalysisReport[]): AnalysisReport['runtime'] {
  const sum = (f: (r: AnalysisReport) => number | undefined): number => reports.reduce((a, r) => a + (f(r) ?? 0), 0);
  const read = reports.some((r) => r.runtime.bytes_read !== undefined);
  const providers = [...new Set(reports.flatMap((r) => r.runtime.execution_providers ?? [r.runtime.execution_provider]))];
  return {
    execution_provider: reports[0]!.runtime.execution_provider,
    seconds: sum((r) => r.runtime.seconds),
    ...(reports[0]!.runtime.checkpoint_bytes !== undefined ? { checkpoint_bytes: reports[0]!.runtime.checkpoint_bytes } : {}),
    ...(read ? { bytes_read: sum((r) => r.runtime.bytes_read) } : {}),
    execution_providers: providers,
  };
}

function partRecord(file: string, r: AnalysisReport): MergedPart {
  return {
    file,
    layers: r.layers.map(layerIdOf),
    shard: r.options.shard ?? null,
    execution_provider: r.runtime.execution_provider,
    seconds: r.runtime.seconds,
  };
}
