/**
 * A Hugging Face hub on loopback for tests: real node:http, the hub's routes and headers, and
 * injectable faults. Serves model folders from disk by byte range and counts every body byte sent.
 *
 * Routes: GET /api/models/{repo}[/revision/{rev}] (JSON with sha and siblings);
 * HEAD/GET /{repo}/resolve/{rev}/{file} (X-Repo-Commit, X-Linked-Size, ETag, X-Error-Code);
 * .safetensors files answer 302 to /cdn/{repo}/{commit}/{file} (relative, or absolute on another server).
 */
import { createHash } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

export interface FakeRepo {
  /** Folder whose plain files are the repo's files. */
  readonly dir: string;
  /** Branch or tag -> commit (40 hex). "main" should be there. */
  readonly refs: Readonly<Record<string, string>>;
  /** When set, every hub route needs "Authorization: Bearer <token>". */
  readonly token?: string;
}

export interface Faults {
  /** The next `times` file requests (HEAD or GET on resolve/cdn) answer `status`. */
  status?: { code: number; times: number; retryAfter?: string };
  /** The next `times` ranged GETs longer than `afterBytes` send `afterBytes` body bytes, then the socket is destroyed. */
  drop?: { afterBytes: number; times: number };
  /** The next `times` ranged GETs announce (Content-Length, Content-Range) the full range but end cleanly after `bytes`. */
  short?: { bytes: number; times: number };
  /** Answer Range requests with 200 and the whole file. */
  ignoreRange?: boolean;
  /** Milliseconds to wait before answering each file request. */
  delayMs?: number;
  /** 404 answers carry no X-Error-Code (an older or third-party server). */
  noErrorCodes?: boolean;
}

export interface RequestLog {
  readonly method: string;
  readonly path: string;
  readonly range: string | null;
  readonly authorization: string | null;
  readonly status: number;
  readonly at: number;
}

export class FakeHub {
  readonly repos = new Map<string, FakeRepo>();
  faults: Faults = {};
  /** Body bytes written to sockets (all routes). */
  bytesSent = 0;
  readonly log: RequestLog[] = [];
  /** File requests being answered right now, and the most at once. */
  inFlight = 0;
  peakInFlight = 0;
  private server: Server | null = null;
  private base = '';

  /** @param cdn where .safetensors redirects go: this server (relative Location) or another one (absolute). */
  constructor(private readonly cdn: FakeHub | 'self' = 'self') {}

  get url(): string {
    return this.base;
  }

