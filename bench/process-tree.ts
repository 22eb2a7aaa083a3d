/**
 * Peak memory of a whole process tree (the CLI and the worker it forks), measured from outside:
 * every 50 ms, the descendants of the root are found from /proc/<pid>/stat (parent pids) and their
 * VmRSS summed; the bench reports the largest sum seen. A peak shorter than the interval can slip
 * between samples, so the sum of each process's own high-water mark (VmHWM, the kernel's exact
 * per-process peak) is reported too: an upper bound of the tree's peak (the processes' peaks need
 * not coincide). Linux only.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

export interface TreeRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly seconds: number;
  /** Largest summed VmRSS over the samples, bytes. */
  readonly peakTreeRss: number;
  /** Sum over the tree's processes of their VmHWM, bytes. */
  readonly sumOfPeaks: number;
  readonly processes: number;
  readonly samples: number;
  /** Each process's own peak (VmHWM) and the script it ran, root first. */
  readonly perProcess: readonly { readonly script: string; readonly hwm: number }[];
}

/** The script a node process runs (its first argument that is not an option), for labels. */
function scriptOf(pid: number): string {
  try {
    const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    return (args.slice(1).find((a) => !a.startsWith('-')) ?? args[0] ?? '?').split('/').pop()!;
  } catch {
    return '?';
  }
}

function parentOf(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return null; // gone meanwhile
  }
}

function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid)) continue;
    const ppid = parentOf(pid);
    if (ppid === null) continue;
    const list = children.get(ppid) ?? [];
    list.push(pid);
    children.set(ppid, list);
  }
  const out = [root];
  for (let i = 0; i < out.length; i++) out.push(...(children.get(out[i]!) ?? []));
  return out;
}

function memoryOf(pid: number): { rss: number; hwm: number } | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
    return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
  } catch {
    return null;
  }
}

export function runMeasured(command: string, args: readonly string[], env: NodeJS.ProcessEnv, onStderr?: (chunk: string) => void): Promise<TreeRun> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      onStderr?.(d.toString());
    });
    let peakTreeRss = 0;
    let samples = 0;
    const hwm = new Map<number, number>();
    const scripts = new Map<number, string>();
    const sample = () => {
      if (child.pid === undefined) return;
      let sum = 0;
      for (const pid of descendants(child.pid)) {
        const m = memoryOf(pid);
        if (!m) continue;
        sum += m.rss;
        hwm.set(pid, Math.max(hwm.get(pid) ?? 0, m.hwm));
        // Read again each sample: a process caught between fork and exec shows its parent's command line, or none.
        const script = scriptOf(pid);
        if (script !== '?') scripts.set(pid, script);
      }
      peakTreeRss = Math.max(peakTreeRss, sum);
      samples++;
    };
    const timer = setInterval(sample, 50);
    child.on('error', (e) => {
      clearInterval(timer);
      reject(e);
    });
    child.on('exit', (code) => {
      clearInterval(timer);
      resolve({
        code,
        stdout,
        stderr,
        seconds: (performance.now() - t0) / 1000,
        peakTreeRss,
        sumOfPeaks: [...hwm.values()].reduce((a, b) => a + b, 0),
        processes: hwm.size,
        samples,
        perProcess: [...hwm.entries()].map(([pid, h]) => ({ script: scripts.get(pid) ?? '?', hwm: h })),
      });
    });
  });
}
