/**
 * The on-disk cache of byte ranges read from the hub, so a second run fetches nothing:
 * {root}/models--{org}--{name}/{commit}/{file}/{start}-{end}.bin. A commit pins every file's
 * content, so an entry never goes stale. Entries are written to a temp file and renamed: a crash
 * or a concurrent run never leaves a half-written entry under a final name.
 */
import { mkdir, open, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** A half-open byte interval [start, end). */
export interface Interval {
  readonly start: number;
  readonly end: number;
}

const ENTRY = /^(\d+)-(\d+)\.bin$/;

/** The cached ranges of one file of one commit. */
export class FileRangeCache {
  private listing: Interval[] | null = null;
  private tempCounter = 0;

  constructor(readonly dir: string) {}

  /** The entries on disk (read once, then kept up to date by this process's writes). */
  async entries(): Promise<readonly Interval[]> {
    if (this.listing === null) {
      let names: string[] = [];
      try {
        names = await readdir(this.dir);
      } catch {
        names = []; // nothing cached yet (or the cache is unreadable: then we simply fetch)
      }
      this.listing = names.flatMap((n) => {
        const m = ENTRY.exec(n);
        return m && Number(m[2]) > Number(m[1]) ? [{ start: Number(m[1]), end: Number(m[2]) }] : [];
      });
    }
    return this.listing;
  }

  /** The entries known now, without touching the disk; call entries() once first. */
  loaded(): readonly Interval[] {
    return this.listing ?? [];
  }

  private pathOf(r: Interval): string {
    return join(this.dir, `${r.start}-${r.end}.bin`);
  }

  /**
   * Bytes [start, end) out of a cached entry that contains them, or null when the entry is gone or
   * shorter than its name says (then it is dropped and the caller fetches the bytes again).
   */
  async read(entry: Interval, start: number, end: number): Promise<Uint8Array | null> {
    const out = new Uint8Array(end - start);
    let fh;
    try {
      fh = await open(this.pathOf(entry), 'r');
      let done = 0;
      while (done < out.length) {
        const { bytesRead } = await fh.read(out, done, out.length - done, start - entry.start + done);
        if (bytesRead === 0) throw new Error('short cache entry');
        done += bytesRead;
      }
      if ((await fh.stat()).size !== entry.end - entry.start) throw new Error('cache entry has the wrong size');
      return out;
    } catch {
      await this.forget(entry);
      return null;
    } finally {
      await fh?.close();
    }
  }

  /** Stores bytes fetched for [start, start + bytes.length). */
  async write(start: number, bytes: Uint8Array): Promise<void> {
    const entry = { start, end: start + bytes.length };
    await this.commit(entry, (tmp) => writeFile(tmp, bytes));
  }

  /**
   * Stores a whole file of `length` bytes that `fill` streams through `write` (the full-download
   * fallback for servers that ignore Range).
   */
  async writeWhole(length: number, fill: (write: (chunk: Uint8Array) => Promise<void>) => Promise<void>): Promise<void> {
    await this.commit({ start: 0, end: length }, async (tmp) => {
      const fh = await open(tmp, 'w');
      try {
        let pos = 0;
        await fill(async (chunk) => {
          await fh.write(chunk, 0, chunk.length, pos);
          pos += chunk.length;
        });
        if (pos !== length) throw new Error(`wrote ${pos} of ${length} bytes`);
      } finally {
        await fh.close();
      }
    });
  }

  private async commit(entry: Interval, writeTemp: (tmp: string) => Promise<void>): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const tmp = join(this.dir, `.${entry.start}-${entry.end}.${process.pid}.${this.tempCounter++}.tmp`);
    try {
      await writeTemp(tmp);
      await rename(tmp, this.pathOf(entry));
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
    const list = (await this.entries()) as Interval[];
    if (!list.some((r) => r.start === entry.start && r.end === entry.end)) list.push(entry);
  }

  private async forget(entry: Interval): Promise<void> {
    const list = (await this.entries()) as Interval[];
    const i = list.findIndex((r) => r.start === entry.start && r.end === entry.end);
    if (i >= 0) list.splice(i, 1);
    await rm(this.pathOf(entry), { force: true }).catch(() => undefined);
  }
}

/** The cache folder of one file of one commit. File names are URI-encoded: never a path. */
export function fileCacheDir(root: string, repo: string, commit: string, file: string): string {
  return join(root, `models--${repo.replace('/', '--')}`, commit, encodeURIComponent(file));
}

/** A piece of a requested range and which known interval (if any) already holds it. */
export interface Piece<T extends Interval> extends Interval {
  readonly from: T | null;
}

/**
 * Splits [start, end) into pieces covered by `known` intervals (overlaps allowed; the one reaching
 * furthest wins) and gaps (from = null), in order.
 */
export function cover<T extends Interval>(start: number, end: number, known: readonly T[]): Piece<T>[] {
  const pieces: Piece<T>[] = [];
  let pos = start;
  while (pos < end) {
    let best: T | null = null;
    let nextStart = end;
    for (const k of known) {
      if (k.start <= pos && k.end > pos) {
        if (best === null || k.end > best.end) best = k;
      } else if (k.start > pos && k.start < nextStart) {
        nextStart = k.start;
      }
    }
    const pieceEnd = best !== null ? Math.min(best.end, end) : nextStart;
    pieces.push({ start: pos, end: pieceEnd, from: best });
    pos = pieceEnd;
  }
  return pieces;
}
