/**
 * The environment variables huggingface_hub reads, with its rules (fact sheet section 2):
 * HF_ENDPOINT, HF_TOKEN / token file, HF_HUB_OFFLINE; and where our own range cache lives.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { expandPath, hfHome } from '../model/hf-cache';

type Env = NodeJS.ProcessEnv;

export const DEFAULT_ENDPOINT = 'https://huggingface.co';

function envVar(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v === '' ? undefined : v;
}

/** huggingface_hub's _is_true: 1, ON, YES, TRUE in any case. */
function isTrue(v: string | undefined): boolean {
  return v !== undefined && ['1', 'ON', 'YES', 'TRUE'].includes(v.trim().toUpperCase());
}

export function isHubOffline(env: Env): boolean {
  return isTrue(env['HF_HUB_OFFLINE']);
}

/** HF_ENDPOINT without a trailing slash, default https://huggingface.co. */
export function hubEndpoint(env: Env): string {
  return (envVar(env, 'HF_ENDPOINT') ?? DEFAULT_ENDPOINT).replace(/\/+$/, '');
}

/**
 * The token to send: an explicit one, else HF_TOKEN (or the older HUGGING_FACE_HUB_TOKEN), else the
 * file `hf auth login` writes (HF_TOKEN_PATH, default $HF_HOME/token). Null when there is none.
 */
export function hubToken(env: Env, explicit?: string): string | null {
  const direct = explicit ?? envVar(env, 'HF_TOKEN') ?? envVar(env, 'HUGGING_FACE_HUB_TOKEN');
  if (direct !== undefined) return direct.trim() || null;
  const path = envVar(env, 'HF_TOKEN_PATH');
  const file = path !== undefined ? expandPath(path, env) : join(hfHome(env), 'token');
  try {
    return readFileSync(file, 'utf8').trim() || null;
  } catch {
    return null; // no token file: anonymous access
  }
}

/**
 * Our cache of byte ranges read from the hub: $XDG_CACHE_HOME/moe-inspector/hub-ranges (default
 * ~/.cache/...). Not inside the HF cache root: huggingface_hub's cache scanner reports foreign
 * folders there as corrupt, and partial files must never look like a downloaded snapshot.
 */
export function rangeCacheRoot(env: Env): string {
  const xdg = envVar(env, 'XDG_CACHE_HOME') ?? join(envVar(env, 'HOME') ?? homedir(), '.cache');
  return join(expandPath(xdg, env), 'moe-inspector', 'hub-ranges');
}
