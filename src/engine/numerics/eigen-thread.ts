/** Worker-thread entry: the JS stages of symmetric eigenproblems, off the main thread so ONNX Runtime and they run side by side. */
import { parentPort } from 'node:worker_threads';
import { solveEigenJob, type EigenJob } from './eigen-job';

parentPort?.on('message', (job: EigenJob & { id: number }) => {
  try {
    const result = solveEigenJob(job);
    parentPort!.postMessage({ id: job.id, result }, [result.ev.buffer as ArrayBuffer]);
  } catch (e) {
    parentPort!.postMessage({ id: job.id, error: (e as Error).message });
  }
});
