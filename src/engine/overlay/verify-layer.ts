/**
 * Verify one layer's overlay against the checkpoint: every expert is reconstructed on ONNX Runtime
 * (W_hat = base + U_r S_r V_r^T) and measured directly, never inferred from the spectrum:
 *  relative_error  ||W - W_hat||_F / ||W||_F
 *  energy_kept     1 - ||W - W_hat||_F^2 / ||W - base||_F^2   (= sum_{i<=r} s_i^2 / sum s_i^2 for an exact SVD)
 *  output error    ||y - y_hat||_F / ||y||_F of the expert function over a token batch, with all three
 *                  projections reconstructed (the layer's expert_output_error) and with only one
 *                  (the projection's output_error). Biases are applied as stored, never approximated.
 */
import { ort, type ComputeBackend } from '../numerics/backend';
import { PROJECTIONS, type ExpertActivation, type ExpertMatrix, type MoeModel, type Projection } from '../layouts/types';
import { expertForward, forwardKindOf, relativeOutputError, type ExpertWeights, type TokenBatch } from './expert-function';
import { squaredNorm } from './expert-stats';
import { reconstructGraph } from './graphs';
import type { LayerOverlay } from './types';
import type { StepSink } from './report-parts';

export interface InputSet {
  readonly label: 'seeded' | 'file';
  readonly batch: TokenBatch;
}

export interface ErrorSummary {
  readonly mean: number;
  readonly max: number;
  readonly per_expert: readonly number[];
}

export interface ProjectionVerification {
  readonly relative_error: number[];
  readonly energy_kept: number[];
  /** Only this projection reconstructed, per input set. */
  readonly output_error: Partial<Record<InputSet['label'], ErrorSummary>>;
}

export interface LayerVerification {
  readonly layer: number;
  readonly projections: Record<Projection, ProjectionVerification>;
  /** All three projections reconstructed, per input set; null when the activation is not supported. */
  readonly expert_output_error: Partial<Record<InputSet['label'], ErrorSummary>> | null;
  readonly output_error_note: string | null;
}

export function summarize(values: readonly number[]): ErrorSummary {
  return { mean: values.reduce((a, b) => a + b, 0) / Math.max(1, values.length), max: values.reduce((a, b) => Math.max(a, b), 0), per_expert: values };
}

async function reconstruct(backend: ComputeBackend, w: ExpertMatrix, base: ExpertMatrix, f: { us: Float32Array; vt: Float32Array }): Promise<{ wHat: ExpertMatrix; err2: number }> {
  const m = w.rows;
  const n = w.cols;
  const r = f.us.length / m;
  const t = (d: Float32Array, dims: number[]) => new ort.Tensor('float32', d, dims);
  const feeds: Record<string, ort.Tensor> = { W: t(w.data, [m, n]), base: t(base.data, [m, n]) };
  if (r > 0) Object.assign(feeds, { U: t(f.us, [m, r]), V: t(f.vt, [r, n]) });
  const out = await backend.run(reconstructGraph(r === 0), feeds);
  return { wHat: { rows: m, cols: n, data: out['W_hat']!.data as Float32Array }, err2: Number((out['err2']!.data as Float32Array)[0]) };
}

function deltaEnergy(w: ExpertMatrix, base: ExpertMatrix): number {
  let s = 0;
  for (let i = 0; i < w.data.length; i++) {
    const d = w.data[i]! - base.data[i]!;
    s += d * d;
  }
  return s;
}

export async function verifyLayerOverlay(
  model: MoeModel,
  overlay: LayerOverlay,
  backend: ComputeBackend,
  inputs: readonly InputSet[],
  opts: { signal?: AbortSignal; onStep?: StepSink } = {},
): Promise<LayerVerification> {
  const activation: ExpertActivation = model.activation;
  const canForward = forwardKindOf(activation) !== null;
  type Acc = { relative_error: number[]; energy_kept: number[]; perInput: Map<string, number[]> };
  const acc = (): Acc => ({ relative_error: [], energy_kept: [], perInput: new Map() });
  const projections: Record<Projection, Acc> = { gate: acc(), up: acc(), down: acc() };
  const whole = new Map<string, number[]>();
  // One expert at a time: its three matrices, their factors, the rebuilt weights; nothing kept but errors.
  for (let j = 0; j < model.numExperts; j++) {
    opts.signal?.throwIfAborted();
    opts.onStep?.(`layer ${overlay.layer}: verifying expert ${j + 1}/${model.numExperts}`, { step: 'verify', expert: j, experts: model.numExperts });
    const original = {} as Record<Projection, { w: ExpertMatrix; bias: Float32Array | null }>;
    const rebuilt = {} as Record<Projection, { w: ExpertMatrix; bias: Float32Array | null }>;
    for (const p of PROJECTIONS) {
      const w = await model.readExpert(overlay.layer, p, j);
      const bias = await model.readExpertBias(overlay.layer, p, j);
      const base = overlay.bases[p];
      const { wHat, err2 } = await reconstruct(backend, w, base, (await overlay.expert(p, j, w)).factors);
      const dE = deltaEnergy(w, base);
      projections[p].relative_error.push(Math.sqrt(err2 / squaredNorm(w.data)));
      projections[p].energy_kept.push(dE === 0 ? 1 : Math.max(0, 1 - err2 / dE));
      original[p] = { w, bias };
      rebuilt[p] = { w: wHat, bias };
    }
    if (!canForward) continue;
    for (const input of inputs) {
      const y = await expertForward(backend, activation, original as ExpertWeights, input.batch);
      const all = await expertForward(backend, activation, rebuilt as ExpertWeights, input.batch);
      push(whole, input.label, relativeOutputError(y, all));
      for (const p of PROJECTIONS) {
        const one = await expertForward(backend, activation, { ...original, [p]: rebuilt[p] } as ExpertWeights, input.batch);
        push(projections[p].perInput, input.label, relativeOutputError(y, one));
      }
    }
  }
  const byInput = (m: Map<string, number[]>) => Object.fromEntries([...m].map(([k, v]) => [k, summarize(v)])) as Partial<Record<InputSet['label'], ErrorSummary>>;
  return {
    layer: overlay.layer,
    projections: Object.fromEntries(
      PROJECTIONS.map((p) => [p, { relative_error: projections[p].relative_error, energy_kept: projections[p].energy_kept, output_error: byInput(projections[p].perInput) }]),
    ) as Record<Projection, ProjectionVerification>,
    expert_output_error: canForward ? byInput(whole) : null,
    output_error_note: canForward ? null : `no output error: the expert activation (${activation.kind}${activation.kind === 'unknown' ? `: ${activation.note}` : ''}) is not one verify can run (swiglu, gpt-oss)`,
  };
}

function push(m: Map<string, number[]>, k: string, v: number): void {
  const list = m.get(k) ?? [];
  list.push(v);
  m.set(k, list);
}
