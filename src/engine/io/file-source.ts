import { constants, type Stats } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { MoeInspectorError } from '../errors';
import type { ByteSource } from './byte-source';

/** fs.read refuses lengths above 2 GiB - 1; reading in smaller pieces also keeps each syscall bounded. */
const MAX_READ_CHUNK = 1 << 30;

/** A local file read by positional reads: never loaded whole. */
class FileByteSource implements ByteSource {
  private closed = false;

  constructor(
    readonly name: string,
    readonly size: number,
    private readonly fh: FileHandle,
  ) {}

  async read(offset: number, length: number): Promise<Uint8Array> {
    if (this.closed) throw new MoeInspectorError('io', 'read after the file was closed', { file: this.name });
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
      throw new MoeInspectorError('io', `invalid byte range: ${length} bytes at offset ${offset}`, { file: this.name });
    }
    if (offset + length > this.size) {
      throw new MoeInspectorError('format', `read of ${length} bytes at offset ${offset} is past the end of the file (${this.size} bytes): truncated file?`, { file: this.name });
    }
    const buf = new Uint8Array(length);
    let done = 0;
    // Positional reads may return fewer bytes than asked: loop until the range is complete.
    while (done < length) {
      const want = Math.min(length - done, MAX_READ_CHUNK);
      const { bytesRead } = await this.fh.read(buf, done, want, offset + done);
      // The file shrank after we sized it (another process truncated it).
      if (bytesRead === 0) throw new MoeInspectorError('io', `unexpected end of file at offset ${offset + done}: the file changed while being read?`, { file: this.name });
      done += bytesRead;
    }
    return buf;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fh.close();
  }
}

/** What a non-regular file is, for the message. */
function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  return 'not a regular file';
}

function notRegular(path: string, st: Stats): MoeInspectorError {
  const kind = kindOf(st);
  return new MoeInspectorError('io', `${kind === 'not a regular file' ? kind : `is ${kind}, not a regular file`}: refused`, { file: path });
}

/**
 * Opens a local regular file for byte-range reads. Missing file -> 'not-found'; a directory, FIFO,
 * socket or device -> 'io' at once (stat comes first: opening a FIFO for reading would block until
 * a writer appears); other failures -> 'io'.
 */
export async function openFileSource(path: string): Promise<ByteSource> {
  let before: Stats;
  try {
    before = await stat(path);
  } catch (e) {
    throw openError(path, e);
  }
  if (!before.isFile()) throw notRegular(path, before);
  let fh: FileHandle;
  try {
    // O_NONBLOCK: should the path be swapped for a FIFO after the stat, open still returns at once
    // (and fstat below refuses it); on a regular file the flag changes nothing.
    fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw openError(path, e);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw notRegular(path, st);
    return new FileByteSource(path, st.size, fh);
  } catch (e) {
    await fh.close();
    throw e;
  }
}

function openError(path: string, e: unknown): MoeInspectorError {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new MoeInspectorError('not-found', 'file not found', { file: path });
  return new MoeInspectorError('io', `cannot open: ${(e as Error).message}`, { file: path });
}

/** A small local text file read whole, refused at once unless it is a regular file (never blocks on a FIFO). */
export async function readRegularTextFile(path: string): Promise<string> {
  const src = await openFileSource(path);
  try {
    return new TextDecoder('utf-8').decode(await src.read(0, src.size));
  } finally {
    await src.close();
  }
}
