import { join } from 'node:path';
import { WorkerClient, type JobHandlers } from '../client/worker-client';
import type { Job, JobResult } from '../shared/messages';
import { progressPrinter } from './progress';

/** Runs one job in a fresh worker process (dist/worker.js beside dist/cli.js) with progress on stderr; Ctrl-C cancels it. */
export async function runInWorker(job: Job, handlers: Pick<JobHandlers, 'onPartial'> = {}): Promise<JobResult> {
  const client = WorkerClient.start({ workerPath: join(__dirname, 'worker.js') });
  const progress = progressPrinter();
  const ac = new AbortController();
  const onSigint = (): void => ac.abort();
  process.once('SIGINT', onSigint);
  try {
    return await client.run(job, { ...handlers, onProgress: progress.update }, ac.signal);
  } finally {
    progress.done();
    process.off('SIGINT', onSigint);
    client.dispose();
  }
}
