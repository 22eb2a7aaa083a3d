import { strict as assert } from 'node:assert';
import { existsSync } from 'node:fs';
import { createComputeBackend, ort, type ComputeBackend, type GraphDef } from '../../src/engine/numerics/backend';
import { ProtoWriter } from '../../src/engine/numerics/onnx/protobuf';
import { deltaGram } from '../../src/engine/numerics/gram-spectrum';
import { gramBlockSizes } from '../../src/engine/numerics/graphs';
import { isMoeInspectorError } from '../../src/engine/errors';
import { gaussian } from './reference';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const f64 = (name: string, dims: (number | string)[]) => ({ name, type: 'float64' as const, dims });

/** Row-major product in float64, the reference for every graph below. */
function matmul(a: ArrayLike<number>, b: ArrayLike<number>, m: number, k: number, n: number): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
    let s = 0;
    for (let l = 0; l < k; l++) s += a[i * k + l]! * b[l * n + j]!;
    c[i * n + j] = s;
  }
  return c;
}

function assertClose(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i]! - want[i]!) <= tol, `${what}[${i}]: ${got[i]} vs ${want[i]}`);
}

describe('protobuf encoder (wire format by hand)', () => {
  it('varints, tags, strings, fixed32 floats and nested messages match the protobuf encoding spec', () => {
    assert.equal(hex(new ProtoWriter().int(1, 150).finish()), '089601'); // the spec's own example
    assert.equal(hex(new ProtoWriter().int(2, 0).finish()), '1000');
    assert.equal(hex(new ProtoWriter().int(1, -1).finish()), '08ffffffffffffffffff01'); // int64 -1: ten bytes
    assert.equal(hex(new ProtoWriter().string(2, 'testing').finish()), '120774657374696e67');
    assert.equal(hex(new ProtoWriter().float(2, 1).finish()), '150000803f'); // wire type 5, IEEE little-endian
    assert.equal(hex(new ProtoWriter().message(3, new ProtoWriter().int(1, 150)).finish()), '1a03089601');
  });
});

