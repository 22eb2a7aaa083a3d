/**
 * What @huggingface/hub does for us: the hub's JSON API (repo access, model info with the commit
 * sha), through our fetch (token for the hub's origin only, retries, byte counting) so the token
 * never passes through the library and its "hf_" prefix check.
 */
import { checkRepoAccess, HubApiError, modelInfo } from '@huggingface/hub';
import { MoeInspectorError } from '../errors';
import { authError, repoNotFound, revisionNotFound, type RequestContext } from './hub-errors';
import type { HubHttp } from './hub-http';

function mapApiError(e: unknown, ctx: RequestContext, on404: () => MoeInspectorError): unknown {
  if (!(e instanceof HubApiError)) return e;
  if (e.statusCode === 401 || e.statusCode === 403) return authError(ctx, e.statusCode, false);
  if (e.statusCode === 404) return on404();
  return new MoeInspectorError('network', `the hub API answered HTTP ${e.statusCode}`, { file: `hub:${ctx.repo}@${ctx.revision}` });
}

/** The commit a branch or tag points to, from /api/models/{repo}/revision/{rev}. */
export async function commitFromApi(http: HubHttp, ctx: RequestContext): Promise<string> {
  let info: { sha?: string };
  try {
    info = await modelInfo({ name: ctx.repo, revision: ctx.revision, hubUrl: http.endpoint, fetch: http.apiFetch, additionalFields: ['sha'] });
  } catch (e) {
    throw mapApiError(e, ctx, () => diagnosisFailed(ctx));
  }
  if (typeof info.sha !== 'string' || !/^[0-9a-f]{40}$/.test(info.sha)) {
    throw new MoeInspectorError('network', 'the hub gave no commit for this revision (no X-Repo-Commit header, no sha in the model info)', { file: `hub:${ctx.repo}@${ctx.revision}` });
  }
  return info.sha;
}

function diagnosisFailed(ctx: RequestContext): MoeInspectorError {
  return new MoeInspectorError('not-found', `repository ${ctx.repo} or its revision "${ctx.revision}" not found`, { file: `hub:${ctx.repo}@${ctx.revision}` });
}

/**
 * A 404 that did not say what is missing (a server without X-Error-Code): asks the API whether
 * the repo exists, then whether the revision does. Resolves when both exist (the file is missing).
 */
export async function diagnose404(http: HubHttp, ctx: RequestContext): Promise<void> {
  try {
    await checkRepoAccess({ repo: { type: 'model', name: ctx.repo }, hubUrl: http.endpoint, fetch: http.apiFetch });
  } catch (e) {
    throw mapApiError(e, ctx, () => repoNotFound(ctx));
  }
  try {
    await modelInfo({ name: ctx.repo, revision: ctx.revision, hubUrl: http.endpoint, fetch: http.apiFetch });
  } catch (e) {
    throw mapApiError(e, ctx, () => revisionNotFound(ctx));
  }
}
