/**
 * overlay compute: per selected layer and projection, base = mean expert and each delta's truncated
 * SVD at the chosen ranks; optionally saved (overlay-store.ts). Errors here come from the spectrum.
 */
import type { Checkpoint } from '../model/checkpoint';
import { PROJECTIONS, type MoeModel, type Projection } from '../layouts/types';
import type { OverlayProjectionReport, OverlayReport } from '../report/schema';
import type { LayerSelection } from '../../shared/messages';
import { selectLayers } from '../analysis/layer-selection';
import { computeLayerOverlay, recordingErrors } from './compute-layer';
import type { DeltaSolver } from './delta-solver';
import { expertBiasTensors } from './byte-accounting';
import { OverlayWriter } from './overlay-store';
import { encodingName, layerBytes, modelHeader, overlaySteps, progressStep, ratioOf, type ProgressSink } from './report-parts';
import { RunTracker } from '../analysis/run-tracker';
import type { OverlayDtype, RankRule } from './types';
import { gatedProjections } from './gated';

export interface ComputeOptions {
  readonly layers: LayerSelection;
  readonly rule: RankRule;
  readonly overlayDtype: OverlayDtype;
  readonly saveDir?: string;
  readonly signal?: AbortSignal;
  readonly onProgress?: ProgressSink;
  /** Bytes of the checkpoint read so far (countingCheckpoint), for progress. */
  readonly bytesRead?: () => number;
}

export async function overlayCompute(ckpt: Checkpoint, model: MoeModel, solver: DeltaSolver, opts: ComputeOptions): Promise<OverlayReport> {
  const layouts = selectLayers(model, opts.layers);
  const tracker = new RunTracker(layouts.length, opts.bytesRead);
  const writer = opts.saveDir ? await OverlayWriter.begin(opts.saveDir, { ckpt, family: model.family, numExperts: model.numExperts }, opts.overlayDtype, opts.rule) : null;
  try {
    const layers: OverlayReport['layers'][number][] = [];
    for (const [i, layout] of layouts.entries()) {
      const bytes0 = layerBytes(ckpt, layout, { gate: 0, up: 0, down: 0 }, opts.overlayDtype);
      const overlay = await computeLayerOverlay(model, layout.layer, solver, {
        rule: opts.rule,
        overlayDtype: opts.overlayDtype,
        originalBytes: bytes0.original,
        ...(opts.signal ? { signal: opts.signal } : {}),
        onStep: progressStep(opts.onProgress, 'overlay', i, layouts.length, { tracker, layer: layout.layer, steps: overlaySteps(opts.rule, PROJECTIONS.length) }),
      });
      // Each expert's factors are solved once, written (or only measured) and dropped.
      const recorded = recordingErrors(overlay);
      if (writer) await writer.writeLayer(recorded.overlay, [...expertBiasTensors(layout), ...layout.routerTensors]);
      else for (const p of PROJECTIONS) for (let j = 0; j < overlay.numExperts; j++) await recorded.overlay.expert(p, j);
      const bytes = layerBytes(ckpt, layout, overlay.ranks, opts.overlayDtype);
      const projections = {} as Record<Projection, OverlayProjectionReport>;
      for (const p of PROJECTIONS) {
        projections[p] = {
          rank: overlay.ranks[p],
          original_bytes: bytes.original[p],
          overlay_bytes: bytes.overlay[p],
          relative_error: recorded.errors[p].relativeError,
          energy_kept: recorded.errors[p].energyKept,
          output_error: null,
          shape: gatedProjections(layout)[p].shape as [number, number],
          encoding: encodingName(gatedProjections(layout)[p].encoding),
          error_source: 'spectrum',
        };
      }
      tracker.layerDone();
      layers.push({ layer: layout.layer, projections, ranks: overlay.ranks, original_bytes: bytes.originalTotal, overlay_bytes: bytes.overlayTotal, ratio: ratioOf(bytes.originalTotal, bytes.overlayTotal) });
    }
    const saved = writer ? await writer.commit() : null;
    const original = layers.reduce((a, l) => a + l.original_bytes!, 0);
    const overlayBytes = layers.reduce((a, l) => a + l.overlay_bytes!, 0);
    const ratio = ratioOf(original, overlayBytes);
    return {
      schema: 'moe-inspector/overlay@1',
      model: modelHeader(ckpt, model),
      mode: 'compute',
      layers,
      totals: { original_bytes: original, overlay_bytes: overlayBytes, ratio, scope: 'expert-weights' },
      options: { rank_rule: opts.rule, overlay_dtype: opts.overlayDtype },
      compressible: ratio > 1,
      ...(ratio > 1 ? {} : { note: notCompressibleNote(original, overlayBytes) }),
      ...(saved && opts.saveDir ? { saved: { dir: opts.saveDir, files: [...saved.layers.map((l) => l.file), 'overlay-manifest.json'] } } : {}),
    };
  } catch (e) {
    await writer?.abort();
    throw e;
  }
}

export function notCompressibleNote(original: number, overlay: number): string {
  return `not compressible: the overlay (${overlay} bytes) is not smaller than the stored expert weights (${original} bytes); ratio ${(original / overlay).toFixed(3)} <= 1, so no compression figure is claimed`;
}
