/**
 * ONNX Runtime sessions for the project's own graphs. The execution provider is chosen once:
 * CUDA when the installed onnxruntime-node provides it and a GPU is present, else CPU.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import * as ort from 'onnxruntime-node';
import { MoeInspectorError } from '../errors';
import type { ExecutionProvider } from '../report/schema';
import { buildModel, type Initializer, type NodeSpec, type ValueSpec } from './onnx/graph';

export type DeviceRequest = 'auto' | ExecutionProvider;

export interface GraphDef {
  /** Unique per graph structure: sessions are cached by it. */
  readonly key: string;
  readonly inputs: readonly ValueSpec[];
  readonly outputs: readonly ValueSpec[];
  readonly nodes: readonly NodeSpec[];
  /** Constants baked into the model (slice bounds and the like). */
  readonly initializers?: readonly Initializer[];
}

export interface ComputeBackend {
  readonly executionProvider: ExecutionProvider;
  run(graph: GraphDef, feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>>;
  /** Sessions created so far (one per graph key: sessions are built once and reused). */
  readonly cachedSessions: number;
  /**
   * Releases every cached session, and with it the memory arena each one grew; the next run of a
   * graph builds its session again. For a change of phase (spectra -> neuron matching): measured
   * on a DeepSeek-V3-shaped projection, 590 -> 226 MiB RSS. Only when no run is in flight.
   */
  trim(): Promise<void>;
  dispose(): Promise<void>;
}

function gpuPresent(): boolean {
  return existsSync('/dev/nvidia0') || existsSync('/dev/nvidiactl');
}

function cudaProvided(): boolean {
  const backends = (ort as unknown as { listSupportedBackends?: () => { name: string; bundled: boolean }[] }).listSupportedBackends?.() ?? [];
  return backends.some((b) => b.name === 'cuda');
}

/** A trivial graph used to probe whether a provider really loads (the CUDA libraries may be missing). */
const PROBE: GraphDef = {
  key: 'probe',
  inputs: [{ name: 'x', type: 'float32', dims: [1] }],
  outputs: [{ name: 'y', type: 'float32', dims: [1] }],
  nodes: [{ op: 'Identity', inputs: ['x'], outputs: ['y'] }],
};

class OrtBackend implements ComputeBackend {
  private readonly sessions = new Map<string, Promise<ort.InferenceSession>>();

  constructor(
    readonly executionProvider: ExecutionProvider,
    private readonly threads: number = availableParallelism(),
    private readonly arena = true,
  ) {}

  get cachedSessions(): number {
    return this.sessions.size;
  }

  private session(g: GraphDef): Promise<ort.InferenceSession> {
    let s = this.sessions.get(g.key);
    if (!s) {
      s = ort.InferenceSession.create(buildModel(g.key, g.inputs, g.outputs, g.nodes, g.initializers), {
        executionProviders: [this.executionProvider],
        intraOpNumThreads: this.threads,
        graphOptimizationLevel: 'all',
        // Spectrum threads free their tensors at once instead of keeping a growing arena each.
        ...(this.arena ? {} : { enableCpuMemArena: false }),
        // Our graphs are few large GEMMs; idle intra-op threads spinning between them only steal
        // the core the eigen worker thread needs (2-core machines).
        extra: { session: { intra_op: { allow_spinning: process.env['MOE_ORT_SPIN'] === '1' ? '1' : '0' } } },
      });
      s.catch(() => this.sessions.delete(g.key));
      this.sessions.set(g.key, s);
    }
    return s;
  }

  async run(g: GraphDef, feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> {
    const s = await this.session(g);
    return (await s.run(feeds)) as Record<string, ort.Tensor>;
  }

  async trim(): Promise<void> {
    const all = await Promise.allSettled(this.sessions.values());
    this.sessions.clear();
    for (const r of all) if (r.status === 'fulfilled') await r.value.release();
  }

  dispose(): Promise<void> {
    return this.trim();
  }
}

async function probe(ep: ExecutionProvider, threads?: number, arena = true): Promise<OrtBackend> {
  const b = new OrtBackend(ep, threads, arena);
  await b.run(PROBE, { x: new ort.Tensor('float32', Float32Array.of(1), [1]) });
  return b;
}

/**
 * A CPU backend whose sessions run on the calling thread only (intra-op threads = `threads`): the
 * spectrum pool's workers each own one, so experts run side by side instead of one expert's small
 * GEMMs being split across cores.
 */
export async function createCpuBackend(threads: number): Promise<ComputeBackend> {
  return probe('cpu', threads, false);
}

export async function createComputeBackend(device: DeviceRequest): Promise<ComputeBackend> {
  if (device === 'cpu') return probe('cpu');
  const cudaPossible = cudaProvided() && gpuPresent();
  if (device === 'cuda') {
    if (!cudaPossible) {
      throw new MoeInspectorError('usage', `--device cuda: ${!gpuPresent() ? 'no NVIDIA GPU found' : 'this onnxruntime-node install has no CUDA provider'} (see README, "GPU execution provider")`);
    }
    return probe('cuda').catch((e: Error) => {
      throw new MoeInspectorError('usage', `--device cuda: the CUDA execution provider failed to load (${e.message})`);
    });
  }
  if (cudaPossible) {
    try {
      return await probe('cuda');
    } catch {
      // fall through to CPU: auto never fails because a GPU stack is incomplete
    }
  }
  return probe('cpu');
}

export { ort };
