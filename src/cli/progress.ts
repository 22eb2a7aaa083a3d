/** A progress line on stderr: rewritten in place on a terminal, one line per finished step otherwise (logs stay short). */
import type { Progress } from '../shared/messages';
import { formatProgress, formatRun } from '../shared/progress-format';

/** Stages that repeat per projection or per expert: a log gets their layer's summary line instead. */
const CHATTY = new Set(['spectra', 'reading', 'base', 'prefetch']);

/** The parts of a stderr stream the printer uses (a fake one in tests). */
export type ProgressStream = Pick<NodeJS.WriteStream, 'write' | 'isTTY' | 'columns'>;

/**
 * done() erases the in-place line (before any report is printed) and stops the printer: progress
 * that arrives late (a message still in flight when the result came) can never leave a
 * half-overwritten line above the report.
 */
export function progressPrinter(stream: ProgressStream = process.stderr): { update: (p: Progress) => void; done: () => void } {
  const tty = stream.isTTY === true;
  let lastStage = '';
  let width = 0;
  let finished = false;
  return {
    update(p) {
      if (finished) return;
      if (tty) {
        const pctDone = !p.run && p.total > 0 ? ` ${Math.floor((100 * p.done) / p.total)}%` : '';
        const line = `[${p.stage}${pctDone}] ${formatProgress(p)}`.slice(0, (stream.columns ?? 100) - 1);
        stream.write(`\r${line.padEnd(width)}`);
        width = line.length;
      } else if (p.stage === 'layer-done') {
        stream.write(`${p.message}${p.run ? ` · ${formatRun(p.run, false)}` : ''}\n`);
      } else if (p.stage !== lastStage && !CHATTY.has(p.stage)) {
        stream.write(`${p.message}\n`);
      }
      lastStage = p.stage;
    },
    done() {
      if (tty && width > 0) stream.write(`\r${' '.repeat(width)}\r`);
      width = 0;
      finished = true;
    },
  };
}
