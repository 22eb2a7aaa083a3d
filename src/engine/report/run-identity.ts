/**
 * What makes two reports parts of one run: the same program version, the same model (revision and
 * fingerprint; the source path may differ, e.g. a copy on node-local scratch) and the same options.
 * `--resume` and `merge` refuse to combine reports that differ in any of these, listing every
 * difference at once so the user can fix the command in one go.
 */
import { canonicalJson as canonical } from '../io/json-file';
import type { ProgramInfo } from './schema';

/** The parts of a report that identify its run (analysis and overlay reports both have them). */
export interface RunHeader {
  readonly schema: string;
  readonly program?: ProgramInfo;
  readonly model: { readonly revision: string | null; readonly family: string; readonly fingerprint?: string };
  readonly options?: object;
  readonly mode?: string;
}

export interface DifferenceOptions {
  /** Option keys allowed to differ (merge: the layer selection and the shard). */
  readonly ignoreOptions?: readonly string[];
  /** How to name the two sides in messages, e.g. ["in the file", "now"]. */
  readonly labels: readonly [string, string];
}

/** Every way `b` is not the same run as `a`; empty when they are. */
export function runDifferences(a: RunHeader, b: RunHeader, opts: DifferenceOptions): string[] {
  const [la, lb] = opts.labels;
  const diffs: string[] = [];
  const check = (what: string, x: unknown, y: unknown): void => {
    if (canonical(x) !== canonical(y)) diffs.push(`${what} ${show(x)} (${la}) vs ${show(y)} (${lb})`);
  };
  check('schema', a.schema, b.schema);
  check('program version', a.program?.version, b.program?.version);
  check('mode', a.mode, b.mode);
  check('model family', a.model.family, b.model.family);
  check('model revision', a.model.revision, b.model.revision);
  if (canonical(a.model.fingerprint) !== canonical(b.model.fingerprint)) {
    diffs.push(`model fingerprint differs: the checkpoint's config, tensor headers or sizes are not the same (${la}: ${short(a.model.fingerprint)}, ${lb}: ${short(b.model.fingerprint)})`);
  }
  const ignore = new Set(opts.ignoreOptions ?? []);
  const ao = (a.options ?? {}) as Record<string, unknown>;
  const bo = (b.options ?? {}) as Record<string, unknown>;
  for (const k of [...new Set([...Object.keys(ao), ...Object.keys(bo)])].sort()) {
    if (!ignore.has(k)) check(`option ${k}`, ao[k], bo[k]);
  }
  return diffs;
}

function show(v: unknown): string {
  return v === undefined ? 'none' : JSON.stringify(v);
}

function short(fp: string | undefined): string {
  return fp === undefined ? 'none' : fp.slice(0, 19);
}
