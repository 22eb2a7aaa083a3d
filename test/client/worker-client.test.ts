import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { WorkerClient, WorkerJobError } from '../../src/client/worker-client';

const workerPath = join(__dirname, '..', 'fixtures', 'protocol-worker.cjs');
const job = (model: string) => ({ kind: 'info' as const, model });

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitDead(pid: number, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (!alive(pid)) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return !alive(pid);
}

describe('WorkerClient lifecycle', () => {
  it('returns a result and passes errors through with their code', async () => {
    const c = WorkerClient.start({ workerPath });
    try {
      const r = await c.run(job('ok'));
      assert.equal(r.kind, 'info');
      await assert.rejects(c.run(job('error')), (e: WorkerJobError) => e.code === 'not-moe' && /not a Mixture-of-Experts/.test(e.message));
    } finally {
      c.dispose();
    }
  });

  it('reports a crashed worker as an error, not a hang, and recovers with a fresh worker', async () => {
    const c = WorkerClient.start({ workerPath });
    try {
      await assert.rejects(c.run(job('crash')), (e: WorkerJobError) => e.code === 'worker-crashed' && /exit code 3/.test(e.message));
      assert.equal((await c.run(job('ok'))).kind, 'info');
    } finally {
      c.dispose();
    }
  });

  it('cancels a worker stuck in uninterruptible work within the grace period and leaves no process', async () => {
    const c = WorkerClient.start({ workerPath, cancelGraceMs: 500 });
    const ac = new AbortController();
    let sawProgress = false;
    const p = c.run(job('busy'), { onProgress: () => (sawProgress = true) }, ac.signal);
    while (!sawProgress) await new Promise((r) => setTimeout(r, 10));
    const pid = c.pid!;
    const t0 = Date.now();
    ac.abort();
    await assert.rejects(p, (e: WorkerJobError) => e.code === 'cancelled');
    const elapsed = Date.now() - t0;
    // The stuck job would spin for 60 s: a bound far below that proves the kill, without being a speed test.
    assert.ok(elapsed < 5000, `cancel took ${elapsed} ms (grace 500 ms)`);
    assert.ok(await waitDead(pid, 2000), 'worker process still alive after cancel');
    c.dispose();
  });
});
