/**
 * The overlay commands model an expert as gate/up/down (SwiGLU families) in one layer stack. Models
 * whose experts have no gate (nemotron_h, switch_transformers, nllb_moe) or whose experts form several
 * layer groups (encoder/decoder, text/vision) are analysed, but refused here with a clear message.
 */
import { MoeInspectorError } from '../errors';
import type { MoeLayerLayout, MoeModel, Projection, ProjectionLayout } from '../layouts/types';

export function assertOverlaySupported(model: MoeModel): void {
  const ungated = model.layers.find((l) => l.projections.gate === undefined);
  if (ungated) throw new MoeInspectorError('layout', `the overlay commands need gate/up/down experts; the ${model.family} experts (layer ${ungated.name}) have no gate projection (analyze and info read them)`);
  const grouped = model.layers.find((l) => l.group !== null);
  if (grouped) throw new MoeInspectorError('layout', `the overlay commands read one layer stack; this ${model.family} model has layer groups (${[...new Set(model.layers.map((l) => l.group ?? 'main'))].join(', ')}) (analyze and info read them)`);
}

/** A layer's three projections, where assertOverlaySupported has let the model through. */
export function gatedProjections(layer: MoeLayerLayout): Readonly<Record<Projection, ProjectionLayout>> {
  const { gate, up, down } = layer.projections;
  if (!gate) throw new MoeInspectorError('layout', `layer ${layer.name} has no gate projection: the overlay commands need gate/up/down experts`);
  return { gate, up, down };
}
