import { open, type FileHandle } from 'node:fs/promises';
import { MoeInspectorError } from '../errors';
import type { ByteSource } from './byte-source';

/** A local file read by positional reads: never loaded whole. */
class FileByteSource implements ByteSource {
  constructor(
    readonly name: string,
    readonly size: number,
    private readonly fh: FileHandle,
  ) {}

  async read(offset: number, length: number): Promise<Uint8Array> {
    if (offset < 0 || length < 0 || offset + length > this.size) {
      throw new MoeInspectorError('format', `read of ${length} bytes at offset ${offset} is past the end of the file (${this.size} bytes): truncated file?`, { file: this.name });
    }
    const buf = new Uint8Array(length);
    let done = 0;
    // Positional reads may return fewer bytes than asked: loop until the range is complete.
    while (done < length) {
      const { bytesRead } = await this.fh.read(buf, done, length - done, offset + done);
      if (bytesRead === 0) throw new MoeInspectorError('io', `unexpected end of file at offset ${offset + done}`, { file: this.name });
      done += bytesRead;
    }
    return buf;
  }

  close(): Promise<void> {
    return this.fh.close();
  }
}

export async function openFileSource(path: string): Promise<ByteSource> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new MoeInspectorError(code === 'ENOENT' ? 'not-found' : 'io', code === 'ENOENT' ? 'file not found' : `cannot open: ${(e as Error).message}`, { file: path });
  }
  const st = await fh.stat();
  if (!st.isFile()) {
    await fh.close();
    throw new MoeInspectorError('io', 'not a regular file', { file: path });
  }
  return new FileByteSource(path, st.size, fh);
}
