/** The matrix graphs the metrics run on ONNX Runtime. Dimensions are symbolic: one session serves every size. */
import type { GraphDef } from './backend';
import type { ElemType } from './onnx/graph';

/**
 * Gram matrices of expert deltas, batched: D_b = W_b - base; G_b = D_b D_b^T ('rows', for out <= in)
 * or D_b^T D_b ('cols'), whichever is the min(out, in) square: its eigenvalues are the squared
 * singular values of D_b.
 */
export function deltaGramGraph(type: ElemType, side: 'rows' | 'cols'): GraphDef {
  const t = (name: string, dims: (number | string)[]) => ({ name, type, dims });
  const gramDim = side === 'rows' ? 'm' : 'n';
  return {
    key: `deltaGram.${type}.${side}`,
    inputs: [t('W', ['B', 'm', 'n']), t('base', ['m', 'n'])],
    outputs: [t('G', ['B', gramDim, gramDim])],
    nodes: [
      { op: 'Sub', inputs: ['W', 'base'], outputs: ['D'] },
      { op: 'Transpose', inputs: ['D'], outputs: ['Dt'], attrs: [{ name: 'perm', ints: [0, 2, 1] }] },
      side === 'rows' ? { op: 'MatMul', inputs: ['D', 'Dt'], outputs: ['G'] } : { op: 'MatMul', inputs: ['Dt', 'D'], outputs: ['G'] },
    ],
  };
}

/** X X^T for X [rows, c]: inner products of flattened experts, accumulated over column chunks. */
export function rowGramGraph(type: ElemType): GraphDef {
  return {
    key: `rowGram.${type}`,
    inputs: [{ name: 'X', type, dims: ['E', 'c'] }],
    outputs: [{ name: 'G', type, dims: ['E', 'E'] }],
    nodes: [
      { op: 'Transpose', inputs: ['X'], outputs: ['Xt'], attrs: [{ name: 'perm', ints: [1, 0] }] },
      { op: 'MatMul', inputs: ['X', 'Xt'], outputs: ['G'] },
    ],
  };
}

/** C = A B, batched or not (MatMul broadcasting). */
export function matmulGraph(type: ElemType, rankA: number, rankB: number): GraphDef {
  const dims = (r: number, p: string) => Array.from({ length: r }, (_, i) => `${p}${i}`);
  return {
    key: `matmul.${type}.${rankA}.${rankB}`,
    inputs: [
      { name: 'A', type, dims: dims(rankA, 'a') },
      { name: 'B', type, dims: dims(rankB, 'b') },
    ],
    outputs: [{ name: 'C', type, dims: dims(Math.max(rankA, rankB), 'c') }],
    nodes: [{ op: 'MatMul', inputs: ['A', 'B'], outputs: ['C'] }],
  };
}
