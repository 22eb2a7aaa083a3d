import { rename, writeFile } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';

/** Writes JSON via a temp file + rename, so a crash or Ctrl-C never leaves half a report behind. */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  await writeFile(tmp, JSON.stringify(value, null, 2) + '\n');
  await rename(tmp, path);
}
