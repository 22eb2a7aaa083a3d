/** The expert function y = down(act(gate x, up x)) on ONNX Runtime, for overlay verify's output error. */
import { ort, type ComputeBackend } from '../numerics/backend';
import type { ExpertActivation, ExpertMatrix, Projection } from '../layouts/types';
import { expertForwardGraph, type ForwardKind } from './graphs';

/** One expert's three matrices and biases (null where the family has none). */
export type ExpertWeights = Readonly<Record<Projection, { readonly w: ExpertMatrix; readonly bias: Float32Array | null }>>;

/** [T, H] activations, row-major. */
export interface TokenBatch {
  readonly tokens: number;
  readonly hidden: number;
  readonly data: Float32Array;
}

/** The activations overlay verify can run; others get no output error (and the report says why). */
export function forwardKindOf(a: ExpertActivation): ForwardKind | null {
  return a.kind === 'swiglu' || a.kind === 'gpt-oss' ? a.kind : null;
}

const tensor = (data: Float32Array, dims: number[]): ort.Tensor => new ort.Tensor('float32', data, dims);
const scalar = (v: number): ort.Tensor => new ort.Tensor('float32', Float32Array.of(v), []);

export async function expertForward(backend: ComputeBackend, activation: ExpertActivation, e: ExpertWeights, x: TokenBatch): Promise<Float32Array> {
  const kind = forwardKindOf(activation);
  if (kind === null) throw new Error(`no expert forward for activation ${activation.kind}`);
  const { gate, up, down } = e;
  const I = gate.w.rows;
  const H = gate.w.cols;
  const feeds: Record<string, ort.Tensor> = {
    X: tensor(x.data, [x.tokens, x.hidden]),
    Wg: tensor(gate.w.data, [I, H]),
    bg: tensor(gate.bias ?? new Float32Array(I), [I]),
    Wu: tensor(up.w.data, [I, H]),
    bu: tensor(up.bias ?? new Float32Array(I), [I]),
    Wd: tensor(down.w.data, [down.w.rows, down.w.cols]),
    bd: tensor(down.bias ?? new Float32Array(down.w.rows), [down.w.rows]),
  };
  if (activation.kind === 'gpt-oss') {
    Object.assign(feeds, { alpha: scalar(activation.alpha), limit: scalar(activation.limit), neg_limit: scalar(-activation.limit), one: scalar(1) });
  }
  const out = await backend.run(expertForwardGraph(kind), feeds);
  return out['Y']!.data as Float32Array;
}

/** ||y - y_hat||_F / ||y||_F over all tokens, accumulated in float64. */
export function relativeOutputError(y: Float32Array, yHat: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < y.length; i++) {
    const d = y[i]! - yHat[i]!;
    num += d * d;
    den += y[i]! * y[i]!;
  }
  return den === 0 ? (num === 0 ? 0 : Infinity) : Math.sqrt(num / den);
}
