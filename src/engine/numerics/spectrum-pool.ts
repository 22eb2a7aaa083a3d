/**
 * Whole delta spectra on worker threads, one expert per thread at a time: each thread owns a CPU
 * ONNX Runtime backend with one intra-op thread (on machines with more cores than threads, a few)
 * and runs norm, Gram, stage one, chase and tridiagonal eigenvalues itself.
 *
 * Why: one expert's stage one is a chain of small GEMMs and serial JS steps (panel QR, the chase);
 * split across cores it leaves them waiting on each other. Two experts side by side, each on one
 * core, keep both cores busy: measured at n = 2880 (8 spectra), 10.4 s on the main thread with
 * two ORT threads and the chase on the eigen pool, 8.1-8.4 s on two single-threaded spectrum threads.
 * The same graphs run either way; with the CUDA provider the main-thread path stays (the GPU does
 * the products).
 */
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import type { ElemType } from './onnx/graph';
import type { DeltaSpectrum, SpectrumTimes } from './gram-spectrum';
import type { FromSpectrumThread, SpectrumThreadData, ToSpectrumThread } from './spectrum-messages';
import { startThread } from './thread-script';

export interface SolvedSpectrum extends DeltaSpectrum {
  readonly times: SpectrumTimes;
}

interface Job {
  readonly id: number;
  readonly baseId: number;
  /** Dropped once posted (the thread has its copy): a running job does not hold a second one here. */
  w: Float32Array | null;
  readonly type: ElemType;
  readonly band?: number;
  readonly resolve: (r: SolvedSpectrum) => void;
  readonly reject: (e: Error) => void;
}

/** Threads for this machine: one per core up to 8, each with floor(cores / threads) ORT threads. */
export function spectrumThreadPlan(cores = availableParallelism()): { threads: number; ortThreads: number } {
  const threads = Math.max(1, Math.min(8, cores));
  return { threads, ortThreads: Math.max(1, Math.floor(cores / threads)) };
}

/**
 * Bytes one spectrum thread holds while it solves an expert [rows, cols] (measured on the
 * DeepSeek-V3 shape: the base copy, the expert as received, its ORT tensor, the delta and its Gram
 * blocks, about six matrices, plus three k x k float32 arrays for the Gram and stage one).
 */
export function threadWorkingSet(rows: number, cols: number): number {
  const k = Math.min(rows, cols);
  return 6 * 4 * rows * cols + 3 * 4 * k * k;
}

/** What the spectrum threads together may hold (the analysis' memory bound is 2.5 GiB for the whole process tree). */
export const THREADS_MEMORY_BUDGET = 640 * 2 ** 20;

/** Whether `threads` spectrum threads fit the budget for [rows, cols] experts; if not, the spectra run on the main thread. */
export function threadsFit(rows: number, cols: number, threads: number): boolean {
  return threads * threadWorkingSet(rows, cols) <= THREADS_MEMORY_BUDGET;
}

/** A base sent to every thread, and the solves that use it. */
export interface SpectrumBase {
  /** Norm and spectrum of w - base (w [rows, cols], the base's shape). w is copied, never detached. */
  solve(w: Float32Array, type: ElemType, band?: number): Promise<SolvedSpectrum>;
  /** Threads forget the base (after the last solve of the projection). */
  drop(): void;
}

export class SpectrumPool {
  private readonly idle: Worker[] = [];
  private readonly queue: Job[] = [];
  private readonly running = new Map<Worker, Job>();
  private nextId = 1;
  private nextBase = 1;
  private broken: string | null = null;

  private constructor(private readonly all: Worker[]) {
    for (const w of all) {
      w.on('message', (m: FromSpectrumThread) => this.answer(w, m));
      w.on('error', (e) => this.crashed(w, e));
      w.unref();
      this.idle.push(w);
    }
  }

  /** Starts the threads and waits until each has its backend; null when they cannot start (the caller computes in-process). */
  static async start(plan = spectrumThreadPlan()): Promise<SpectrumPool | null> {
    const data: SpectrumThreadData = { ortThreads: plan.ortThreads };
    const workers: Worker[] = [];
    for (let i = 0; i < plan.threads; i++) {
      const w = startThread('spectrum-thread', data);
      if (w === null) break;
      workers.push(w);
    }
    const ready = await Promise.all(workers.map((w) => readiness(w)));
    if (workers.length === 0 || !ready.every(Boolean)) {
      await Promise.all(workers.map((w) => w.terminate()));
      return null;
    }
    return new SpectrumPool(workers);
  }

  get threads(): number {
    return this.all.length;
  }

  /** Sends `base` [rows, cols] to every thread (a copy each). */
  withBase(base: Float32Array, rows: number, cols: number): SpectrumBase {
    const baseId = this.nextBase++;
    this.broadcast({ kind: 'base', baseId, base, rows, cols });
    return {
      solve: (w, type, band) => this.submit(baseId, w, type, band),
      drop: () => this.broadcast({ kind: 'drop', baseId }),
    };
  }

  private broadcast(m: ToSpectrumThread): void {
    for (const w of this.all) w.postMessage(m);
  }

  private submit(baseId: number, w: Float32Array, type: ElemType, band?: number): Promise<SolvedSpectrum> {
    if (this.broken !== null) return Promise.reject(new Error(this.broken));
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextId++, baseId, w, type, band, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const worker = this.idle.pop()!;
      const job = this.queue.shift()!;
      this.running.set(worker, job);
      worker.ref(); // busy: keep the process alive until the answer arrives
      const m: ToSpectrumThread = { kind: 'solve', id: job.id, baseId: job.baseId, w: job.w!, type: job.type, band: job.band };
      worker.postMessage(m); // structured clone: the caller's array stays whole
      job.w = null;
    }
  }

  private answer(worker: Worker, m: FromSpectrumThread): void {
    if (m.kind !== 'solved' && m.kind !== 'error') return;
    const job = this.running.get(worker);
    this.running.delete(worker);
    worker.unref();
    this.idle.push(worker);
    if (job) m.kind === 'solved' ? job.resolve({ deltaNorm: m.deltaNorm, ev: m.ev, times: m.times }) : job.reject(new Error(m.error));
    this.pump();
  }

  private crashed(worker: Worker, e: Error): void {
    // A thread that dies takes its base copies with it: fail its job and everything queued, and
    // refuse new work; the caller reports the expert (a numerics error), nothing is silently lost.
    this.broken = `a spectrum thread stopped (${e.message})`;
    this.running.get(worker)?.reject(new Error(this.broken));
    this.running.delete(worker);
    for (const job of this.queue.splice(0)) job.reject(new Error(this.broken));
  }

  async dispose(): Promise<void> {
    await Promise.all(this.all.map((w) => w.terminate()));
    this.all.length = 0;
    this.idle.length = 0;
  }
}

function readiness(w: Worker): Promise<boolean> {
  return new Promise((resolve) => {
    const onMessage = (m: FromSpectrumThread) => {
      if (m.kind !== 'ready' && m.kind !== 'failed-to-start') return;
      w.off('message', onMessage);
      w.off('error', onError);
      resolve(m.kind === 'ready');
    };
    const onError = () => {
      w.off('message', onMessage);
      resolve(false);
    };
    w.on('message', onMessage);
    w.once('error', onError);
  });
}

let shared: Promise<SpectrumPool | null> | null = null;
/** One pool per process, started on first use; null where threads cannot start. */
export function sharedSpectrumPool(): Promise<SpectrumPool | null> {
  return (shared ??= SpectrumPool.start());
}
