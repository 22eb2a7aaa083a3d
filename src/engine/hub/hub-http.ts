/**
 * Every HTTP request to the hub goes through here: bounded concurrency, redirects followed by hand
 * (the token is sent to the hub's own origin only, never to the CDN it redirects to), retries with
 * backoff on 429/5xx and dropped connections, resume of a partly received range, and a verified
 * byte count for every range.
 */
import { MoeInspectorError } from '../errors';
import { errorForStatus, hubName, isTransientStatus, type RequestContext } from './hub-errors';
import { Limiter } from './limiter';
import { backoffMs, cancelled, DEFAULT_RETRY_POLICY, parseRetryAfterMs, sleep, type RetryPolicy } from './retry';

/** What went over the wire, for progress and for "how much did this cost". */
export interface TransferStats {
  /** HTTP requests sent (each redirect hop and each retry counts). */
  requests: number;
  /** Body bytes received from the network, failed attempts included. */
  bytesFetched: number;
  /** Bytes of model files that had to come from the network for the reads asked so far. */
  bytesNeeded: number;
  /** Bytes served from the on-disk range cache instead. */
  bytesFromCache: number;
  /** Attempts that failed and were tried again. */
  retries: number;
}

export interface HubHttpOptions {
  readonly endpoint: string;
  readonly token: string | null;
  readonly signal?: AbortSignal;
  readonly onBytes?: (fetched: number, needed: number) => void;
  readonly retry?: Partial<RetryPolicy>;
  readonly concurrency?: number;
}

/** HEAD metadata of one file at one revision. */
export interface FileHead {
  readonly size: number;
  /** X-Repo-Commit: the commit the revision resolved to (null if the server did not say). */
  readonly commit: string | null;
  readonly etag: string | null;
}

/** The server answered a Range request with the whole file (200): the caller decides what to do. */
export class RangeIgnored extends Error {
  constructor(readonly size: number) {
    super('range ignored');
  }
}

/** A failure worth another attempt. */
class Transient extends Error {
  constructor(
    readonly reason: string,
    readonly progressed: boolean,
    readonly retryAfterMs: number | null = null,
  ) {
    super(reason);
  }
}

const MAX_REDIRECTS = 5;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const USER_AGENT = 'moe-inspector/0.1';

export class HubHttp {
  readonly stats: TransferStats = { requests: 0, bytesFetched: 0, bytesNeeded: 0, bytesFromCache: 0, retries: 0 };
  private readonly policy: RetryPolicy;
  private readonly limiter: Limiter;
  private readonly origin: string;

  constructor(private readonly opts: HubHttpOptions) {
    this.policy = { ...DEFAULT_RETRY_POLICY, ...opts.retry };
    this.limiter = new Limiter(opts.concurrency ?? 4);
    this.origin = new URL(opts.endpoint).origin;
  }

  get endpoint(): string {
    return this.opts.endpoint;
  }

  get hasToken(): boolean {
    return this.opts.token !== null;
  }

  /** {endpoint}/{repo}/resolve/{revision}/{file}, each part escaped as huggingface_hub does. */
  resolveUrl(repo: string, revision: string, file: string): string {
    return `${this.opts.endpoint}/${repo}/resolve/${encodeURIComponent(revision)}/${file.split('/').map(encodeURIComponent).join('/')}`;
  }

  /** Tells listeners that `n` more bytes must come from the network. */
  addNeeded(n: number): void {
    this.stats.bytesNeeded += n;
    this.opts.onBytes?.(this.stats.bytesFetched, this.stats.bytesNeeded);
  }

  private countFetched(n: number): void {
    this.stats.bytesFetched += n;
    this.opts.onBytes?.(this.stats.bytesFetched, this.stats.bytesNeeded);
  }

