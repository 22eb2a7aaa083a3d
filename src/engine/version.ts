/**
 * The program's identity, recorded in every report so that `--resume` and `merge` never mix results
 * computed by two different versions. The version is package.json's (one source of truth).
 */
import { version } from '../../package.json';

export const PROGRAM = { name: 'moe-inspector', version } as const;
