/**
 * Starts one of the engine's worker threads. Bundled: dist/<name>.js beside the bundle. From
 * sources (tests, tsx): the .ts beside this module, loaded through tsx's CommonJS hook registered
 * inside the thread itself (Node 20 threads do not inherit the parent's `--import tsx` hooks, so a
 * thread started on a .ts path directly fails to load).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';

export type ThreadName = 'eigen-thread' | 'spectrum-thread';

export function startThread(name: ThreadName, workerData?: unknown): Worker | null {
  const bundled = join(__dirname, `${name}.js`);
  if (existsSync(bundled)) return new Worker(bundled, { workerData });
  const source = join(__dirname, `${name}.ts`);
  if (!existsSync(source)) return null;
  return new Worker(`require('tsx/cjs/api').register(); require(${JSON.stringify(source)});`, { eval: true, workerData });
}
