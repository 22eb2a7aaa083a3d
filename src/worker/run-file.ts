/**
 * The report file of a resumable run (`-o FILE`, `--resume`): what it already holds, and whether this
 * run may continue it. The engine assembles the reports; this only reads, checks and writes files.
 */
import { MoeInspectorError } from '../engine/errors';
import { readJsonFile, writeJsonAtomic } from '../engine/io/json-file';
import { describeStatus } from '../engine/report/analysis-run';
import { runDifferences, type RunHeader } from '../engine/report/run-identity';
import type { ExecutionProvider, RunStatus } from '../engine/report/schema';
import type { RunOutput } from '../shared/messages';

interface RunReport extends RunHeader {
  readonly status?: RunStatus;
}

/**
 * The run `output` holds, when this run continues it; null when it starts afresh. --resume on a file
 * that does not exist yet starts afresh (a requeued scheduler job's first attempt). Without --resume,
 * a file holding an unfinished run is not overwritten: that would throw its finished layers away.
 * @param check validates the parsed file as the report kind (naming the file when it is not)
 */
export async function priorRun<R extends RunReport>(output: RunOutput, fresh: RunHeader, check: (raw: unknown, file: string) => R): Promise<R | null> {
  const file = output.path;
  if (!output.resume) {
    const existing = (await readJsonFile(file).catch(() => null)) as RunReport | null;
    const status = existing?.schema === fresh.schema ? existing.status : undefined;
    if (status && status.state !== 'complete') {
      throw new MoeInspectorError('usage', `holds an unfinished run (${describeStatus(status)}): add --resume to continue it, or remove the file to start over`, { file });
    }
    return null;
  }
  const raw = await readJsonFile(file);
  if (raw === null) return null;
  const prior = check(raw, file);
  const diffs = runDifferences(prior, fresh, { labels: ['in the file', 'now'] });
  if (diffs.length > 0) {
    throw new MoeInspectorError('usage', `cannot resume: not the same run: ${diffs.join('; ')}. Use the same model and options, or write to another file`, { file });
  }
  return prior;
}

/** Saves a report of the run; a failed save (disk full) ends the run with a clear error. */
export async function saveRun(output: RunOutput | undefined, report: unknown): Promise<void> {
  if (!output) return;
  try {
    await writeJsonAtomic(output.path, report);
  } catch (e) {
    throw new MoeInspectorError('io', `cannot write the report (${(e as Error).message})`, { file: output.path });
  }
}

/** Every provider that computed layers of a run, earlier sessions' first. */
export function providersOf(earlier: { readonly execution_provider: ExecutionProvider; readonly execution_providers?: readonly ExecutionProvider[] } | undefined, now: ExecutionProvider): ExecutionProvider[] {
  const before = earlier ? (earlier.execution_providers ?? [earlier.execution_provider]) : [];
  return [...new Set([...before, now])];
}
