/**
 * The local Hugging Face cache (huggingface_hub's layout, fact sheet section 2):
 * {root}/models--{org}--{name}/refs/{revision} holds a commit hash; snapshots/{commit}/{file} are
 * relative symlinks into ../../blobs/.
 */
import { readFile, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Checkpoint } from './checkpoint';
import { openCheckpoint } from './open-checkpoint';

export function hfHome(env: NodeJS.ProcessEnv = process.env): string {
  if (env['HF_HOME']) return env['HF_HOME'];
  const xdg = env['XDG_CACHE_HOME'];
  return join(xdg ? xdg : join(homedir(), '.cache'), 'huggingface');
}

/** HF_HUB_CACHE > HUGGINGFACE_HUB_CACHE > $HF_HOME/hub. */
export function hfCacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  return env['HF_HUB_CACHE'] || env['HUGGINGFACE_HUB_CACHE'] || join(hfHome(env), 'hub');
}

export interface ModelId {
  readonly repo: string; // org/name
  readonly revision: string | null;
}

const ID_PART = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** "org/name" or "org/name@revision"; anything else (paths, too many slashes) is not a model id. */
export function parseModelId(spec: string): ModelId | null {
  const at = spec.indexOf('@');
  const repo = at < 0 ? spec : spec.slice(0, at);
  const revision = at < 0 ? null : spec.slice(at + 1);
  const parts = repo.split('/');
  if (parts.length !== 2 || !parts.every((p) => ID_PART.test(p) && p !== '..' && !p.includes('..'))) return null;
  if (revision !== null && (revision === '' || revision.includes('..') || revision.startsWith('/'))) return null;
  return { repo, revision };
}

export function repoFolder(repo: string, env: NodeJS.ProcessEnv = process.env): string {
  return join(hfCacheRoot(env), `models--${repo.replace('/', '--')}`);
}

const COMMIT = /^[0-9a-f]{40}$/;

/** The snapshot folder for a revision (a branch/tag via refs/, or a commit hash), or null when not cached. */
export async function findCachedSnapshot(repo: string, revision: string | null, env: NodeJS.ProcessEnv = process.env): Promise<{ dir: string; commit: string; repoDir: string } | null> {
  const repoDir = repoFolder(repo, env);
  const rev = revision ?? 'main';
  let commit: string | null = COMMIT.test(rev) ? rev : null;
  if (commit === null) {
    try {
      commit = (await readFile(join(repoDir, 'refs', ...rev.split('/')), 'utf8')).trim();
    } catch {
      return null;
    }
    if (!COMMIT.test(commit)) return null;
  }
  const dir = join(repoDir, 'snapshots', commit);
  try {
    if (!(await stat(dir)).isDirectory()) return null;
  } catch {
    return null;
  }
  return { dir, commit, repoDir };
}

/** Opens a cached model, or returns null when the cache has no snapshot for it. */
export async function openCachedModel(spec: string, env: NodeJS.ProcessEnv = process.env): Promise<Checkpoint | null> {
  const id = parseModelId(spec);
  if (!id) return null;
  const snap = await findCachedSnapshot(id.repo, id.revision, env);
  if (!snap) return null;
  // Snapshot files link into the repo's blobs/: trust the repo folder, nothing outside it.
  const ckpt = await openCheckpoint(snap.dir, snap.commit, snap.repoDir);
  return { ...ckpt, source: spec, readTensorBytes: ckpt.readTensorBytes, close: ckpt.close };
}