describe('ONNX graphs built by the project run in real onnxruntime-node sessions', function () {
  let backend: ComputeBackend;
  before(async () => (backend = await createComputeBackend('cpu')));
  after(async () => backend.dispose());
  const g = gaussian(11);
  const rand = (n: number) => Float64Array.from({ length: n }, g);
  const t64 = (data: Float64Array, dims: number[]) => new ort.Tensor('float64', data, dims);

  it('MatMul, Gemm (alpha, beta, transB), Sub, Mul, Transpose', async () => {
    const graph: GraphDef = {
      key: 'test.ops1',
      inputs: [f64('A', ['m', 'k']), f64('B', ['k', 'n']), f64('C', ['m', 'n']), f64('Bt', ['n', 'k'])],
      outputs: [f64('P', ['m', 'n']), f64('G', ['m', 'n']), f64('S', ['m', 'n']), f64('M', ['m', 'n']), f64('T', ['n', 'm'])],
      nodes: [
        { op: 'MatMul', inputs: ['A', 'B'], outputs: ['P'] },
        { op: 'Gemm', inputs: ['A', 'Bt', 'C'], outputs: ['G'], attrs: [{ name: 'alpha', float: -0.5 }, { name: 'beta', float: 2 }, { name: 'transB', int: 1 }] },
        { op: 'Sub', inputs: ['P', 'C'], outputs: ['S'] },
        { op: 'Mul', inputs: ['P', 'C'], outputs: ['M'] },
        { op: 'Transpose', inputs: ['P'], outputs: ['T'], attrs: [{ name: 'perm', ints: [1, 0] }] },
      ],
    };
    const [m, k, n] = [7, 5, 3];
    const A = rand(m * k), B = rand(k * n), C = rand(m * n);
    const Bt = new Float64Array(n * k);
    for (let i = 0; i < k; i++) for (let j = 0; j < n; j++) Bt[j * k + i] = B[i * n + j]!;
    const out = await backend.run(graph, { A: t64(A, [m, k]), B: t64(B, [k, n]), C: t64(C, [m, n]), Bt: t64(Bt, [n, k]) });
    const P = matmul(A, B, m, k, n);
    assertClose(out['P']!.data as Float64Array, P, 1e-13, 'MatMul');
    assertClose(out['G']!.data as Float64Array, P.map((x, i) => -0.5 * x + 2 * C[i]!), 1e-13, 'Gemm');
    assertClose(out['S']!.data as Float64Array, P.map((x, i) => x - C[i]!), 1e-13, 'Sub');
    assertClose(out['M']!.data as Float64Array, P.map((x, i) => x * C[i]!), 1e-13, 'Mul');
    const T = new Float64Array(n * m);
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) T[j * m + i] = P[i * n + j]!;
    assertClose(out['T']!.data as Float64Array, T, 1e-13, 'Transpose');
  });

  it('ReduceMean and ReduceSum (opset 17: axes as an attribute / as an input initializer), batched MatMul on [B, n, n]', async () => {
    const graph: GraphDef = {
      key: 'test.ops2',
      inputs: [f64('X', ['b', 'n', 'n']), f64('Y', ['b', 'n', 'n'])],
      outputs: [f64('mean0', ['n', 'n']), f64('sum12', ['b']), f64('XY', ['b', 'n', 'n'])],
      initializers: [{ name: 'axes12', type: 'int64', dims: [2], data: [1, 2] }],
      nodes: [
        { op: 'ReduceMean', inputs: ['X'], outputs: ['mean0'], attrs: [{ name: 'axes', ints: [0] }, { name: 'keepdims', int: 0 }] },
        { op: 'ReduceSum', inputs: ['X', 'axes12'], outputs: ['sum12'], attrs: [{ name: 'keepdims', int: 0 }] },
        { op: 'MatMul', inputs: ['X', 'Y'], outputs: ['XY'] },
      ],
    };
    const [b, n] = [4, 6];
    const X = rand(b * n * n), Y = rand(b * n * n);
    const out = await backend.run(graph, { X: t64(X, [b, n, n]), Y: t64(Y, [b, n, n]) });
    const mean = new Float64Array(n * n);
    for (let s = 0; s < b; s++) for (let i = 0; i < n * n; i++) mean[i]! += X[s * n * n + i]! / b;
    assertClose(out['mean0']!.data as Float64Array, mean, 1e-13, 'ReduceMean');
    const sums = Array.from({ length: b }, (_, s) => X.subarray(s * n * n, (s + 1) * n * n).reduce((a, x) => a + x, 0));
    assertClose(out['sum12']!.data as Float64Array, sums, 1e-12, 'ReduceSum');
    const xy = out['XY']!.data as Float64Array;
    for (let s = 0; s < b; s++) {
      const want = matmul(X.subarray(s * n * n), Y.subarray(s * n * n), n, n, n);
      assertClose(xy.subarray(s * n * n, (s + 1) * n * n), want, 1e-13, `batched MatMul[${s}]`);
    }
  });

  it('float32 initializers and Slice with int64 initializer bounds', async () => {
    const graph: GraphDef = {
      key: 'test.ops3',
      inputs: [{ name: 'X', type: 'float32', dims: ['m', 'n'] }],
      outputs: [{ name: 'Y', type: 'float32', dims: ['a', 'b'] }],
      initializers: [
        { name: 'starts', type: 'int64', dims: [2], data: [1, 2] },
        { name: 'ends', type: 'int64', dims: [2], data: [2 ** 53 - 1, 4] },
        { name: 'two', type: 'float32', dims: [], data: [2.5] },
      ],
      nodes: [
        { op: 'Slice', inputs: ['X', 'starts', 'ends'], outputs: ['S'] },
        { op: 'Mul', inputs: ['S', 'two'], outputs: ['Y'] },
      ],
    };
    const X = Float32Array.from({ length: 4 * 5 }, (_, i) => i);
    const out = await backend.run(graph, { X: new ort.Tensor('float32', X, [4, 5]) });
    assert.deepEqual(out['Y']!.dims, [3, 2]);
    assert.deepEqual([...(out['Y']!.data as Float32Array)], [7, 8, 12, 13, 17, 18].map((x) => x * 2.5));
  });

  it('the lower-block delta Gram (Split, 10 Gemms, Transpose, Concat) equals D D^T / D^T D in float64 (1e-12), both sides, uneven blocks', async () => {
    const g = gaussian(41);
    for (const [m, n] of [[257, 300], [300, 257], [64, 70]] as const) {
      const w = Float64Array.from({ length: m * n }, g);
      const base = Float64Array.from({ length: m * n }, g);
      const d = w.map((x, i) => x - base[i]!);
      const dt = new Float64Array(m * n);
      for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) dt[j * m + i] = d[i * n + j]!;
      const want = m <= n ? matmul(d, dt, m, n, m) : matmul(dt, d, n, m, n);
      const got = await deltaGram(backend, t64(w, [m, n]), t64(base, [m, n]), m, n);
      assertClose(got, want, 1e-12 * Math.max(m, n), `${m}x${n}`);
    }
    assert.deepEqual(gramBlockSizes(300), [64, 80, 64, 92]);
    assert.deepEqual(gramBlockSizes(1024), [256, 256, 256, 256]);
  });

  it('creates one session per graph key and reuses it', async () => {
    const graph: GraphDef = { key: 'test.reuse', inputs: [f64('X', ['n'])], outputs: [f64('Y', ['n'])], nodes: [{ op: 'Mul', inputs: ['X', 'X'], outputs: ['Y'] }] };
    const before = backend.cachedSessions;
    for (let i = 0; i < 3; i++) {
      const out = await backend.run(graph, { X: t64(Float64Array.of(i, 3), [2]) });
      assert.deepEqual([...(out['Y']!.data as Float64Array)], [i * i, 9]);
    }
    assert.equal(backend.cachedSessions, before + 1);
  });

  it('trim releases every session; the next run builds its session again, same results', async () => {
    const graph: GraphDef = { key: 'test.trim', inputs: [f64('X', ['n'])], outputs: [f64('Y', ['n'])], nodes: [{ op: 'Add', inputs: ['X', 'X'], outputs: ['Y'] }] };
    const first = await backend.run(graph, { X: t64(Float64Array.of(1.5, -2), [2]) });
    assert.ok(backend.cachedSessions >= 1);
    await backend.trim();
    assert.equal(backend.cachedSessions, 0);
    const again = await backend.run(graph, { X: t64(Float64Array.of(1.5, -2), [2]) });
    assert.deepEqual([...(again['Y']!.data as Float64Array)], [...(first['Y']!.data as Float64Array)]);
    assert.equal(backend.cachedSessions, 1);
  });
});

describe('createComputeBackend', () => {
  it("'cpu' reports the CPU provider; 'auto' picks CUDA only with a GPU and a CUDA-enabled runtime", async () => {
    const cpu = await createComputeBackend('cpu');
    assert.equal(cpu.executionProvider, 'cpu');
    await cpu.dispose();
    const auto = await createComputeBackend('auto');
    const gpu = existsSync('/dev/nvidia0');
    if (!gpu) assert.equal(auto.executionProvider, 'cpu');
    await auto.dispose();
  });

  it("'cuda' without a usable CUDA provider is a usage error that says why", async function () {
    const hasCuda = (ort as unknown as { listSupportedBackends?: () => { name: string }[] }).listSupportedBackends?.().some((b) => b.name === 'cuda') ?? false;
    if (existsSync('/dev/nvidia0') && hasCuda) this.skip(); // this machine can run CUDA: nothing to refuse
    await assert.rejects(createComputeBackend('cuda'), (e: unknown) => isMoeInspectorError(e) && e.code === 'usage' && /cuda/i.test(e.message));
  });
});
