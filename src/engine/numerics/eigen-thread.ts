/** Worker-thread entry: eigenvalues of symmetric matrices, off the main thread so ONNX Runtime and this run side by side. */
import { parentPort } from 'node:worker_threads';
import { symmetricEigenvalues } from './symmetric-eigen';

parentPort?.on('message', (msg: { id: number; n: number; a: Float64Array }) => {
  try {
    const ev = symmetricEigenvalues(msg.a, msg.n);
    parentPort!.postMessage({ id: msg.id, ev }, [ev.buffer as ArrayBuffer]);
  } catch (e) {
    parentPort!.postMessage({ id: msg.id, error: (e as Error).message });
  }
});
