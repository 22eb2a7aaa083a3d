/**
 * overlay verify: rebuild every expert of the selected layers from an overlay (computed now at the
 * chosen ranks, or read from a saved folder) and measure weight and expert-output errors (see
 * verify-layer.ts). Passes when the worst expert output error is <= maxError (default 0.01); where
 * the family's activation cannot be run, the worst relative weight error is held to it instead.
 * A freshly computed overlay is rounded to --overlay-dtype first: verify measures what would be stored.
 */
import { MoeInspectorError } from '../errors';
import type { Checkpoint } from '../model/checkpoint';
import { PROJECTIONS, type MoeLayerLayout, type MoeModel, type Projection } from '../layouts/types';
import type { ComputeBackend } from '../numerics/backend';
import type { OverlayProjectionReport, OverlayReport } from '../report/schema';
import type { LayerSelection } from '../../shared/messages';
import { selectLayers } from '../analysis/layer-selection';
import { computeLayerOverlay } from './compute-layer';
import type { DeltaSolver } from './delta-solver';
import { readLayerOverlay, readManifest, roundLayerOverlay, type OverlayManifest } from './overlay-store';
import { encodingName, layerBytes, modelHeader, overlaySteps, progressStep, ratioOf, type ProgressSink } from './report-parts';
import { RunTracker } from '../analysis/run-tracker';
import type { LayerOverlay, OverlayDtype, RankRule } from './types';
import { inputsFromFile, seededInputs, DEFAULT_VERIFY_SEED, DEFAULT_VERIFY_TOKENS } from './verify-inputs';
import { verifyLayerOverlay, type InputSet, type LayerVerification } from './verify-layer';
import { gatedProjections } from './gated';

export const DEFAULT_MAX_ERROR = 0.01;

export interface VerifyOptions {
  readonly layers: LayerSelection;
  readonly rule: RankRule;
  readonly overlayDtype: OverlayDtype;
  /** Verify a saved overlay instead of computing one (its ranks and dtype then apply). */
  readonly overlayDir?: string;
  readonly inputsFile?: string;
  readonly seed?: number;
  readonly maxError?: number;
  readonly signal?: AbortSignal;
  readonly onProgress?: ProgressSink;
  /** Bytes of the checkpoint read so far (countingCheckpoint), for progress. */
  readonly bytesRead?: () => number;
}

export async function overlayVerify(ckpt: Checkpoint, model: MoeModel, solver: DeltaSolver, backend: ComputeBackend, opts: VerifyOptions): Promise<OverlayReport> {
  const maxError = opts.maxError ?? DEFAULT_MAX_ERROR;
  if (!(maxError >= 0)) throw new MoeInspectorError('usage', `--max-error must be >= 0, got ${maxError}`);
  const manifest = opts.overlayDir ? await readManifest(opts.overlayDir) : null;
  const layouts = manifest ? overlayLayers(model, manifest, opts.layers, opts.overlayDir!) : selectLayers(model, opts.layers);
  const dtype = manifest?.dtype ?? opts.overlayDtype;
  const hidden = layouts[0]!.projections.up.shape[1];
  const seed = opts.seed ?? DEFAULT_VERIFY_SEED;
  const inputs: InputSet[] = [{ label: 'seeded', batch: seededInputs(hidden, seed) }];
  if (opts.inputsFile) inputs.push({ label: 'file', batch: await inputsFromFile(opts.inputsFile, hidden) });

  const tracker = new RunTracker(layouts.length, opts.bytesRead);
  const layers: OverlayReport['layers'][number][] = [];
  let worstOutput = 0;
  let worstWeight = 0;
  let outputMeasured = false;
  for (const [i, layout] of layouts.entries()) {
    const step = progressStep(opts.onProgress, 'verify', i, layouts.length, { tracker, layer: layout.layer, steps: manifest ? 1 : overlaySteps(opts.rule, 1) });
    // A computed overlay solves each expert's factors when verify reaches that expert; a saved one reads them then.
    const saved = manifest ? await readLayerOverlay(opts.overlayDir!, manifest, layout.layer) : null;
    const overlay: LayerOverlay =
      saved ??
      roundLayerOverlay(await computeLayerOverlay(model, layout.layer, solver, {
        rule: opts.rule,
        overlayDtype: dtype,
        originalBytes: layerBytes(ckpt, layout, { gate: 0, up: 0, down: 0 }, dtype).original,
        ...(opts.signal ? { signal: opts.signal } : {}),
        onStep: step,
      }), dtype);
    let v: LayerVerification;
    try {
      v = await verifyLayerOverlay(model, overlay, backend, inputs, { ...(opts.signal ? { signal: opts.signal } : {}), onStep: step });
    } finally {
      await saved?.close();
    }
    for (const p of PROJECTIONS) worstWeight = Math.max(worstWeight, ...v.projections[p].relative_error);
    if (v.expert_output_error) {
      outputMeasured = true;
      for (const s of Object.values(v.expert_output_error)) worstOutput = Math.max(worstOutput, s.max);
    }
    tracker.layerDone();
    layers.push(layerReport(ckpt, layout, overlay, v, dtype));
  }
  const criterion = outputMeasured ? 'output_error' : 'weight_error';
  const worst = outputMeasured ? worstOutput : worstWeight;
  const original = layers.reduce((a, l) => a + l.original_bytes!, 0);
  const overlayBytes = layers.reduce((a, l) => a + l.overlay_bytes!, 0);
  return {
    schema: 'moe-inspector/overlay@1',
    model: modelHeader(ckpt, model),
    mode: 'verify',
    layers,
    totals: { original_bytes: original, overlay_bytes: overlayBytes, ratio: ratioOf(original, overlayBytes), scope: 'expert-weights' },
    options: {
      rank_rule: manifest?.rank_rule ?? opts.rule,
      overlay_dtype: dtype,
      seed,
      tokens: DEFAULT_VERIFY_TOKENS,
      inputs_file: opts.inputsFile ?? null,
      max_error: maxError,
      overlay_dir: opts.overlayDir ?? null,
    },
    verification: { criterion, max_error: maxError, worst, passed: worst <= maxError },
  };
}

