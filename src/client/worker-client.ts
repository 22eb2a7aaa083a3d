/**
 * Caller side of the worker protocol: forks the compute worker, runs jobs, streams progress and
 * partial results, and guarantees that a cancelled or crashed job never hangs the caller.
 *
 * Cancellation: the worker gets a 'cancel' message and stops at its next check; if it has not
 * confirmed within `cancelGraceMs` (a long ONNX Runtime call cannot be interrupted), the process is
 * killed. Either way no process is left behind and the job rejects with code 'cancelled'.
 */
import { fork, type ChildProcess } from 'node:child_process';
import type { FromWorker, Job, JobResult, Progress, ToWorker, WireError } from '../shared/messages';
import type { LayerAnalysis } from '../engine/report/schema';
import type { LayerSummary } from '../shared/report-summary';

export interface JobHandlers {
  onProgress?: (p: Progress) => void;
  onPartial?: (modelIndex: number, layer: LayerAnalysis) => void;
  /** Jobs with a store: a finished layer's summary and the file holding the full layer. */
  onStoredLayer?: (modelIndex: number, layer: LayerSummary, file: string) => void;
}

/** A job that ended without a result: carries the worker's error code ('cancelled', 'not-moe', 'worker-crashed', ...). */
export class WorkerJobError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
    this.name = 'WorkerJobError';
  }
}

interface Pending {
  readonly handlers: JobHandlers;
  readonly resolve: (r: JobResult) => void;
  readonly reject: (e: WorkerJobError) => void;
  killTimer?: NodeJS.Timeout;
}

export interface WorkerClientOptions {
  /** Path of the bundled worker (dist/worker.js). */
  readonly workerPath: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly cancelGraceMs?: number;
}

export class WorkerClient {
  private child: ChildProcess | null = null;
  private readonly pending = new Map<string, Pending>();
  private nextId = 1;

  private constructor(private readonly opts: WorkerClientOptions) {}

  static start(opts: WorkerClientOptions): WorkerClient {
    return new WorkerClient(opts);
  }

  /** Runs one job in the worker. Rejects with WorkerJobError on error, cancel or crash. */
  run(job: Job, handlers: JobHandlers = {}, signal?: AbortSignal): Promise<JobResult> {
    if (signal?.aborted) return Promise.reject(new WorkerJobError('cancelled', 'cancelled before start'));
    const id = String(this.nextId++);
    const child = this.ensureChild();
    return new Promise<JobResult>((resolve, reject) => {
      const entry: Pending = { handlers, resolve, reject };
      this.pending.set(id, entry);
      signal?.addEventListener('abort', () => this.cancel(id), { once: true });
      this.send(child, { type: 'request', id, job });
    });
  }

  /** Stops the worker process; pending jobs reject as cancelled. */
  dispose(): void {
    const child = this.child;
    this.child = null;
    for (const [id, p] of this.pending) this.settleError(id, p, { code: 'cancelled', message: 'worker stopped' });
    if (child && child.exitCode === null) child.kill('SIGKILL');
  }

  /** The worker's pid while one runs (for tests and diagnostics). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  private cancel(id: string): void {
    const p = this.pending.get(id);
    const child = this.child;
    if (!p || !child) return;
    this.send(child, { type: 'cancel', id });
    p.killTimer = setTimeout(() => this.killAfterCancel(id), this.opts.cancelGraceMs ?? 1000);
  }

  /** The worker did not stop in time: kill it; the next job starts a fresh one. */
  private killAfterCancel(id: string): void {
    const p = this.pending.get(id);
    if (p) this.settleError(id, p, { code: 'cancelled', message: 'cancelled (worker stopped)' });
    const child = this.child;
    this.child = null;
    if (child && child.exitCode === null) child.kill('SIGKILL');
  }

  private ensureChild(): ChildProcess {
    if (this.child && this.child.exitCode === null && this.child.connected) return this.child;
    const child = fork(this.opts.workerPath, [], {
      env: { ...process.env, ...this.opts.env, ORT_DISABLE_TELEMETRY: '1' },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'json',
    });
    child.on('message', (m) => this.onMessage(m as FromWorker));
    child.on('exit', (code, sig) => this.onExit(child, code, sig));
    child.on('error', (err) => this.onExit(child, null, null, err));
    this.child = child;
    return child;
  }

  private send(child: ChildProcess, msg: ToWorker): void {
    child.send(msg, (err) => {
      if (err && msg.type === 'request') {
        const p = this.pending.get(msg.id);
        if (p) this.settleError(msg.id, p, { code: 'worker-crashed', message: `could not reach the worker: ${err.message}` });
      }
    });
  }

  private onMessage(m: FromWorker): void {
    if (m.type === 'ready') return;
    const p = this.pending.get(m.id);
    if (!p) return;
    switch (m.type) {
      case 'progress':
        p.handlers.onProgress?.(m.progress);
        return;
      case 'partial':
        p.handlers.onPartial?.(m.modelIndex, m.layer);
        return;
      case 'partial-stored':
        p.handlers.onStoredLayer?.(m.modelIndex, m.layer, m.file);
        return;
      case 'result':
        this.clear(m.id, p);
        p.resolve(m.result);
        return;
      case 'error':
        this.settleError(m.id, p, m.error);
        return;
      case 'cancelled':
        this.settleError(m.id, p, { code: 'cancelled', message: 'cancelled' });
        return;
    }
  }

  private onExit(child: ChildProcess, code: number | null, sig: NodeJS.Signals | null, err?: Error): void {
    if (this.child !== child) return; // an old worker we killed on purpose
    this.child = null;
    const why = err ? err.message : sig ? `signal ${sig}` : `exit code ${code}`;
    for (const [id, p] of this.pending) {
      this.settleError(id, p, { code: 'worker-crashed', message: `the compute worker crashed (${why})` });
    }
  }

  private settleError(id: string, p: Pending, e: WireError): void {
    this.clear(id, p);
    p.reject(new WorkerJobError(e.code, e.message));
  }

  private clear(id: string, p: Pending): void {
    if (p.killTimer) clearTimeout(p.killTimer);
    this.pending.delete(id);
  }
}
