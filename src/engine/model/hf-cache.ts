/**
 * The local Hugging Face cache (huggingface_hub's layout, fact sheet section 2):
 * {root}/models--{org}--{name}/refs/{revision} holds a commit hash; snapshots/{commit}/{file} are
 * relative symlinks into ../../blobs/.
 */
import { stat } from 'node:fs/promises';
import { readRegularTextFile } from '../io/file-source';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { isMoeInspectorError } from '../errors';
import type { Checkpoint } from './checkpoint';
import { openCheckpoint } from './open-checkpoint';

type Env = NodeJS.ProcessEnv;

/** The value of a variable, with an empty string treated as unset. */
function envVar(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v === '' ? undefined : v;
}

/**
 * Python's os.path.expandvars(os.path.expanduser(p)), which huggingface_hub applies to HF_HOME and
 * HF_HUB_CACHE: a leading "~" is the home folder; $VAR and ${VAR} expand, unknown ones stay as written.
 */
export function expandPath(p: string, env: Env): string {
  const home = envVar(env, 'HOME') ?? homedir();
  const user = p === '~' || p.startsWith('~/') ? home + p.slice(1) : p;
  return user.replace(/\$(\w+)|\$\{([^}]*)\}/g, (whole, a: string | undefined, b: string | undefined) => env[(a ?? b)!] ?? whole);
}

/** $HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface. */
export function hfHome(env: Env = process.env): string {
  const explicit = envVar(env, 'HF_HOME');
  if (explicit !== undefined) return expandPath(explicit, env);
  const xdg = envVar(env, 'XDG_CACHE_HOME');
  return expandPath(join(xdg ?? join(envVar(env, 'HOME') ?? homedir(), '.cache'), 'huggingface'), env);
}

/** HF_HUB_CACHE > HUGGINGFACE_HUB_CACHE > $HF_HOME/hub. */
export function hfCacheRoot(env: Env = process.env): string {
  const explicit = envVar(env, 'HF_HUB_CACHE') ?? envVar(env, 'HUGGINGFACE_HUB_CACHE');
  return explicit !== undefined ? expandPath(explicit, env) : join(hfHome(env), 'hub');
}

export interface ModelId {
  /** org/name */
  readonly repo: string;
  readonly revision: string | null;
}

/** One part of a repo id: what the hub accepts, and never "..", "--" (the cache's separator) or a leading/trailing "." or "-". */
const ID_PART = /^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9_])?$/;

/** "org/name" or "org/name@revision"; anything else (paths, too many slashes) is not a model id. */
export function parseModelId(spec: string): ModelId | null {
  const at = spec.indexOf('@');
  const repo = at < 0 ? spec : spec.slice(0, at);
  const revision = at < 0 ? null : spec.slice(at + 1);
  const parts = repo.split('/');
  if (parts.length !== 2 || !parts.every((p) => p.length <= 96 && ID_PART.test(p) && !p.includes('..') && !p.includes('--'))) return null;
  if (revision !== null && !isSafeRevision(revision)) return null;
  return { repo, revision };
}

/** Branch, tag or commit; it becomes a path under refs/, so no "..", no absolute path, no empty segment. */
function isSafeRevision(rev: string): boolean {
  return rev !== '' && !rev.includes('..') && !rev.includes('\\') && !rev.includes('\0') && rev.split('/').every((s) => s !== '' && s !== '.');
}

/** models--{org}--{name} under the cache root. */
export function repoFolder(repo: string, env: Env = process.env): string {
  return join(hfCacheRoot(env), `models--${repo.replace('/', '--')}`);
}

const COMMIT = /^[0-9a-f]{40}$/;

export interface CachedSnapshot {
  readonly dir: string;
  readonly commit: string;
  readonly repoDir: string;
}

/**
 * The snapshot folder for a revision (a branch/tag via refs/, default "main"; or a 40-hex commit
 * directly), or null when the cache does not have it.
 */
export async function findCachedSnapshot(repo: string, revision: string | null, env: Env = process.env): Promise<CachedSnapshot | null> {
  const repoDir = repoFolder(repo, env);
  const rev = revision ?? 'main';
  let commit: string | null = COMMIT.test(rev) ? rev : null;
  if (commit === null) {
    if (!isSafeRevision(rev)) return null;
    try {
      // huggingface_hub writes the hash without a newline; people and other tools may add one.
      commit = (await readRegularTextFile(join(repoDir, 'refs', ...rev.split('/')))).trim();
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

/**
 * Opens a cached model at its commit. Null when the cache has no snapshot for it, or when the
 * snapshot lacks the weights (a partial download, e.g. config.json only): the caller then goes to
 * the hub. A snapshot that is present but corrupt or hostile is an error, not a fallback.
 */
export async function openCachedModel(spec: string, env: Env = process.env): Promise<Checkpoint | null> {
  const id = parseModelId(spec);
  if (!id) return null;
  const snap = await findCachedSnapshot(id.repo, id.revision, env);
  if (!snap) return null;
  let ckpt: Checkpoint;
  try {
    ckpt = await openCheckpoint(snap.dir, snap.commit);
  } catch (e) {
    if (isMoeInspectorError(e) && e.code === 'not-found') return null;
    throw e;
  }
  return { ...ckpt, source: spec };
}
