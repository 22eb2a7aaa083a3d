/**
 * A tiny ONNX graph builder: enough of ModelProto (opset 17) to express the project's matrix
 * graphs. Field numbers are those of onnx/onnx.proto.
 */
import { ProtoWriter } from './protobuf';

export type ElemType = 'float32' | 'float64';
const ELEM: Record<ElemType, number> = { float32: 1, float64: 11 };

/** A dimension: a fixed size or a symbolic name (dynamic). */
export type Dim = number | string;

export interface ValueSpec {
  readonly name: string;
  readonly type: ElemType;
  readonly dims: readonly Dim[];
}

export type Attr = { readonly name: string } & ({ readonly ints: readonly number[] } | { readonly int: number } | { readonly float: number });

export interface NodeSpec {
  readonly op: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly attrs?: readonly Attr[];
}

function valueInfo(v: ValueSpec): ProtoWriter {
  const shape = new ProtoWriter();
  for (const d of v.dims) shape.message(1, typeof d === 'number' ? new ProtoWriter().int(1, d) : new ProtoWriter().string(2, d));
  const tensorType = new ProtoWriter().int(1, ELEM[v.type]).message(2, shape);
  return new ProtoWriter().string(1, v.name).message(2, new ProtoWriter().message(1, tensorType));
}

function attribute(a: Attr): ProtoWriter {
  const w = new ProtoWriter().string(1, a.name);
  if ('ints' in a) {
    for (const i of a.ints) w.int(8, i);
    return w.int(20, 7);
  }
  if ('int' in a) return w.int(3, a.int).int(20, 2);
  return w.float(2, a.float).int(20, 1);
}

function node(n: NodeSpec, i: number): ProtoWriter {
  const w = new ProtoWriter();
  for (const s of n.inputs) w.string(1, s);
  for (const s of n.outputs) w.string(2, s);
  w.string(3, `${n.op}_${i}`).string(4, n.op);
  for (const a of n.attrs ?? []) w.message(5, attribute(a));
  return w;
}

export function buildModel(name: string, inputs: readonly ValueSpec[], outputs: readonly ValueSpec[], nodes: readonly NodeSpec[]): Uint8Array {
  const graph = new ProtoWriter();
  nodes.forEach((n, i) => graph.message(1, node(n, i)));
  graph.string(2, name);
  for (const v of inputs) graph.message(11, valueInfo(v));
  for (const v of outputs) graph.message(12, valueInfo(v));
  return new ProtoWriter()
    .int(1, 8) // ir_version
    .string(2, 'moe-inspector')
    .message(7, graph)
    .message(8, new ProtoWriter().string(1, '').int(2, 17)) // opset_import: default domain, opset 17
    .finish();
}
