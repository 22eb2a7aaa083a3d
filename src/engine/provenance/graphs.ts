/** The ONNX Runtime graphs of neuron matching. Dimensions are symbolic: one session serves every size. */
import type { GraphDef } from '../numerics/backend';

/**
 * Sketch of neurons: S = N P with N [I, D] (one neuron per row) and P [D, k] a fixed Gaussian
 * projection; each row of S scaled to unit length, so S_a S_b^T holds sketch cosines.
 */
export function sketchGraph(): GraphDef {
  return {
    key: 'provenance.sketch',
    inputs: [
      { name: 'N', type: 'float32', dims: ['I', 'D'] },
      { name: 'P', type: 'float32', dims: ['D', 'k'] },
    ],
    outputs: [{ name: 'S', type: 'float32', dims: ['I', 'k'] }],
    initializers: [{ name: 'tiny', type: 'float32', dims: [], data: [1e-30] }],
    nodes: [
      { op: 'MatMul', inputs: ['N', 'P'], outputs: ['R'] },
      { op: 'ReduceL2', inputs: ['R'], outputs: ['L'], attrs: [{ name: 'axes', ints: [1] }, { name: 'keepdims', int: 1 }] },
      { op: 'Max', inputs: ['L', 'tiny'], outputs: ['Lc'] }, // an all-zero neuron keeps a zero sketch
      { op: 'Div', inputs: ['R', 'Lc'], outputs: ['S'] },
    ],
  };
}

/**
 * Best candidates between two sketched neuron sets A [Ia, k] and B [Ib, k]: C = A B^T (sketch
 * cosines), for each row of A the best column (index and value) and for each column the best row.
 * Indices come back as float32 (exact below 2^24) so the graph needs no int64 outputs.
 */
export function bestMatchGraph(): GraphDef {
  const f = (name: string, dims: (number | string)[]) => ({ name, type: 'float32' as const, dims });
  return {
    key: 'provenance.bestMatch',
    inputs: [f('A', ['Ia', 'k']), f('B', ['Ib', 'k'])],
    outputs: [f('rowArg', ['Ia']), f('rowMax', ['Ia']), f('colArg', ['Ib']), f('colMax', ['Ib'])],
    nodes: [
      { op: 'Gemm', inputs: ['A', 'B'], outputs: ['C'], attrs: [{ name: 'transB', int: 1 }] },
      { op: 'ArgMax', inputs: ['C'], outputs: ['ra'], attrs: [{ name: 'axis', int: 1 }, { name: 'keepdims', int: 0 }] },
      { op: 'ReduceMax', inputs: ['C'], outputs: ['rowMax'], attrs: [{ name: 'axes', ints: [1] }, { name: 'keepdims', int: 0 }] },
      { op: 'ArgMax', inputs: ['C'], outputs: ['ca'], attrs: [{ name: 'axis', int: 0 }, { name: 'keepdims', int: 0 }] },
      { op: 'ReduceMax', inputs: ['C'], outputs: ['colMax'], attrs: [{ name: 'axes', ints: [0] }, { name: 'keepdims', int: 0 }] },
      { op: 'Cast', inputs: ['ra'], outputs: ['rowArg'], attrs: [{ name: 'to', int: 1 }] },
      { op: 'Cast', inputs: ['ca'], outputs: ['colArg'], attrs: [{ name: 'to', int: 1 }] },
    ],
  };
}
