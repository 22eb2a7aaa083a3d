/** `moe-inspect merge part1.json part2.json ... -o model.json`: shard reports of one model -> one report. */
import { parseArgs } from 'node:util';
import { MoeInspectorError } from '../engine/errors';
import { readJsonFile } from '../engine/io/json-file';
import { mergeAnalysisReports } from '../engine/report/merge-reports';
import { formatAnalysis } from './format';
import type { Values } from './main';

export async function mergeCommand(args: string[], emit: (v: Values, report: unknown, text: string) => Promise<void>): Promise<number> {
  const { values: v, positionals: files } = parseArgs({
    args,
    options: { output: { type: 'string', short: 'o' }, json: { type: 'boolean' }, 'allow-incomplete': { type: 'boolean' } },
    strict: true,
    allowPositionals: true,
  });
  if (files.length === 0) throw new MoeInspectorError('usage', 'merge needs the part reports: moe-inspect merge part-0.json part-1.json ... -o model.json');
  const parts = [];
  for (const file of files) {
    const report = await readJsonFile(file);
    if (report === null) throw new MoeInspectorError('not-found', 'file not found', { file });
    parts.push({ file, report });
  }
  const merged = mergeAnalysisReports(parts, { allowIncomplete: v['allow-incomplete'] === true });
  await emit(v, merged, formatAnalysis(merged));
  return 0;
}
