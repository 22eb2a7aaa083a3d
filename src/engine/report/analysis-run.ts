/**
 * An analysis report assembled from whichever layers are done: after every layer of a run, at its end,
 * after `--resume`, and by `merge`. The model verdict is always recomputed here, from every completed
 * layer in model order, with the one verdict rule (verdict.ts), so a resumed or merged report says
 * exactly what one uninterrupted run would have said (the recipe included, where layers carry provenance).
 */
import { MoeInspectorError } from '../errors';
import { modelVerdict } from '../analysis/verdict';
import { withRecipe } from '../analysis/with-provenance';
import { inLayerOrder, layerIdOf, layerKey, type LayerId, type LayerLike } from './layer-id';
import type { AnalysisReport, LayerAnalysis, RunState, RunStatus } from './schema';

/** Everything of a report but its results: known before the first layer is done. */
export type AnalysisHeader = Pick<AnalysisReport, 'schema' | 'program' | 'model' | 'options'>;

export function assembleAnalysis(
  header: AnalysisHeader,
  layers: readonly LayerAnalysis[],
  planned: readonly LayerId[],
  state: RunState,
  runtime: AnalysisReport['runtime'],
): AnalysisReport {
  const ordered = inLayerOrder(layers, header.model.moe_layers);
  return {
    schema: header.schema,
    status: runStatus(state, planned, ordered),
    ...(header.program ? { program: header.program } : {}),
    model: header.model,
    options: header.options,
    verdict: withRecipe(modelVerdict(ordered.map((l) => l.verdict)), ordered),
    runtime,
    layers: ordered,
  };
}

export function runStatus(state: RunState, planned: readonly LayerId[], done: readonly LayerLike[]): RunStatus {
  return { state, layers_planned: [...planned], layers_done: done.map(layerIdOf) };
}

/** The planned layers that are not among `done`, in plan order. */
export function layersToDo(planned: readonly LayerId[], done: readonly LayerLike[]): LayerId[] {
  const have = new Set(done.map((l) => layerKey(layerIdOf(l))));
  return planned.filter((id) => !have.has(layerKey(id)));
}

/**
 * A report whose layers travelled separately (as the worker's partial messages) made whole again:
 * the layers `status.layers_done` names, in that order. A layer missing is an internal error.
 */
export function withLayers(report: AnalysisReport, received: readonly LayerAnalysis[]): AnalysisReport {
  const byKey = new Map(received.map((l) => [layerKey(layerIdOf(l)), l]));
  const layers = (report.status?.layers_done ?? []).map((id) => {
    const l = byKey.get(layerKey(id));
    if (!l) throw new Error(`internal error: layer ${layerKey(id)} of the report never arrived from the worker`);
    return l;
  });
  return { ...report, layers };
}

/** "2 of 6 layers done, interrupted" */
export function describeStatus(s: RunStatus): string {
  return `${s.layers_done.length} of ${s.layers_planned.length} layers done, ${s.state}`;
}

/**
 * A parsed JSON value checked to be an analysis report with what resume and merge rely on; the
 * message names the file and what is missing.
 */
export function asAnalysisReport(raw: unknown, file: string): AnalysisReport {
  const r = raw as Partial<AnalysisReport> | null;
  if (typeof r !== 'object' || r === null || r.schema !== 'moe-inspector/analysis@1') {
    const schema = typeof r === 'object' && r !== null && typeof r.schema === 'string' ? `"${r.schema}"` : 'none';
    throw new MoeInspectorError('format', `not an analysis report (schema ${schema}, expected "moe-inspector/analysis@1")`, { file });
  }
  const missing = (['model', 'options', 'layers', 'runtime'] as const).filter((k) => typeof r[k] !== 'object' || r[k] === null);
  if (missing.length > 0) throw new MoeInspectorError('format', `analysis report without ${missing.join(', ')}`, { file });
  if (!r.program || !r.status || !r.model!.fingerprint) {
    throw new MoeInspectorError('format', 'this report has no run identity (program, status, model fingerprint): it was written before resumable runs; run the analysis again', { file });
  }
  return r as AnalysisReport;
}
