/**
 * A tiny ONNX graph builder: enough of ModelProto (opset 17) to express the project's matrix
 * graphs. Field numbers are those of onnx/onnx.proto.
 */
import { ProtoWriter } from './protobuf';

export type ElemType = 'float32' | 'float64';
const ELEM: Record<ElemType | 'int64', number> = { float32: 1, float64: 11, int64: 7 };

/** A constant baked into the graph (TensorProto with raw little-endian data): slice bounds, scalars. */
export interface Initializer {
  readonly name: string;
  readonly type: ElemType | 'int64';
  readonly dims: readonly number[];
  readonly data: readonly number[];
}

/** A dimension: a fixed size or a symbolic name (dynamic). */
export type Dim = number | string;

export interface ValueSpec {
  readonly name: string;
  readonly type: ElemType | 'int64'; // int64: dynamic slice bounds
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

function rawData(init: Initializer): Uint8Array {
  const width = init.type === 'float32' ? 4 : 8;
  const out = new Uint8Array(init.data.length * width);
  const view = new DataView(out.buffer);
  init.data.forEach((x, i) => {
    if (init.type === 'int64') view.setBigInt64(i * 8, BigInt(x), true);
    else if (init.type === 'float64') view.setFloat64(i * 8, x, true);
    else view.setFloat32(i * 4, x, true);
  });
  return out;
}

function tensorProto(init: Initializer): ProtoWriter {
  const w = new ProtoWriter();
  for (const d of init.dims) w.int(1, d); // dims
  return w.int(2, ELEM[init.type]).string(8, init.name).bytes(9, rawData(init)); // data_type, name, raw_data
}

export function buildModel(name: string, inputs: readonly ValueSpec[], outputs: readonly ValueSpec[], nodes: readonly NodeSpec[], initializers: readonly Initializer[] = []): Uint8Array {
  const graph = new ProtoWriter();
  nodes.forEach((n, i) => graph.message(1, node(n, i)));
  graph.string(2, name);
  for (const init of initializers) graph.message(5, tensorProto(init));
  for (const v of inputs) graph.message(11, valueInfo(v));
  for (const v of outputs) graph.message(12, valueInfo(v));
  return new ProtoWriter()
    .int(1, 8) // ir_version
    .string(2, 'moe-inspector')
    .message(7, graph)
    .message(8, new ProtoWriter().string(1, '').int(2, 17)) // opset_import: default domain, opset 17
    .finish();
}
