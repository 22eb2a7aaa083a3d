/**
 * The compute worker: a child process that owns the ONNX Runtime sessions and does all heavy work,
 * so neither the CLI's nor VS Code's extension-host event loop ever blocks on it.
 */
import type { FromWorker, ToWorker } from '../shared/messages';
import { isMoeInspectorError } from '../engine/errors';
import { runJob } from './jobs';
import { ReportStore } from './report-store';

const running = new Map<string, AbortController>();

function send(msg: FromWorker): void {
  process.send?.(msg);
}

async function handleRequest(id: string, msg: Extract<ToWorker, { type: 'request' }>): Promise<void> {
  const ac = new AbortController();
  running.set(id, ac);
  try {
    const job = msg.job;
    // jobs with a store send summaries; their full layers and reports go to files
    const store = (job.kind === 'analyze' || job.kind === 'compare') && job.store ? new ReportStore(job.store) : null;
    // a caller that asked for paced progress gets the newest step at most every progressEveryMs
    const every = job.progressEveryMs ?? 0;
    let lastProgress = 0;
    const result = await runJob(job, {
      signal: ac.signal,
      onProgress: (progress) => {
        const now = Date.now();
        if (every > 0 && now - lastProgress < every) return;
        lastProgress = now;
        send({ type: 'progress', id, progress });
      },
      onPartial: (modelIndex, layer) => send(store ? { type: 'partial-stored', id, modelIndex, ...store.layer(modelIndex, layer) } : { type: 'partial', id, modelIndex, layer }),
    });
    send(ac.signal.aborted ? { type: 'cancelled', id } : { type: 'result', id, result: store ? store.result(result) : result });
  } catch (e) {
    if (ac.signal.aborted || (isMoeInspectorError(e) && e.code === 'cancelled')) send({ type: 'cancelled', id });
    else send({ type: 'error', id, error: toWire(e) });
  } finally {
    running.delete(id);
  }
}

function toWire(e: unknown): { code: string; message: string } {
  if (isMoeInspectorError(e)) return { code: e.code, message: e.message };
  const err = e instanceof Error ? e : new Error(String(e));
  return { code: 'internal', message: `internal error: ${err.message}${err.stack ? `\n${err.stack}` : ''}` };
}

process.on('message', (raw) => {
  const msg = raw as ToWorker;
  if (msg.type === 'cancel') running.get(msg.id)?.abort();
  else if (msg.type === 'request') void handleRequest(msg.id, msg);
});
// Our parent went away (closed, crashed): leave no orphan behind.
process.on('disconnect', () => process.exit(0));
send({ type: 'ready', pid: process.pid });
