/**
 * Hub answers that are not data, turned into one clear MoeInspectorError each. The hub says what
 * went wrong in the X-Error-Code header (RepoNotFound, RevisionNotFound, EntryNotFound, GatedRepo),
 * as huggingface_hub reads it; a 404 without one is diagnosed through the API (hub-api.ts).
 */
import { MoeInspectorError } from '../errors';

/** What a request was about, for messages. */
export interface RequestContext {
  readonly repo: string;
  readonly revision: string;
  /** The file inside the repo, when the request was for one. */
  readonly file?: string;
  readonly endpoint: string;
  readonly hasToken: boolean;
}

export type HubErrorCode = 'RepoNotFound' | 'RevisionNotFound' | 'EntryNotFound' | 'GatedRepo' | null;

export function hubErrorCode(headers: Headers): HubErrorCode {
  const code = headers.get('x-error-code');
  return code === 'RepoNotFound' || code === 'RevisionNotFound' || code === 'EntryNotFound' || code === 'GatedRepo' ? code : null;
}

/** "hub:org/name@rev/file": how files on the hub are named in messages. */
export function hubName(ctx: Pick<RequestContext, 'repo' | 'revision' | 'file'>): string {
  return `hub:${ctx.repo}@${ctx.revision}${ctx.file !== undefined ? `/${ctx.file}` : ''}`;
}

function tokenAdvice(ctx: RequestContext): string {
  return ctx.hasToken
    ? 'the token in use (HF_TOKEN or the token file) has no access to it: check the token, or accept the model\'s conditions on its hub page'
    : 'set HF_TOKEN (a read token from the hub\'s settings page) or log in with `hf auth login`';
}

export function repoNotFound(ctx: RequestContext): MoeInspectorError {
  return new MoeInspectorError('not-found', `repository ${ctx.repo} not found on ${ctx.endpoint} (if it is private or gated: ${tokenAdvice(ctx)})`, { file: `hub:${ctx.repo}` });
}

export function revisionNotFound(ctx: RequestContext): MoeInspectorError {
  return new MoeInspectorError('not-found', `revision "${ctx.revision}" not found in ${ctx.repo} (no such branch, tag or commit)`, { file: `hub:${ctx.repo}@${ctx.revision}` });
}

export function authError(ctx: RequestContext, status: number, gated: boolean): MoeInspectorError {
  const what = gated ? 'this is a gated model' : 'access denied';
  return new MoeInspectorError('auth', `${what} (HTTP ${status}): ${tokenAdvice(ctx)}`, { file: hubName(ctx) });
}

/**
 * The error for a final (non-retryable) status; for a 404, 'entry-not-found' (no such file: the
 * caller decides whether that is an error) or 'undiagnosed-404' (the server did not say what is missing).
 */
export function errorForStatus(status: number, headers: Headers, ctx: RequestContext): MoeInspectorError | 'entry-not-found' | 'undiagnosed-404' {
  const code = hubErrorCode(headers);
  // The hub answers 401 for a repo that does not exist OR that you may not see, with RepoNotFound.
  if (code === 'RepoNotFound') return repoNotFound(ctx);
  if (code === 'RevisionNotFound') return revisionNotFound(ctx);
  if (code === 'GatedRepo') return authError(ctx, status, true);
  if (status === 401 || status === 403) return authError(ctx, status, false);
  if (status === 404) return code === 'EntryNotFound' ? 'entry-not-found' : 'undiagnosed-404';
  return new MoeInspectorError('network', `unexpected HTTP ${status} from ${ctx.endpoint}`, { file: hubName(ctx) });
}

/** 429 and 5xx are worth retrying; anything else 4xx is final. */
export function isTransientStatus(status: number): boolean {
  return status === 429 || status === 408 || (status >= 500 && status <= 599);
}

/** Removes a secret from text that is about to be shown (a message from a lower layer, a URL). */
export function redact(text: string, secret: string | null): string {
  return secret !== null && secret.length > 0 ? text.split(secret).join('***') : text;
}

/** The same error with the secret removed from its message. */
export function redactError(e: unknown, secret: string | null): unknown {
  if (secret === null || !(e instanceof Error) || !e.message.includes(secret)) return e;
  if (e instanceof MoeInspectorError) {
    const where: { file?: string; tensor?: string } = {};
    if (e.where.file !== undefined) where.file = redact(e.where.file, secret);
    if (e.where.tensor !== undefined) where.tensor = redact(e.where.tensor, secret);
    return new MoeInspectorError(e.code, redact(e.problem, secret), where);
  }
  return new Error(redact(e.message, secret));
}
