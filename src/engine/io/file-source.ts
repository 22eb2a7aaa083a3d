import { open, type FileHandle } from 'node:fs/promises';
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

/** Opens a local regular file for byte-range reads. Missing file -> 'not-found'; other failures -> 'io'. */
export async function openFileSource(path: string): Promise<ByteSource> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new MoeInspectorError('not-found', 'file not found', { file: path });
    throw new MoeInspectorError('io', `cannot open: ${(e as Error).message}`, { file: path });
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new MoeInspectorError('io', 'not a regular file', { file: path });
    return new FileByteSource(path, st.size, fh);
  } catch (e) {
    await fh.close();
    throw e;
  }
}
