/** What an interrupted run left in its -o file, told on stderr so the user knows how to continue. */
import { readJsonFile } from '../engine/io/json-file';
import { describeStatus } from '../engine/report/analysis-run';
import type { RunStatus } from '../engine/report/schema';
import type { RunOutput } from '../shared/messages';

/** Runs `job`; when it fails or is cancelled after saving layers to `output`, says what was kept. */
export async function reportSavedRun<T>(output: RunOutput | undefined, job: () => Promise<T>): Promise<T> {
  try {
    return await job();
  } catch (e) {
    // A refusal (usage) left the file as it was: nothing to add to its message.
    if (output && (e as { code?: string }).code !== 'usage') await noteSaved(output.path);
    throw e;
  }
}

async function noteSaved(path: string): Promise<void> {
  const saved = (await readJsonFile(path).catch(() => null)) as { status?: RunStatus } | null;
  const status = saved?.status;
  if (!status || status.state === 'complete' || status.layers_done.length === 0) return;
  process.stderr.write(`${path} keeps the finished layers (${describeStatus(status)}): run the same command with --resume to continue\n`);
}
