/**
 * MODEL resolution order: a local path (file or folder that exists); the local Hugging Face cache;
 * the hub, read by byte range (HF_HUB_OFFLINE=1 stops before the hub).
 */
import { access } from 'node:fs/promises';
import { MoeInspectorError } from '../errors';
import type { Checkpoint } from './checkpoint';
import { openCachedModel, parseModelId } from './hf-cache';
import { openCheckpoint } from './open-checkpoint';
import { isHubOffline } from '../hub/hub-env';
import { openHubModel, type HubOptions } from '../hub/open-hub-model';

export { transferStatsOf, type TransferStats } from '../hub/open-hub-model';

export type ResolveOptions = HubOptions;

async function pathExists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * Opens what the user named. For a hub model, `transferStatsOf(checkpoint)` tells how many bytes
 * came over the network (and `checkpoint.totalBytes` how big the checkpoint is).
 */
export async function resolveModel(spec: string, opts: ResolveOptions = {}): Promise<Checkpoint> {
  const env = opts.env ?? process.env;
  if (await pathExists(spec)) return openCheckpoint(spec);
  const id = parseModelId(spec);
  if (!id) throw new MoeInspectorError('not-found', 'no such local path, and not a model id of the form org/name[@revision]', { file: spec });
  const cached = await openCachedModel(spec, env);
  if (cached) return cached;
  if (isHubOffline(env)) {
    throw new MoeInspectorError('offline', `HF_HUB_OFFLINE is set and ${spec} is not in the local Hugging Face cache (HF_HUB_CACHE / HF_HOME): unset HF_HUB_OFFLINE or download the model first`, { file: spec });
  }
  try {
    return await openHubModel(id, { ...opts, env });
  } catch (e) {
    throw saysWhereItLooked(e, spec);
  }
}

/**
 * A hub failure to find or reach the model itself, told after what was tried first: the user may
 * have meant a local path (a typo in a folder name reads like an unknown repository otherwise).
 * Failures inside a repository that was found (a missing or corrupt file) pass unchanged.
 */
function saysWhereItLooked(e: unknown, spec: string): unknown {
  if (!(e instanceof MoeInspectorError) || !isAboutTheRepository(e)) return e;
  return new MoeInspectorError(e.code, `no such local path, and not in the local Hugging Face cache; the hub answered: ${e.where.file ? `${e.where.file}: ` : ''}${e.problem}`, { file: spec });
}

function isAboutTheRepository(e: MoeInspectorError): boolean {
  // hub:org/name or hub:org/name@revision, with no file after it
  const repoLevel = e.where.file !== undefined && /^hub:[^/]+\/[^/]+$/.test(e.where.file);
  if (e.code === 'auth') return true;
  if (e.code === 'not-found') return /^(repository|revision) /.test(e.problem);
  return e.code === 'network' && repoLevel;
}
