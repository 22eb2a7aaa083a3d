/** The matrix graphs the metrics run on ONNX Runtime. Dimensions are symbolic: one session serves every size. */
import type { GraphDef } from './backend';
import type { Attr, ElemType, NodeSpec } from './onnx/graph';

/**
 * Gram matrix of one expert delta, W and base [m, n]: D = W - base; G = D D^T ('rows') or D^T D
 * ('cols'). Gemm with a transposed operand: MLAS reads it in place, where a Transpose node
 * materialises a copy (measured 4x slower at 2880 x 2880).
 */
export function deltaGramGemmGraph(type: ElemType, side: 'rows' | 'cols'): GraphDef {
  const t = (name: string, dims: (number | string)[]) => ({ name, type, dims });
  const gramDim = side === 'rows' ? 'm' : 'n';
  return {
    key: `deltaGramGemm.${type}.${side}`,
    inputs: [t('W', ['m', 'n']), t('base', ['m', 'n'])],
    outputs: [t('G', [gramDim, gramDim])],
    nodes: [
      { op: 'Sub', inputs: ['W', 'base'], outputs: ['D'] },
      { op: 'Gemm', inputs: ['D', 'D'], outputs: ['G'], attrs: [{ name: side === 'rows' ? 'transB' : 'transA', int: 1 }] },
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

/**
 * One panel step of the dense -> band reduction (stage one), on the trailing matrix A [p, p]:
 * with the panel's compact-WY reflectors Q = I - V T V^T (V [p, k], T [k, k] upper triangular),
 *   X = A V T,  W = X - 1/2 V (T^T V^T X),  A' = Q^T A Q = A - W V^T - V W^T   (one GEMM, inner 2k)
 * and A' is handed back already cut for the next step: its leading b x b diagonal block, the panel
 * below it [p-b, b] and the trailing matrix [p-b, p-b] (contiguous, ready to be the next A).
 */
export function bandStepGraph(type: ElemType, b: number): GraphDef {
  const t = (name: string, dims: (number | string)[]) => ({ name, type, dims });
  const i64 = (name: string, data: number[]) => ({ name, type: 'int64' as const, dims: [data.length], data });
  const end = 2 ** 53 - 1; // "to the end" for Slice
  const slice = (input: string, out: string, starts: string, ends: string) => ({ op: 'Slice', inputs: [input, starts, ends, 'axes01'], outputs: [out] });
  return {
    key: `bandStep.${type}.${b}`,
    inputs: [t('A', ['p', 'p']), t('V', ['p', 'k']), t('T', ['k', 'k'])],
    outputs: [t('diag', [b, b]), t('panel', ['q', b]), t('trail', ['q', 'q'])],
    initializers: [i64('axes01', [0, 1]), i64('zero2', [0, 0]), i64('b2', [b, b]), i64('end2', [end, end]), i64('b_end', [end, b]), i64('b_zero', [b, 0])],
    nodes: [
      { op: 'MatMul', inputs: ['V', 'T'], outputs: ['VT'] },
      { op: 'MatMul', inputs: ['A', 'VT'], outputs: ['X'] },
      { op: 'Gemm', inputs: ['VT', 'X'], outputs: ['M'], attrs: [{ name: 'transA', int: 1 }] },
      { op: 'Gemm', inputs: ['V', 'M', 'X'], outputs: ['W'], attrs: [{ name: 'alpha', float: -0.5 }, { name: 'beta', float: 1 }] },
      { op: 'Concat', inputs: ['W', 'V'], outputs: ['L'], attrs: [{ name: 'axis', int: 1 }] },
      { op: 'Concat', inputs: ['V', 'W'], outputs: ['R'], attrs: [{ name: 'axis', int: 1 }] },
      { op: 'Gemm', inputs: ['L', 'R', 'A'], outputs: ['A1'], attrs: [{ name: 'alpha', float: -1 }, { name: 'beta', float: 1 }, { name: 'transB', int: 1 }] },
      slice('A1', 'diag', 'zero2', 'b2'),
      slice('A1', 'panel', 'b_zero', 'b_end'),
      slice('A1', 'trail', 'b2', 'end2'),
    ],
  };
}

/**
 * One panel of stage one with DEFERRED trailing updates (the latrd idea of LAPACK's sytrd, per
 * panel of b columns as in MAGMA's sy2sb): A0 [P, P] is the trailing matrix as it was at the start of
 * a group of panels; the current matrix is A0 - Vacc Wacc^T - Wacc Vacc^T, with Vacc, Wacc [P, K]
 * the earlier panels' reflectors and W's of the group (zero columns for panels not done yet). For
 * this panel's compact-WY reflectors (Vi [P, b], zero above its first row; Ti [b, b]):
 *   Y = A_cur Vi (one read of A0, narrow output), X = Y Ti, Wi = X - 1/2 Vi (Ti^T Vi^T X)
 * and the next panel's columns s..e-1 of the updated matrix, all rows:
 *   C = A0[:, s:e] - [Vacc Wacc Vi Wi] [Wacc Vacc Wi Vi][s:e, :]^T
 * A0 is never written: the group's update is applied once (deferredApplyGraph).
 */
export function deferredPanelGraph(type: ElemType, b: number): GraphDef {
  const t = (name: string, dims: (number | string)[]) => ({ name, type, dims });
  const i64 = (name: string, data: number[]) => ({ name, type: 'int64' as const, dims: [data.length], data });
  const gemm = (inputs: string[], out: string, attrs: Attr[]): NodeSpec => ({ op: 'Gemm', inputs, outputs: [out], attrs });
  return {
    key: `deferredPanel.${type}.${b}`,
    inputs: [t('A', ['P', 'P']), t('Vacc', ['P', 'K']), t('Wacc', ['P', 'K']), t('Vi', ['P', b]), t('Ti', [b, b]), { name: 's', type: 'int64', dims: [1] }, { name: 'e', type: 'int64', dims: [1] }],
    outputs: [t('Wi', ['P', b]), t('C', ['P', b])],
    initializers: [i64('axis0', [0]), i64('axis1', [1])],
    nodes: [
      { op: 'MatMul', inputs: ['A', 'Vi'], outputs: ['Y0'] },
      gemm(['Wacc', 'Vi'], 'Z1', [{ name: 'transA', int: 1 }]),
      gemm(['Vacc', 'Vi'], 'Z2', [{ name: 'transA', int: 1 }]),
      gemm(['Vacc', 'Z1', 'Y0'], 'Y1', [{ name: 'alpha', float: -1 }, { name: 'beta', float: 1 }]),
      gemm(['Wacc', 'Z2', 'Y1'], 'Y', [{ name: 'alpha', float: -1 }, { name: 'beta', float: 1 }]),
      { op: 'MatMul', inputs: ['Y', 'Ti'], outputs: ['X'] },
      { op: 'MatMul', inputs: ['Vi', 'Ti'], outputs: ['VT'] },
      gemm(['VT', 'X'], 'M', [{ name: 'transA', int: 1 }]),
      gemm(['Vi', 'M', 'X'], 'Wi', [{ name: 'alpha', float: -0.5 }, { name: 'beta', float: 1 }]),
      { op: 'Slice', inputs: ['A', 's', 'e', 'axis1'], outputs: ['Acols'] },
      { op: 'Slice', inputs: ['Vacc', 's', 'e', 'axis0'], outputs: ['Vs'] },
      { op: 'Slice', inputs: ['Wacc', 's', 'e', 'axis0'], outputs: ['Ws'] },
      { op: 'Slice', inputs: ['Vi', 's', 'e', 'axis0'], outputs: ['Vis'] },
      { op: 'Slice', inputs: ['Wi', 's', 'e', 'axis0'], outputs: ['Wis'] },
      { op: 'Concat', inputs: ['Vacc', 'Wacc', 'Vi', 'Wi'], outputs: ['L'], attrs: [{ name: 'axis', int: 1 }] },
      { op: 'Concat', inputs: ['Ws', 'Vs', 'Wis', 'Vis'], outputs: ['R'], attrs: [{ name: 'axis', int: 1 }] },
      gemm(['L', 'R', 'Acols'], 'C', [{ name: 'alpha', float: -1 }, { name: 'beta', float: 1 }, { name: 'transB', int: 1 }]),
    ],
  };
}

/** The deferred group update, kept only where it matters: (A0 - Vacc Wacc^T - Wacc Vacc^T)[k:, k:], k the group's columns (inputs k1 = [k], k2 = [k, k]). */
export function deferredApplyGraph(type: ElemType): GraphDef {
  const t = (name: string, dims: (number | string)[]) => ({ name, type, dims });
  const i64 = (name: string, data: number[]) => ({ name, type: 'int64' as const, dims: [data.length], data });
  const end = 2 ** 53 - 1;
  return {
    key: `deferredApply.${type}`,
    inputs: [t('A', ['P', 'P']), t('Vacc', ['P', 'K']), t('Wacc', ['P', 'K']), { name: 'k1', type: 'int64', dims: [1] }, { name: 'k2', type: 'int64', dims: [2] }],
    outputs: [t('trail', ['q', 'q'])],
    initializers: [i64('axes01', [0, 1]), i64('axis0', [0]), i64('end1', [end]), i64('end2', [end, end])],
    nodes: [
      { op: 'Slice', inputs: ['A', 'k2', 'end2', 'axes01'], outputs: ['As'] },
      { op: 'Slice', inputs: ['Vacc', 'k1', 'end1', 'axis0'], outputs: ['Vs'] },
      { op: 'Slice', inputs: ['Wacc', 'k1', 'end1', 'axis0'], outputs: ['Ws'] },
      { op: 'Concat', inputs: ['Ws', 'Vs'], outputs: ['L'], attrs: [{ name: 'axis', int: 1 }] },
      { op: 'Concat', inputs: ['Vs', 'Ws'], outputs: ['R'], attrs: [{ name: 'axis', int: 1 }] },
      { op: 'Gemm', inputs: ['L', 'R', 'As'], outputs: ['trail'], attrs: [{ name: 'alpha', float: -1 }, { name: 'beta', float: 1 }, { name: 'transB', int: 1 }] },
    ],
  };
}

/**
 * The delta Gram from lower blocks only (the saving syrk makes): D = W - base is split into
 * GRAM_BLOCKS parts along the Gram's own dimension (columns for D^T D, rows for D D^T; sizes given
 * by the int64 input `split`), the blocks G_ij = D_i^T D_j (or
 * D_i D_j^T) are computed for i >= j only, and the upper blocks are their transposes: 10 of 16
 * block products for 4 blocks.
 */
export const GRAM_BLOCKS = 4;

export function deltaGramBlockedGraph(type: ElemType, side: 'rows' | 'cols'): GraphDef {
  const t = (name: string, dims: (number | string)[]) => ({ name, type, dims });
  const gramDim = side === 'rows' ? 'm' : 'n';
  const blocks = Array.from({ length: GRAM_BLOCKS }, (_, i) => `D${i}`);
  const nodes: NodeSpec[] = [
    { op: 'Sub', inputs: ['W', 'base'], outputs: ['D'] },
    { op: 'Split', inputs: ['D', 'split'], outputs: blocks, attrs: [{ name: 'axis', int: side === 'rows' ? 0 : 1 }] },
  ];
  const block = (i: number, j: number) => (i >= j ? `G${i}_${j}` : `G${j}_${i}t`);
  for (let i = 0; i < GRAM_BLOCKS; i++) {
    for (let j = 0; j <= i; j++) {
      nodes.push({ op: 'Gemm', inputs: [blocks[i]!, blocks[j]!], outputs: [block(i, j)], attrs: [{ name: side === 'rows' ? 'transB' : 'transA', int: 1 }] });
      if (i !== j) nodes.push({ op: 'Transpose', inputs: [block(i, j)], outputs: [block(j, i)], attrs: [{ name: 'perm', ints: [1, 0] }] });
    }
  }
  for (let i = 0; i < GRAM_BLOCKS; i++) nodes.push({ op: 'Concat', inputs: Array.from({ length: GRAM_BLOCKS }, (_, j) => block(i, j)), outputs: [`R${i}`], attrs: [{ name: 'axis', int: 1 }] });
  nodes.push({ op: 'Concat', inputs: Array.from({ length: GRAM_BLOCKS }, (_, i) => `R${i}`), outputs: ['G'], attrs: [{ name: 'axis', int: 0 }] });
  return {
    key: `deltaGramBlocked.${type}.${side}`,
    inputs: [t('W', ['m', 'n']), t('base', ['m', 'n']), { name: 'split', type: 'int64', dims: [GRAM_BLOCKS] }],
    outputs: [t('G', [gramDim, gramDim])],
    nodes,
  };
}

/** Block sizes for deltaGramBlockedGraph: k split into GRAM_BLOCKS near-equal parts, multiples of 16 where possible (aligned GEMM panels). */
export function gramBlockSizes(k: number): number[] {
  const unit = k >= 16 * GRAM_BLOCKS ? 16 : 1;
  const units = Math.floor(k / unit);
  const sizes = Array.from({ length: GRAM_BLOCKS }, (_, i) => unit * (Math.floor((units * (i + 1)) / GRAM_BLOCKS) - Math.floor((units * i) / GRAM_BLOCKS)));
  sizes[GRAM_BLOCKS - 1]! += k - sizes.reduce((a, b) => a + b, 0);
  return sizes;
}