  /**
   * One request, following redirects by hand: relative or absolute Location, the Authorization
   * header only while on the hub's origin. `onHop` sees every response before it is followed.
   */
  private async send(method: 'GET' | 'HEAD', url: string, headers: Record<string, string>, ctx: RequestContext, onHop?: (r: Response) => boolean): Promise<Response> {
    let current = new URL(url);
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
      const h: Record<string, string> = { 'user-agent': USER_AGENT, ...headers };
      if (this.opts.token !== null && current.origin === this.origin) h['authorization'] = `Bearer ${this.opts.token}`;
      this.stats.requests++;
      let resp: Response;
      try {
        resp = await fetch(current, { method, headers: h, redirect: 'manual', signal: this.opts.signal ?? null });
      } catch (e) {
        throw this.transportFailure(e, ctx, false);
      }
      const location = resp.headers.get('location');
      const stop = onHop?.(resp) ?? false;
      if (stop || !REDIRECTS.has(resp.status) || location === null) return resp;
      await discard(resp);
      current = new URL(location, current);
    }
    throw new MoeInspectorError('network', `more than ${MAX_REDIRECTS} redirects`, { file: hubName(ctx) });
  }

  private transportFailure(e: unknown, ctx: RequestContext, progressed: boolean): Error {
    if (this.opts.signal?.aborted) return cancelled(hubName(ctx));
    if (e instanceof MoeInspectorError) return e;
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    const detail = cause?.code ?? cause?.message ?? (e as Error).message;
    return new Transient(`connection failed (${detail})`, progressed);
  }

  /** Runs `attempt` until it succeeds, fails for good, or the retry budget is spent. */
  private async withRetries<T>(ctx: RequestContext, attempt: () => Promise<T>): Promise<T> {
    let failures = 0;
    let attempts = 0;
    for (;;) {
      attempts++;
      try {
        return await this.limiter.run(attempt);
      } catch (e) {
        if (!(e instanceof Transient)) throw e;
        // Progress (a resumed range got further) earns a fresh budget; the total stays bounded.
        failures = e.progressed ? 1 : failures + 1;
        if (failures > this.policy.maxRetries || attempts > 4 * (this.policy.maxRetries + 1)) {
          throw new MoeInspectorError('network', `${e.reason}; gave up after ${attempts} attempts`, { file: hubName(ctx) });
        }
        let delay = backoffMs(failures, this.policy);
        if (e.retryAfterMs !== null) {
          if (e.retryAfterMs > this.policy.maxRetryAfterMs) {
            throw new MoeInspectorError('network', `${e.reason}: the hub asks to retry after ${Math.ceil(e.retryAfterMs / 1000)} s; try again later`, { file: hubName(ctx) });
          }
          delay = e.retryAfterMs;
        }
        this.stats.retries++;
        await sleep(delay, this.opts.signal, hubName(ctx));
      }
    }
  }

  private async failFor(resp: Response, ctx: RequestContext): Promise<never> {
    await discard(resp);
    if (isTransientStatus(resp.status)) {
      throw new Transient(`HTTP ${resp.status}`, false, parseRetryAfterMs(resp.headers.get('retry-after')));
    }
    const err = errorForStatus(resp.status, resp.headers, ctx);
    if (err instanceof MoeInspectorError) throw err;
    throw new MoeInspectorError('not-found', err === 'entry-not-found' ? 'file not found' : `HTTP 404 (not found)`, { file: hubName(ctx) });
  }

  /**
   * HEAD of a file: size (X-Linked-Size, else Content-Length), commit (X-Repo-Commit) and ETag
   * (X-Linked-Etag, else ETag). A redirect to the CDN is not followed once it carries the size: a
   * pre-signed CDN URL may refuse HEAD. `missing: 'entry'` when the file does not exist
   * (EntryNotFound); `missing: 'undiagnosed'` for a 404 that does not say what is missing.
   */
  async head(url: string, ctx: RequestContext): Promise<FileHead | { missing: 'entry' | 'undiagnosed'; commit: string | null }> {
    return this.withRetries(ctx, async () => {
      let commit: string | null = null;
      let linkedEtag: string | null = null;
      let firstEtag: string | null = null;
      let linkedSize: string | null = null;
      const resp = await this.send('HEAD', url, {}, ctx, (r) => {
        commit ??= r.headers.get('x-repo-commit');
        linkedEtag ??= r.headers.get('x-linked-etag');
        firstEtag ??= r.headers.get('etag');
        linkedSize ??= r.headers.get('x-linked-size');
        return REDIRECTS.has(r.status) && linkedSize !== null;
      });
      await discard(resp);
      if (resp.status === 404) {
        const err = errorForStatus(404, resp.headers, ctx);
        if (err instanceof MoeInspectorError) throw err;
        return { missing: err === 'entry-not-found' ? 'entry' : 'undiagnosed', commit };
      }
      if (!resp.ok && !(REDIRECTS.has(resp.status) && linkedSize !== null)) await this.failFor(resp, ctx);
      const sizeText: string | null = linkedSize ?? resp.headers.get('content-length');
      const size = sizeText !== null && /^\d+$/.test(sizeText) ? Number(sizeText) : NaN;
      if (!Number.isSafeInteger(size)) throw new MoeInspectorError('network', 'the hub did not give the file size (no X-Linked-Size or Content-Length)', { file: hubName(ctx) });
      return { size, commit, etag: linkedEtag ?? firstEtag };
    });
  }

  /**
   * Bytes [start, end) of a file of `size` bytes. A dropped connection or short body resumes from
   * the first missing byte; every 206 must say (Content-Range) exactly which bytes it carries.
   * Throws RangeIgnored when the server answers 200 with the whole file to a partial request.
   */
  async getRange(url: string, start: number, end: number, size: number, ctx: RequestContext): Promise<Uint8Array> {
    const out = new Uint8Array(end - start);
    let got = 0;
    return this.withRetries(ctx, async () => {
      const from = start + got;
      const resp = await this.send('GET', url, { range: `bytes=${from}-${end - 1}` }, ctx);
      let want: number;
      if (resp.status === 206) {
        want = checkContentRange(resp.headers.get('content-range'), from, end, size, ctx);
      } else if (resp.status === 200 && from === 0 && end === size) {
        want = size; // asked for the whole file: a 200 is the right answer
      } else if (resp.status === 200) {
        await discard(resp);
        throw new RangeIgnored(size);
      } else {
        return this.failFor(resp, ctx);
      }
      const before = got;
      try {
        await this.readBody(resp, want, ctx, (chunk) => {
          out.set(chunk, got);
          got += chunk.length;
        });
      } catch (e) {
        if (e instanceof Transient) throw new Transient(e.reason, got > before);
        throw e;
      }
      // A server may legally send less than asked (RFC 9110): ask again for the rest.
      if (got < out.length) throw new Transient(`the server sent bytes ${from}-${from + want - 1} of ${start}-${end - 1}`, got > before);
      return out;
    });
  }

  /**
   * The whole file from a server that ignores Range. Each attempt hands `sink` a function that
   * streams the body through a callback (awaited: the disk sets the pace, not the network).
   */
  async getWhole(url: string, size: number, ctx: RequestContext, sink: (stream: (onChunk: (c: Uint8Array) => Promise<void>) => Promise<void>) => Promise<void>): Promise<void> {
    return this.withRetries(ctx, async () => {
      const resp = await this.send('GET', url, {}, ctx);
      if (resp.status !== 200) return this.failFor(resp, ctx);
      await sink((onChunk) => this.readBody(resp, size, ctx, onChunk));
    });
  }

  /** Reads exactly `want` body bytes into `onChunk`; short -> Transient; longer -> error. */
  private async readBody(resp: Response, want: number, ctx: RequestContext, onChunk: (c: Uint8Array) => void | Promise<void>): Promise<void> {
    if (resp.body === null) throw new Transient(`empty body: received 0 of ${want} bytes`, false);
    const reader = resp.body.getReader();
    let received = 0;
    try {
      for (;;) {
        let step: ReadableStreamReadResult<Uint8Array>;
        try {
          step = await reader.read();
        } catch (e) {
          throw this.transportFailure(e, ctx, received > 0);
        }
        if (step.done) break;
        const chunk = step.value;
        if (received + chunk.length > want) {
          throw new MoeInspectorError('network', `the server sent more than the ${want} bytes it announced`, { file: hubName(ctx) });
        }
        received += chunk.length;
        this.countFetched(chunk.length);
        await onChunk(chunk);
      }
    } catch (e) {
      await reader.cancel().catch(() => undefined);
      if (e instanceof Transient) throw new Transient(`${e.reason} after ${received} of ${want} bytes`, received > 0);
      throw e;
    }
    if (received < want) throw new Transient(`truncated body: received ${received} of ${want} bytes`, received > 0);
  }

  /**
   * A fetch for @huggingface/hub's API calls: adds the token for the hub's origin, retries
   * transient failures like every other request, and counts the (small, JSON) body.
   */
  readonly apiFetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = typeof input === 'string' || input instanceof URL ? input.toString() : input.url;
    const ctx: RequestContext = { repo: '', revision: '', endpoint: this.opts.endpoint, hasToken: this.hasToken };
    const extra = Object.fromEntries(new Headers(init?.headers).entries());
    return this.withRetries(ctx, async () => {
      const resp = await this.send('GET', url, extra, ctx);
      if (isTransientStatus(resp.status)) {
        await discard(resp);
        throw new Transient(`HTTP ${resp.status}`, false, parseRetryAfterMs(resp.headers.get('retry-after')));
      }
      let body: ArrayBuffer;
      try {
        body = await resp.arrayBuffer();
      } catch (e) {
        throw this.transportFailure(e, ctx, false);
      }
      this.countFetched(body.byteLength);
      return new Response(body, { status: resp.status, statusText: resp.statusText, headers: resp.headers });
    });
  };
}

/** Bytes the 206 carries, after checking its Content-Range names exactly the bytes asked for. */
function checkContentRange(header: string | null, from: number, end: number, size: number, ctx: RequestContext): number {
  const m = header === null ? null : /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(header.trim());
  if (!m) throw new MoeInspectorError('network', `206 answer without a valid Content-Range (got ${JSON.stringify(header)})`, { file: hubName(ctx) });
  const [a, b] = [Number(m[1]), Number(m[2])];
  if (m[3] !== '*' && Number(m[3]) !== size) {
    throw new MoeInspectorError('network', `the file is ${m[3]} bytes according to Content-Range but ${size} according to its HEAD: it changed on the hub during the run`, { file: hubName(ctx) });
  }
  if (a !== from || b < a || b > end - 1) {
    throw new MoeInspectorError('network', `asked for bytes ${from}-${end - 1}, the server answered with bytes ${a}-${b}`, { file: hubName(ctx) });
  }
  return b - a + 1;
}

async function discard(resp: Response): Promise<void> {
  await resp.body?.cancel().catch(() => undefined);
}
