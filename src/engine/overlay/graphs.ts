/**
 * The overlay's ONNX graphs (built with the numerics module's graph builder): reconstruction of an
 * expert from base + factors, and the expert function itself. Dimensions are symbolic, so one
 * session serves every layer shape. Scalars (alpha, limit) are fed as inputs: the builder has no
 * initializers, and feeding them keeps one session per activation kind.
 */
import type { GraphDef } from '../numerics/backend';

const f32 = (name: string, dims: (number | string)[]) => ({ name, type: 'float32' as const, dims });

/**
 * W_hat = base + U V (U [m, r] with S folded in, V [r, n]); err2 = ||W - W_hat||_F^2.
 * Rank 0 has its own graph: a MatMul over an empty inner dimension is not worth trusting.
 */
export function reconstructGraph(rankZero: boolean): GraphDef {
  const common = [f32('W', ['m', 'n']), f32('base', ['m', 'n'])];
  if (rankZero) {
    return {
      key: 'overlay.reconstruct.rank0',
      inputs: common,
      outputs: [f32('W_hat', ['m', 'n']), f32('err2', [])],
      nodes: [
        { op: 'Identity', inputs: ['base'], outputs: ['W_hat'] },
        { op: 'Sub', inputs: ['W', 'W_hat'], outputs: ['R'] },
        { op: 'ReduceSumSquare', inputs: ['R'], outputs: ['err2'], attrs: [{ name: 'keepdims', int: 0 }] },
      ],
    };
  }
  return {
    key: 'overlay.reconstruct',
    inputs: [...common, f32('U', ['m', 'r']), f32('V', ['r', 'n'])],
    outputs: [f32('W_hat', ['m', 'n']), f32('err2', [])],
    nodes: [
      { op: 'MatMul', inputs: ['U', 'V'], outputs: ['UV'] },
      { op: 'Add', inputs: ['base', 'UV'], outputs: ['W_hat'] },
      { op: 'Sub', inputs: ['W', 'W_hat'], outputs: ['R'] },
      { op: 'ReduceSumSquare', inputs: ['R'], outputs: ['err2'], attrs: [{ name: 'keepdims', int: 0 }] },
    ],
  };
}

export type ForwardKind = 'swiglu' | 'gpt-oss';

/**
 * y = down(act(gate x + b_g, up x + b_u)) + b_d for X [T, H], weights in linear [out, in] orientation.
 *  swiglu:  act(g, u) = silu(g) * u
 *  gpt-oss: g' = min(g, limit), u' = clamp(u, -limit, limit), act = (u' + 1) * g' * sigmoid(alpha g')
 *           (transformers GptOssExperts / the reference swiglu with alpha 1.702).
 * Biases are inputs too (zeros for families without them): one graph per activation kind.
 */
export function expertForwardGraph(kind: ForwardKind): GraphDef {
  const inputs = [
    f32('X', ['T', 'H']),
    f32('Wg', ['I', 'H']), f32('bg', ['I']),
    f32('Wu', ['I', 'H']), f32('bu', ['I']),
    f32('Wd', ['H', 'I']), f32('bd', ['H']),
  ];
  const proj = [
    { op: 'Gemm', inputs: ['X', 'Wg', 'bg'], outputs: ['g'], attrs: [{ name: 'transB', int: 1 }] },
    { op: 'Gemm', inputs: ['X', 'Wu', 'bu'], outputs: ['u'], attrs: [{ name: 'transB', int: 1 }] },
  ];
  const down = { op: 'Gemm', inputs: ['h', 'Wd', 'bd'], outputs: ['Y'], attrs: [{ name: 'transB', int: 1 }] };
  if (kind === 'swiglu') {
    return {
      key: 'overlay.forward.swiglu',
      inputs,
      outputs: [f32('Y', ['T', 'H'])],
      nodes: [
        ...proj,
        { op: 'Sigmoid', inputs: ['g'], outputs: ['sg'] },
        { op: 'Mul', inputs: ['g', 'sg'], outputs: ['silu'] },
        { op: 'Mul', inputs: ['silu', 'u'], outputs: ['h'] },
        down,
      ],
    };
  }
  return {
    key: 'overlay.forward.gpt-oss',
    inputs: [...inputs, f32('alpha', []), f32('limit', []), f32('neg_limit', []), f32('one', [])],
    outputs: [f32('Y', ['T', 'H'])],
    nodes: [
      ...proj,
      { op: 'Min', inputs: ['g', 'limit'], outputs: ['gc'] },
      { op: 'Min', inputs: ['u', 'limit'], outputs: ['u1'] },
      { op: 'Max', inputs: ['u1', 'neg_limit'], outputs: ['uc'] },
      { op: 'Mul', inputs: ['gc', 'alpha'], outputs: ['ga'] },
      { op: 'Sigmoid', inputs: ['ga'], outputs: ['sg'] },
      { op: 'Mul', inputs: ['gc', 'sg'], outputs: ['glu'] },
      { op: 'Add', inputs: ['uc', 'one'], outputs: ['u1p'] },
      { op: 'Mul', inputs: ['u1p', 'glu'], outputs: ['h'] },
      down,
    ],
  };
}