  async start(): Promise<this> {
    const server = createServer((req, res) => {
      this.handle(req, res).catch((e: unknown) => {
        if (!res.headersSent) res.writeHead(500).end(String(e));
        else res.destroy();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    server.unref(); // never keeps the test process alive
    this.server = server;
    this.base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  resetCounters(): void {
    this.peakInFlight = 0;
    this.bytesSent = 0;
    this.log.length = 0;
  }

  private reply(req: IncomingMessage, res: ServerResponse, status: number, headers: Record<string, string | number>, body?: Buffer): void {
    this.log.push({ method: req.method!, path: req.url!, range: req.headers.range ?? null, authorization: req.headers.authorization ?? null, status, at: Date.now() });
    const len = body ? body.length : 0;
    res.writeHead(status, { 'content-length': len, ...headers });
    if (body && req.method !== 'HEAD') {
      this.bytesSent += body.length;
      res.end(body);
    } else res.end();
  }

  private error(req: IncomingMessage, res: ServerResponse, status: number, code: string | null, message: string, extra: Record<string, string> = {}): void {
    const headers: Record<string, string> = { 'content-type': 'application/json', ...extra };
    if (code !== null && !this.faults.noErrorCodes) {
      headers['x-error-code'] = code;
      headers['x-error-message'] = message;
    }
    this.reply(req, res, status, headers, Buffer.from(JSON.stringify({ error: message })));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url!, this.base);
    const path = decodeURIComponent(url.pathname);
    let m: RegExpExecArray | null;
    if ((m = /^\/api\/models\/([^/]+\/[^/]+)(?:\/revision\/(.+))?$/.exec(path))) return this.api(req, res, m[1]!, m[2] ?? 'main');
    if ((m = /^\/cdn\/([^/]+\/[^/]+)\/([0-9a-f]{40})\/(.+)$/.exec(path))) return this.file(req, res, m[1]!, m[2]!, m[3]!, true);
    if ((m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname))) {
      return this.file(req, res, decodeURIComponent(m[1]!), decodeURIComponent(m[2]!), decodeURIComponent(m[3]!), false);
    }
    this.error(req, res, 404, null, 'no such route');
  }

  private authorized(req: IncomingMessage, repo: FakeRepo): boolean {
    return repo.token === undefined || req.headers.authorization === `Bearer ${repo.token}`;
  }

  private async api(req: IncomingMessage, res: ServerResponse, name: string, rev: string): Promise<void> {
    const repo = this.repos.get(name);
    if (!repo) return this.error(req, res, 404, 'RepoNotFound', 'Repository not found');
    if (!this.authorized(req, repo)) return this.error(req, res, 401, 'GatedRepo', 'Access to this model is restricted');
    const sha = rev === 'HEAD' ? repo.refs['main'] : (repo.refs[rev] ?? (/^[0-9a-f]{40}$/.test(rev) && Object.values(repo.refs).includes(rev) ? rev : undefined));
    if (sha === undefined) return this.error(req, res, 404, 'RevisionNotFound', 'Invalid rev id');
    const siblings = (await readdir(repo.dir)).map((rfilename) => ({ rfilename }));
    const body = { _id: 'x', id: name, sha, siblings, private: repo.token !== undefined, gated: false, downloads: 0, likes: 0, lastModified: '2025-01-01T00:00:00.000Z' };
    this.reply(req, res, 200, { 'content-type': 'application/json' }, Buffer.from(JSON.stringify(body)));
  }

  private async file(req: IncomingMessage, res: ServerResponse, name: string, rev: string, file: string, viaCdn: boolean): Promise<void> {
    this.inFlight++;
    this.peakInFlight = Math.max(this.peakInFlight, this.inFlight);
    res.once('close', () => this.inFlight--);
    if (this.faults.delayMs) await new Promise((r) => setTimeout(r, this.faults.delayMs));
    const st = this.faults.status;
    if (st && st.times > 0) {
      st.times--;
      return this.error(req, res, st.code, null, `injected ${st.code}`, st.retryAfter !== undefined ? { 'retry-after': st.retryAfter } : {});
    }
    const repo = this.repos.get(name);
    if (!repo) return this.error(req, res, 404, 'RepoNotFound', 'Repository not found');
    if (!viaCdn && !this.authorized(req, repo)) return this.error(req, res, 401, 'GatedRepo', 'Access to this model is restricted');
    const commit = repo.refs[rev] ?? (Object.values(repo.refs).includes(rev) ? rev : undefined);
    if (commit === undefined) return this.error(req, res, 404, 'RevisionNotFound', 'Invalid rev id');
    const path = join(repo.dir, file);
    let size: number;
    try {
      size = statSync(path).size;
    } catch {
      return this.error(req, res, 404, 'EntryNotFound', 'Entry not found', { 'x-repo-commit': commit });
    }
    const etag = `"${createHash('sha1').update(`${commit}/${file}/${size}`).digest('hex')}"`;
    const meta = { 'x-repo-commit': commit, etag, 'accept-ranges': 'bytes' };
    if (!viaCdn && file.endsWith('.safetensors')) {
      const target = `/cdn/${name}/${commit}/${encodeURIComponent(file)}`;
      const location = this.cdn === 'self' ? target : `${this.cdn.url}${target}`;
      return this.reply(req, res, 302, { ...meta, location, 'x-linked-size': size, 'x-linked-etag': etag });
    }
    return this.serveBytes(req, res, path, size, meta);
  }

  private serveBytes(req: IncomingMessage, res: ServerResponse, path: string, size: number, meta: Record<string, string>): void {
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (!range || this.faults.ignoreRange) return this.stream(req, res, 200, path, 0, size, { ...meta }, size);
    const a = Number(range[1]);
    const b = range[2] === '' ? size - 1 : Math.min(Number(range[2]), size - 1);
    if (a >= size || b < a) return this.reply(req, res, 416, { 'content-range': `bytes */${size}` });
    let sendBytes = b - a + 1;
    const short = this.faults.short;
    if (req.method === 'GET' && short && short.times > 0 && sendBytes > short.bytes) {
      short.times--;
      sendBytes = short.bytes;
      // A Content-Length that matches what is sent, a Content-Range that promises more.
    }
    return this.stream(req, res, 206, path, a, sendBytes, { ...meta, 'content-range': `bytes ${a}-${b}/${size}` }, sendBytes);
  }

  /** Streams `length` bytes at `start` (or drops the connection midway when a drop fault is armed). */
  private stream(req: IncomingMessage, res: ServerResponse, status: number, path: string, start: number, length: number, headers: Record<string, string>, contentLength: number): void {
    this.log.push({ method: req.method!, path: req.url!, range: req.headers.range ?? null, authorization: req.headers.authorization ?? null, status, at: Date.now() });
    res.writeHead(status, { ...headers, 'content-length': contentLength });
    if (req.method === 'HEAD' || length === 0) return void res.end();
    const drop = this.faults.drop;
    let limit = Infinity;
    if (drop && drop.times > 0 && length > drop.afterBytes) {
      drop.times--;
      limit = drop.afterBytes;
    }
    let sent = 0;
    const src = createReadStream(path, { start, end: start + length - 1 });
    src.on('data', (chunk: Buffer | string) => {
      const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      const part = sent + buf.length > limit ? buf.subarray(0, limit - sent) : buf;
      sent += part.length;
      this.bytesSent += part.length;
      const ok = res.write(part);
      if (sent >= limit) {
        src.destroy();
        // Let the partial bytes leave, then cut the connection like a dying proxy.
        res.once('drain', () => res.socket?.destroy());
        if (ok) setImmediate(() => res.socket?.destroy());
        return;
      }
      if (!ok) {
        src.pause();
        res.once('drain', () => src.resume());
      }
    });
    src.on('end', () => res.end());
    src.on('error', () => res.destroy());
    res.on('close', () => src.destroy());
  }
}