function layerReport(ckpt: Checkpoint, layout: MoeLayerLayout, overlay: LayerOverlay, v: LayerVerification, dtype: OverlayDtype): OverlayReport['layers'][number] {
  const bytes = layerBytes(ckpt, layout, overlay.ranks, dtype);
  const projections = {} as Record<Projection, OverlayProjectionReport>;
  for (const p of PROJECTIONS) {
    const pv = v.projections[p];
    const seeded = pv.output_error.seeded;
    const file = pv.output_error.file;
    projections[p] = {
      rank: overlay.ranks[p],
      original_bytes: bytes.original[p],
      overlay_bytes: bytes.overlay[p],
      relative_error: pv.relative_error,
      energy_kept: pv.energy_kept,
      output_error: seeded ? { mean: seeded.mean, max: seeded.max } : null,
      shape: gatedProjections(layout)[p].shape as [number, number],
      encoding: encodingName(gatedProjections(layout)[p].encoding),
      error_source: 'reconstruction',
      ...(file ? { output_error_inputs_file: { mean: file.mean, max: file.max } } : {}),
    };
  }
  const eo = v.expert_output_error;
  return {
    layer: layout.layer,
    projections,
    ranks: overlay.ranks,
    original_bytes: bytes.originalTotal,
    overlay_bytes: bytes.overlayTotal,
    ratio: ratioOf(bytes.originalTotal, bytes.overlayTotal),
    expert_output_error: eo ? { ...(eo.seeded ? { seeded: eo.seeded } : {}), ...(eo.file ? { inputs_file: eo.file } : {}) } : null,
    output_error_note: v.output_error_note,
  };
}

/** The selected layers of a saved overlay, checked against the model it claims to compress. */
function overlayLayers(model: MoeModel, manifest: OverlayManifest, sel: LayerSelection, dir: string): MoeLayerLayout[] {
  const file = `${dir}/overlay-manifest.json`;
  if (manifest.num_experts !== model.numExperts) throw new MoeInspectorError('layout', `the overlay has ${manifest.num_experts} experts per layer, the model ${model.numExperts}: not an overlay of this model`, { file });
  const saved = new Set(manifest.layers.map((l) => l.layer));
  const layouts = sel.kind === 'all' ? model.layers.filter((l) => saved.has(l.layer)) : selectLayers(model, sel);
  for (const l of layouts) {
    const entry = manifest.layers.find((e) => e.layer === l.layer);
    if (!entry) throw new MoeInspectorError('usage', `layer ${l.layer} is not in the overlay (it holds layers ${[...saved].join(', ')})`, { file });
    for (const p of PROJECTIONS) {
      const [a, b] = entry.shapes[p];
      const [m, n] = gatedProjections(l)[p].shape;
      if (a !== m || b !== n) throw new MoeInspectorError('layout', `layer ${l.layer} ${p}: the overlay stores [${a}, ${b}], the model's experts are [${m}, ${n}]`, { file });
    }
  }
  if (layouts.length === 0) throw new MoeInspectorError('usage', 'the overlay holds none of the selected layers', { file });
  return layouts;
}
