/**
 * A model repo on the hub as a FileProvider. The revision is resolved to a commit once, on the
 * first request; every file is then read at that commit, so a branch that moves during a run
 * cannot mix files of two commits.
 */
import { MoeInspectorError } from '../errors';
import type { ByteSource } from '../io/byte-source';
import type { FileProvider } from '../model/checkpoint';
import { assertPlainFileName } from '../model/local-provider';
import { commitFromApi, diagnose404 } from './hub-api';
import { HubByteSource } from './hub-byte-source';
import { hubName, type RequestContext } from './hub-errors';
import type { FileHead, HubHttp } from './hub-http';
import { fileCacheDir, FileRangeCache } from './range-store';

/** config.json and index files are small; anything bigger is not what it claims to be. */
const MAX_TEXT_FILE_BYTES = 64 * 1024 * 1024;
const COMMIT = /^[0-9a-f]{40}$/;
/** Every repo has config.json, or at least answers for it with the commit: the cheapest HEAD. */
const PROBE_FILE = 'config.json';

export interface HubProviderOptions {
  readonly allowFullDownload: boolean;
  /** Root of the on-disk range cache. */
  readonly cacheRoot: string;
}

export class HubFileProvider implements FileProvider {
  private readonly heads = new Map<string, Promise<FileHead | null>>();

  private constructor(
    readonly repo: string,
    readonly revision: string,
    private readonly http: HubHttp,
    private readonly opts: HubProviderOptions,
  ) {}

  /** Resolves `revision` (default "main") to a commit and returns the provider for that commit. */
  static async connect(repo: string, revision: string | null, http: HubHttp, opts: HubProviderOptions): Promise<HubFileProvider> {
    const commit = await resolveCommit(http, repo, revision ?? 'main');
    return new HubFileProvider(repo, commit, http, opts);
  }

  get displayRoot(): string {
    return `hub:${this.repo}@${this.revision}`;
  }

  private ctx(file: string): RequestContext {
    return { repo: this.repo, revision: this.revision, file, endpoint: this.http.endpoint, hasToken: this.http.hasToken };
  }

  /** HEAD of a file at the commit, once per file; null when the repo has no such file. */
  private head(file: string): Promise<FileHead | null> {
    let h = this.heads.get(file);
    if (!h) {
      const ctx = this.ctx(file);
      h = this.http.head(this.http.resolveUrl(this.repo, this.revision, file), ctx).then((r) => ('missing' in r ? null : r));
      this.heads.set(file, h);
    }
    return h;
  }

  async open(relName: string): Promise<ByteSource | null> {
    assertPlainFileName(relName, { file: this.displayRoot, what: 'file name' });
    const head = await this.head(relName);
    if (head === null) return null;
    const target = { repo: this.repo, commit: this.revision, file: relName, size: head.size, url: this.http.resolveUrl(this.repo, this.revision, relName) };
    const cache = new FileRangeCache(fileCacheDir(this.opts.cacheRoot, this.repo, this.revision, relName));
    return new HubByteSource(target, this.http, cache, this.opts.allowFullDownload);
  }

  async readText(relName: string): Promise<string | null> {
    const src = await this.open(relName);
    if (src === null) return null;
    try {
      if (src.size > MAX_TEXT_FILE_BYTES) throw new MoeInspectorError('format', `${src.size} bytes is too large for a JSON metadata file`, { file: hubName(this.ctx(relName)) });
      return new TextDecoder('utf-8').decode(await src.read(0, src.size));
    } finally {
      await src.close();
    }
  }

  async close(): Promise<void> {}
}

/**
 * A branch or tag to its commit: the X-Repo-Commit of a HEAD (no body bytes); the API's sha when
 * the server does not send that header; the API again to say what a bare 404 is missing.
 */
async function resolveCommit(http: HubHttp, repo: string, rev: string): Promise<string> {
  if (COMMIT.test(rev)) return rev;
  const ctx: RequestContext = { repo, revision: rev, file: PROBE_FILE, endpoint: http.endpoint, hasToken: http.hasToken };
  const head = await http.head(http.resolveUrl(repo, rev, PROBE_FILE), ctx);
  if ('missing' in head && head.missing === 'undiagnosed') await diagnose404(http, ctx);
  if (head.commit !== null && COMMIT.test(head.commit)) return head.commit;
  return commitFromApi(http, ctx);
}
