/**
 * MODEL resolution order: a local path; the local Hugging Face cache; the hub.
 */
import { access } from 'node:fs/promises';
import { MoeInspectorError } from '../errors';
import type { Checkpoint } from './checkpoint';
import { openCachedModel, parseModelId } from './hf-cache';
import { openCheckpoint } from './open-checkpoint';
import { openHubModel } from '../hub/open-hub-model';

export interface ResolveOptions {
  readonly env?: NodeJS.ProcessEnv;
  readonly token?: string;
  readonly allowFullDownload?: boolean;
  readonly onBytes?: (fetched: number, needed: number) => void;
  readonly signal?: AbortSignal;
}

async function pathExists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}

export async function resolveModel(spec: string, opts: ResolveOptions = {}): Promise<Checkpoint> {
  const env = opts.env ?? process.env;
  if (await pathExists(spec)) return openCheckpoint(spec);
  const id = parseModelId(spec);
  if (!id) throw new MoeInspectorError('not-found', 'no such file or folder, and not a model id of the form org/name[@revision]', { file: spec });
  const cached = await openCachedModel(spec, env);
  if (cached) return cached;
  if (env['HF_HUB_OFFLINE'] === '1' || env['HF_HUB_OFFLINE']?.toLowerCase() === 'true') {
    throw new MoeInspectorError('offline', `HF_HUB_OFFLINE is set and ${spec} is not in the local cache`, { file: spec });
  }
  return openHubModel(id, { ...opts, env });
}
