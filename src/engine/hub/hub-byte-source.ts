/**
 * One file on the hub as a ByteSource. A read fetches only the bytes no cache entry (and no read
 * already in flight) holds, in parts of at most PART_BYTES, stores them in the range cache, and
 * assembles the answer. Reads near the start of the file are widened to the first 100,001 bytes, as
 * huggingface_hub reads safetensors headers: one request gets the length prefix and, for almost
 * every file, the whole header.
 */
import { MoeInspectorError } from '../errors';
import type { ByteSource } from '../io/byte-source';
import { hubName, type RequestContext } from './hub-errors';
import { RangeIgnored, type HubHttp } from './hub-http';
import { cover, type FileRangeCache, type Interval } from './range-store';

/** huggingface_hub's first header request: bytes=0-100000. */
export const HEADER_PROBE_BYTES = 100_001;
/** Large reads are split into parts fetched in parallel (each its own cache entry and resume unit). */
export const PART_BYTES = 16 * 1024 * 1024;
/** Fetched bytes kept in memory when they could not be cached on disk (e.g. a read-only cache). */
const MEMORY_BUDGET_BYTES = 64 * 1024 * 1024;

export interface HubFile {
  readonly repo: string;
  readonly commit: string;
  readonly file: string;
  readonly size: number;
  readonly url: string;
}

/** Somewhere bytes of [start, end) can be had from. */
interface Known extends Interval {
  /** True for on-disk cache entries: bytes served from them count as cache hits. */
  readonly cached: boolean;
  get(start: number, end: number): Promise<Uint8Array | null>;
}

export class HubByteSource implements ByteSource {
  readonly name: string;
  readonly size: number;
  private readonly inFlight = new Set<Known>();
  private readonly memory: Known[] = [];
  private memoryBytes = 0;
  private wholeFile: Promise<void> | null = null;
  private closed = false;

  constructor(
    private readonly target: HubFile,
    private readonly http: HubHttp,
    private readonly cache: FileRangeCache,
    private readonly allowFullDownload: boolean,
  ) {
    this.name = hubName({ repo: target.repo, revision: target.commit, file: target.file });
    this.size = target.size;
  }

  private get ctx(): RequestContext {
    return { repo: this.target.repo, revision: this.target.commit, file: this.target.file, endpoint: this.http.endpoint, hasToken: this.http.hasToken };
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    if (this.closed) throw new MoeInspectorError('io', 'read after the file was closed', { file: this.name });
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
      throw new MoeInspectorError('io', `invalid byte range: ${length} bytes at offset ${offset}`, { file: this.name });
    }
    if (offset + length > this.size) {
      throw new MoeInspectorError('format', `read of ${length} bytes at offset ${offset} is past the end of the file (${this.size} bytes): truncated file?`, { file: this.name });
    }
    if (length === 0) return new Uint8Array(0);
    const end = offset + length;
    const region = offset < HEADER_PROBE_BYTES ? { start: 0, end: Math.max(end, Math.min(this.size, HEADER_PROBE_BYTES)) } : { start: offset, end };
    await this.cache.entries(); // the disk listing, loaded before planning so planning needs no await
    this.startFetches(region);
    return this.assemble(offset, end);
  }

  /** Everything we can read from: disk entries, fetches in flight, bytes kept in memory. */
  private known(): Known[] {
    const disk = this.cache.loaded().map((e): Known => ({ ...e, cached: true, get: (s, t) => this.cache.read(e, s, t) }));
    return [...disk, ...this.inFlight, ...this.memory];
  }

  /** Starts a fetch for every gap of `region`; synchronous so concurrent reads never fetch twice. */
  private startFetches(region: Interval): void {
    for (const gap of cover(region.start, region.end, this.known())) {
      if (gap.from !== null) continue;
      for (let s = gap.start; s < gap.end; s += PART_BYTES) this.startFetch(s, Math.min(gap.end, s + PART_BYTES));
    }
  }

  private startFetch(start: number, end: number): void {
    this.http.addNeeded(end - start);
    const bytes = this.fetchPart(start, end);
    const pending: Known = { start, end, cached: false, get: async (s, t) => (await bytes).subarray(s - start, t - start) };
    this.inFlight.add(pending);
    bytes.then(
      async (b) => {
        try {
          await this.cache.write(start, b);
        } catch {
          this.keepInMemory(start, b); // the cache is an optimisation: a failed write costs a refetch later, nothing else
        }
        this.inFlight.delete(pending);
      },
      () => this.inFlight.delete(pending),
    );
  }

  private keepInMemory(start: number, b: Uint8Array): void {
    if (this.memoryBytes + b.length > MEMORY_BUDGET_BYTES) return;
    this.memoryBytes += b.length;
    this.memory.push({ start, end: start + b.length, cached: false, get: async (s, t) => b.subarray(s - start, t - start) });
  }

  private async fetchPart(start: number, end: number): Promise<Uint8Array> {
    if (this.wholeFile === null) {
      try {
        return await this.http.getRange(this.target.url, start, end, this.size, this.ctx);
      } catch (e) {
        if (!(e instanceof RangeIgnored)) throw e;
        if (!this.allowFullDownload) throw this.rangeUnsupported();
      }
    }
    await this.downloadWhole();
    const entry = { start: 0, end: this.size };
    const bytes = await this.cache.read(entry, start, end);
    if (bytes === null) throw new MoeInspectorError('io', `the downloaded file vanished from the range cache (${this.cache.dir})`, { file: this.name });
    return bytes;
  }

  private rangeUnsupported(): MoeInspectorError {
    return new MoeInspectorError(
      'range-unsupported',
      `the server ignored the HTTP Range request and answered with the whole file (${this.size} bytes, ${(this.size / 2 ** 30).toFixed(2)} GiB); allow a full download (allowFullDownload / --allow-full-download) to fetch it whole`,
      { file: this.name },
    );
  }

  /** The full-download fallback: the file once, straight into the range cache as [0, size). */
  private downloadWhole(): Promise<void> {
    this.wholeFile ??= (async () => {
      this.http.addNeeded(this.size);
      await this.http.getWhole(this.target.url, this.size, this.ctx, (stream) => this.cache.writeWhole(this.size, stream));
    })();
    return this.wholeFile;
  }

  /** The requested bytes from what is known; a piece whose cache entry vanished is fetched again. */
  private async assemble(start: number, end: number): Promise<Uint8Array> {
    const out = new Uint8Array(end - start);
    const pieces = cover(start, end, this.known());
    await Promise.all(
      pieces.map(async (p) => {
        if (p.from === null) throw new MoeInspectorError('io', `internal: bytes ${p.start}-${p.end - 1} were neither cached nor fetched`, { file: this.name });
        let bytes = await p.from.get(p.start, p.end);
        if (bytes === null) bytes = await this.http.getRange(this.target.url, p.start, p.end, this.size, this.ctx);
        else if (p.from.cached) this.http.stats.bytesFromCache += bytes.length;
        out.set(bytes, p.start - start);
      }),
    );
    return out;
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
