/**
 * A small pool of worker threads solving symmetric eigenproblems, so both cores work: the JS
 * eigen-solver is single-threaded, and ONNX Runtime computes the next Gram matrices meanwhile.
 * Falls back to solving inline where threads cannot start.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { symmetricEigenvalues } from './symmetric-eigen';

interface Task {
  resolve: (ev: Float64Array) => void;
  reject: (e: Error) => void;
}

function threadScript(): string | null {
  // Bundled: dist/eigen-thread.js beside dist/worker.js. From sources (tests): the .ts next to this file.
  for (const f of [join(__dirname, 'eigen-thread.js'), join(__dirname, 'eigen-thread.ts')]) if (existsSync(f)) return f;
  return null;
}

export class EigenPool {
  private readonly idle: Worker[] = [];
  private readonly all: Worker[] = [];
  private readonly queue: { id: number; n: number; a: Float64Array }[] = [];
  private readonly tasks = new Map<number, Task>();
  private readonly busy = new Map<Worker, number>();
  private readonly busyJobs = new Map<number, { id: number; n: number; a: Float64Array }>();
  private nextId = 1;

  constructor(size = availableParallelism()) {
    const script = threadScript();
    if (script === null) return;
    for (let i = 0; i < size; i++) {
      // From sources (tests run under tsx) the thread registers the TypeScript loader itself.
      const w = script.endsWith('.ts')
        ? new Worker(`require('tsx/cjs'); require(${JSON.stringify(script)});`, { eval: true })
        : new Worker(script);
      w.unref();
      w.on('message', (m: { id: number; ev?: Float64Array; error?: string }) => this.done(w, m));
      w.on('error', (e) => this.fail(e));
      this.all.push(w);
      this.idle.push(w);
    }
  }

  /** Eigenvalues (descending) of the symmetric n x n matrix `a` (lower triangle read; the buffer is transferred). */
  eigenvalues(a: Float64Array, n: number): Promise<Float64Array> {
    if (this.all.length === 0) return Promise.resolve(symmetricEigenvalues(a, n));
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      this.tasks.set(id, { resolve, reject });
      this.queue.push({ id, n, a });
      this.pump();
    });
  }

  private pump(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const w = this.idle.pop()!;
      const job = this.queue.shift()!;
      this.busy.set(w, job.id);
      this.busyJobs.set(job.id, job);
      w.postMessage(job); // copied, not transferred: a dead thread's task can still be solved inline
    }
  }

  private done(w: Worker, m: { id: number; ev?: Float64Array; error?: string }): void {
    this.busy.delete(w);
    this.busyJobs.delete(m.id);
    this.idle.push(w);
    const t = this.tasks.get(m.id);
    this.tasks.delete(m.id);
    if (t) m.ev ? t.resolve(m.ev) : t.reject(new Error(m.error ?? 'eigen thread failed'));
    this.pump();
  }

  /** A thread died: its task and everything queued are solved inline instead, and the pool stops using threads. */
  private fail(e: Error): void {
    void e; // the work is redone inline, where a real error would surface again
    this.busy.clear();
    this.all.splice(0, this.all.length).forEach((x) => void x.terminate());
    this.idle.length = 0;
    const orphans = [...this.busyJobs.values(), ...this.queue.splice(0)];
    this.busyJobs.clear();
    for (const job of orphans) {
      const t = this.tasks.get(job.id);
      this.tasks.delete(job.id);
      try {
        t?.resolve(symmetricEigenvalues(job.a, job.n));
      } catch (err) {
        t?.reject(err as Error);
      }
    }
  }

  async dispose(): Promise<void> {
    await Promise.all(this.all.map((w) => w.terminate()));
    this.all.length = 0;
    this.idle.length = 0;
  }
}

let shared: EigenPool | null = null;
export function sharedEigenPool(): EigenPool {
  return (shared ??= new EigenPool());
}
