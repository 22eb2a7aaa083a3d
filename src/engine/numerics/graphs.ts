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

/** C = A^T B for A [m, n], B [m, l]: Gemm reads A transposed in place (no transposed copy of A). */
export function transposedMatmulGraph(type: ElemType): GraphDef {
  return {
    key: `matmulTransA.${type}`,
    inputs: [
      { name: 'A', type, dims: ['m', 'n'] },
      { name: 'B', type, dims: ['m', 'l'] },
    ],
    outputs: [{ name: 'C', type, dims: ['n', 'l'] }],
    nodes: [{ op: 'Gemm', inputs: ['A', 'B'], outputs: ['C'], attrs: [{ name: 'transA', int: 1 }] }],
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
 * a group of panels; the current matrix is A0 - L R^T with L = [Vacc Wacc] and R = [Wacc Vacc]
 * ([P, 2K]: the earlier panels' reflectors and W's of the group, zero columns for panels not done
 * yet), kept side by side by the caller so no Concat copies them per panel (measured: the Concat of
 * [Vacc Wacc Vi Wi] was 1.7 of 9 ms per panel at P = 2880). For this panel's compact-WY reflectors
 * (Vi [P, b], zero above its first row; Ti [b, b]):
 *   Y = A0 Vi - L (R^T Vi) (one read of A0, narrow output), X = Y Ti, Wi = X - 1/2 Vi (Ti^T Vi^T X)
 * and the next panel's columns s..e-1 of the updated matrix, all rows:
 *   C = A0[:, s:e] - L R[s:e, :]^T - [Vi Wi] [Wi Vi][s:e, :]^T
 * A0 is never written: the group's update is applied once (deferredApplyGraph).
 */
export function deferredPanelGraph(type: ElemType, b: number): GraphDef {
  const t = (name: string, dims: (number | string)[]) => ({ name, type, dims });
  const i64 = (name: string, data: number[]) => ({ name, type: 'int64' as const, dims: [data.length], data });
  const gemm = (inputs: string[], out: string, attrs: Attr[]): NodeSpec => ({ op: 'Gemm', inputs, outputs: [out], attrs });
  const minus = [{ name: 'alpha', float: -1 }, { name: 'beta', float: 1 }];
  return {
    key: `deferredPanel2.${type}.${b}`,
    inputs: [t('A', ['P', 'P']), t('L', ['P', 'K2']), t('R', ['P', 'K2']), t('Vi', ['P', b]), t('Ti', [b, b]), { name: 's', type: 'int64', dims: [1] }, { name: 'e', type: 'int64', dims: [1] }],
    outputs: [t('Wi', ['P', b]), t('C', ['P', b])],
    initializers: [i64('axis0', [0]), i64('axis1', [1])],
    nodes: [
      { op: 'MatMul', inputs: ['A', 'Vi'], outputs: ['Y0'] },
      gemm(['R', 'Vi'], 'Z', [{ name: 'transA', int: 1 }]),
      gemm(['L', 'Z', 'Y0'], 'Y', minus),
      { op: 'MatMul', inputs: ['Y', 'Ti'], outputs: ['X'] },
      { op: 'MatMul', inputs: ['Vi', 'Ti'], outputs: ['VT'] },
      gemm(['VT', 'X'], 'M', [{ name: 'transA', int: 1 }]),
      gemm(['Vi', 'M', 'X'], 'Wi', [{ name: 'alpha', float: -0.5 }, { name: 'beta', float: 1 }]),
      { op: 'Slice', inputs: ['A', 's', 'e', 'axis1'], outputs: ['Acols'] },
      { op: 'Slice', inputs: ['R', 's', 'e', 'axis0'], outputs: ['Rs'] },
      { op: 'Slice', inputs: ['Vi', 's', 'e', 'axis0'], outputs: ['Vis'] },
      { op: 'Slice', inputs: ['Wi', 's', 'e', 'axis0'], outputs: ['Wis'] },
      { op: 'Concat', inputs: ['Vi', 'Wi'], outputs: ['Li'], attrs: [{ name: 'axis', int: 1 }] },
      { op: 'Concat', inputs: ['Wis', 'Vis'], outputs: ['Ri'], attrs: [{ name: 'axis', int: 1 }] },
      gemm(['L', 'Rs', 'Acols'], 'C1', [...minus, { name: 'transB', int: 1 }]),
      gemm(['Li', 'Ri', 'C1'], 'C', [...minus, { name: 'transB', int: 1 }]),
    ],
  };
}

/** Blocks per side of the deferred group update (its lower blocks only: 10 of 16). */
export const APPLY_BLOCKS = 4;

/**
 * The deferred group update, kept only where it matters: (A0 - L R^T)[k:, k:], k the group's
 * columns, L = [Vacc Wacc], R = [Wacc Vacc] [P, 2K]. The result is symmetric, so, as for the Gram,
 * only its lower blocks are computed (each straight from its own slice of A0: no full copy of the
 * trailing block first) and the upper ones are their transposes. Inputs: the row offsets of the
 * APPLY_BLOCKS + 1 block boundaries inside A0 (int64, first = k, last = P).
 */
export function deferredApplyGraph(type: ElemType): GraphDef {
  const t = (name: string, dims: (number | string)[]) => ({ name, type, dims });
  const i64 = (name: string, data: number[]) => ({ name, type: 'int64' as const, dims: [data.length], data });
  const B = APPLY_BLOCKS;
  const nodes: NodeSpec[] = [];
  const bound = (i: number) => `at${i}`;
  // 1-element boundaries for row slices of L and R, 2-element ones for blocks of A0.
  // Measured against one GEMM over the whole trailing block (n = 2880, b = 32, one thread, quiet,
  // 2 runs of 4 spectra): applies 1.11-1.14 s vs 1.26-1.45 s; the copies of the 6 transposes and 2
  // concats cost less than the 6 of 16 block products they save.
  for (let i = 0; i < B; i++) {
    nodes.push({ op: 'Slice', inputs: ['L', bound(i), bound(i + 1), 'axis0'], outputs: [`L${i}`] });
    nodes.push({ op: 'Slice', inputs: ['R', bound(i), bound(i + 1), 'axis0'], outputs: [`R${i}`] });
  }
  const block = (i: number, j: number) => (i >= j ? `T${i}_${j}` : `T${j}_${i}t`);
  for (let i = 0; i < B; i++) {
    for (let j = 0; j <= i; j++) {
      nodes.push({ op: 'Concat', inputs: [bound(i), bound(j)], outputs: [`lo${i}_${j}`], attrs: [{ name: 'axis', int: 0 }] });
      nodes.push({ op: 'Concat', inputs: [bound(i + 1), bound(j + 1)], outputs: [`hi${i}_${j}`], attrs: [{ name: 'axis', int: 0 }] });
      nodes.push({ op: 'Slice', inputs: ['A', `lo${i}_${j}`, `hi${i}_${j}`, 'axes01'], outputs: [`A${i}_${j}`] });
      nodes.push({ op: 'Gemm', inputs: [`L${i}`, `R${j}`, `A${i}_${j}`], outputs: [block(i, j)], attrs: [{ name: 'alpha', float: -1 }, { name: 'beta', float: 1 }, { name: 'transB', int: 1 }] });
      if (i !== j) nodes.push({ op: 'Transpose', inputs: [block(i, j)], outputs: [block(j, i)], attrs: [{ name: 'perm', ints: [1, 0] }] });
    }
  }
  for (let i = 0; i < B; i++) nodes.push({ op: 'Concat', inputs: Array.from({ length: B }, (_, j) => block(i, j)), outputs: [`row${i}`], attrs: [{ name: 'axis', int: 1 }] });
  nodes.push({ op: 'Concat', inputs: Array.from({ length: B }, (_, i) => `row${i}`), outputs: ['trail'], attrs: [{ name: 'axis', int: 0 }] });
  return {
    key: `deferredApply2.${type}.${B}`,
    inputs: [t('A', ['P', 'P']), t('L', ['P', 'K2']), t('R', ['P', 'K2']), ...Array.from({ length: B + 1 }, (_, i) => ({ name: bound(i), type: 'int64' as const, dims: [1] }))],
    outputs: [t('trail', ['q', 'q'])],
    initializers: [i64('axis0', [0]), i64('axes01', [0, 1])],
    nodes,
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

/** Block sizes for deltaGramBlockedGraph (and the apply's blocks): k split into `parts` near-equal parts, multiples of 16 where possible (aligned GEMM panels). */
export function gramBlockSizes(k: number, parts = GRAM_BLOCKS): number[] {
  const unit = k >= 16 * parts ? 16 : 1;
  const units = Math.floor(k / unit);
  const sizes = Array.from({ length: parts }, (_, i) => unit * (Math.floor((units * (i + 1)) / parts) - Math.floor((units * i) / parts)));
  sizes[parts - 1]! += k - sizes.reduce((a, b) => a + b, 0);
  return sizes;
}
