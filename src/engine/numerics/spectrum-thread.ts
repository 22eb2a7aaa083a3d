/**
 * Worker-thread entry of the spectrum pool: owns a CPU backend whose sessions run on this thread,
 * keeps the bases it is sent, and computes whole delta spectra (norm, Gram, stage one, chase,
 * tridiagonal eigenvalues) one expert at a time.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createCpuBackend, type ComputeBackend } from './backend';
import { collectGarbage } from './collect-garbage';
import { deltaSpectrumHere, emptySpectrumTimes } from './gram-spectrum';
import type { FromSpectrumThread, SpectrumThreadData, ToSpectrumThread } from './spectrum-messages';

const port = parentPort!;

const bases = new Map<number, { base: Float32Array; rows: number; cols: number }>();
const send = (m: FromSpectrumThread, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);

async function solve(backend: ComputeBackend, m: Extract<ToSpectrumThread, { kind: 'solve' }>): Promise<void> {
  try {
    const b = bases.get(m.baseId);
    if (!b) throw new Error(`no base ${m.baseId} on this thread`);
    if (m.w.length !== b.rows * b.cols) throw new Error(`expert has ${m.w.length} values, the base ${b.rows}x${b.cols}`);
    const times = emptySpectrumTimes();
    const r = await deltaSpectrumHere(backend, m.w, b.base, b.rows, b.cols, { type: m.type, band: m.band, times });
    send({ kind: 'solved', id: m.id, deltaNorm: r.deltaNorm, ev: r.ev, times }, [r.ev.buffer as ArrayBuffer]);
  } catch (e) {
    send({ kind: 'error', id: m.id, error: (e as Error).message ?? String(e) });
  }
}

async function main(): Promise<void> {
  const { ortThreads } = workerData as SpectrumThreadData;
  let backend: ComputeBackend;
  try {
    backend = await createCpuBackend(ortThreads);
  } catch (e) {
    send({ kind: 'failed-to-start', error: (e as Error).message ?? String(e) });
    return;
  }
  // Messages are handled one at a time: a solve finishes before the next message is looked at.
  let chain = Promise.resolve();
  port.on('message', (m: ToSpectrumThread) => {
    chain = chain.then(async () => {
      if (m.kind === 'base') bases.set(m.baseId, { base: m.base, rows: m.rows, cols: m.cols });
      else if (m.kind === 'drop') {
        bases.delete(m.baseId);
        collectGarbage(); // an idle thread would otherwise keep its last experts' copies while the analysis moves on
      }
      else await solve(backend, m);
    });
  });
  send({ kind: 'ready' });
}

void main();
