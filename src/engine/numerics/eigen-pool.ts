/**
 * A small pool of worker threads for the JS stages of symmetric eigenproblems (bulge chasing,
 * tridiagonal QL, small dense solves), so both cores work: the main thread drives ONNX Runtime
 * (whose session.run blocks it) while a worker chases the previous expert's band. Falls back to
 * solving inline where threads cannot start (no thread script beside this module).
 */
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { solveEigenJob, type EigenJob, type EigenResult } from './eigen-job';
import { startThread } from './thread-script';

interface Pending {
  readonly job: EigenJob & { id: number };
  readonly resolve: (r: EigenResult) => void;
  readonly reject: (e: Error) => void;
}

export class EigenPool {
  private readonly idle: Worker[] = [];
  private readonly all: Worker[] = [];
  private readonly queue: Pending[] = [];
  private readonly running = new Map<Worker, Pending>();
  private nextId = 1;

  constructor(size = Math.max(1, availableParallelism() - 1)) {
    for (let i = 0; i < size; i++) this.spawn();
  }

  private spawn(): void {
    const w = startThread('eigen-thread');
    if (w === null) return;
    w.unref(); // an idle pool never keeps the process alive
    w.on('message', (m: { id: number; result?: EigenResult; error?: string }) => this.done(w, m));
    w.on('error', (e) => this.crashed(w, e));
    this.all.push(w);
    this.idle.push(w);
  }

  /** Eigenvalues, descending. The job's buffer is copied to the thread (a band is small), so a crashed thread's job can still run inline. */
  solve(job: EigenJob): Promise<EigenResult> {
    if (this.all.length === 0) return Promise.resolve().then(() => solveEigenJob(job));
    return new Promise((resolve, reject) => {
      this.queue.push({ job: { ...job, id: this.nextId++ }, resolve, reject });
      this.pump();
    });
  }

  /**
   * Eigenvalues (descending) of the dense symmetric n x n matrix `a` (lower triangle read), by the
   * one-stage JS solver on a thread: fine for small n; for large Gram matrices use gramEigenvalues
   * (gram-spectrum.ts), whose O(n^3) part runs in ONNX Runtime.
   */
  async eigenvalues(a: Float64Array, n: number): Promise<Float64Array> {
    return (await this.solve({ kind: 'dense', n, a })).ev;
  }

  /** Threads actually running (0: jobs are solved inline). */
  get threads(): number {
    return this.all.length;
  }

  private pump(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const w = this.idle.pop()!;
      const p = this.queue.shift()!;
      this.running.set(w, p);
      w.ref(); // busy: keep the process alive until the answer arrives
      w.postMessage(p.job);
    }
  }

  private done(w: Worker, m: { id: number; result?: EigenResult; error?: string }): void {
    const p = this.running.get(w);
    this.running.delete(w);
    w.unref();
    this.idle.push(w);
    if (p) m.result ? p.resolve(m.result) : p.reject(new Error(m.error ?? 'eigen thread failed'));
    this.pump();
  }

  private crashed(w: Worker, _e: Error): void {
    // A thread that dies (e.g. cannot load) must not fail the analysis: its job runs inline.
    const p = this.running.get(w);
    this.running.delete(w);
    if (p) Promise.resolve().then(() => solveEigenJob(p.job)).then(p.resolve, p.reject);
    const i = this.all.indexOf(w);
    if (i >= 0) this.all.splice(i, 1);
    // remaining queued jobs run on the other threads, or inline when none is left
    if (this.all.length === 0) for (const p of this.queue.splice(0)) Promise.resolve().then(() => solveEigenJob(p.job)).then(p.resolve, p.reject);
  }

  async dispose(): Promise<void> {
    await Promise.all(this.all.map((w) => w.terminate()));
    this.all.length = 0;
    this.idle.length = 0;
  }
}

let shared: EigenPool | null = null;
/** One pool per process, created on first use. */
export function sharedEigenPool(): EigenPool {
  return (shared ??= new EigenPool());
}
