/**
 * Files of a local model folder (or a Hugging Face cache snapshot). Names come from index files we
 * do not trust: a name that is not a plain file name, or that resolves outside the model, is refused.
 */
import { readFile, realpath } from 'node:fs/promises';
import { basename, dirname, join, sep } from 'node:path';
import { MoeInspectorError } from '../errors';
import type { ByteSource } from '../io/byte-source';
import { openFileSource } from '../io/file-source';
import type { FileProvider } from './checkpoint';

/** A relative file name is acceptable only as a plain name inside the folder. */
export function assertPlainFileName(name: string, context: { file: string; what: string }): void {
  const hostile = name === '' || name === '.' || name === '..' || /[/\\\0]/.test(name) || /^[A-Za-z]:/.test(name);
  if (hostile) {
    throw new MoeInspectorError('hostile-path', `${context.what} "${name}" is not a plain file name inside the model folder: refused`, { file: context.file });
  }
}

export class LocalFolderProvider implements FileProvider {
  /**
   * @param folder the model folder
   * @param trustedRoot resolved paths must stay inside this folder: the folder itself, or for a
   *   cache snapshot the repo folder (snapshot files are symlinks into ../../blobs/).
   */
  constructor(
    private readonly folder: string,
    readonly revision: string | null = null,
    private readonly trustedRoot: string = folder,
  ) {}

  get displayRoot(): string {
    return this.folder;
  }

  private async resolve(relName: string): Promise<string | null> {
    assertPlainFileName(relName, { file: join(this.folder, 'model.safetensors.index.json'), what: 'file' });
    const path = join(this.folder, relName);
    let real: string;
    try {
      real = await realpath(path);
    } catch {
      return null;
    }
    const root = await realpath(this.trustedRoot);
    if (!(real === root || real.startsWith(root + sep))) {
      throw new MoeInspectorError('hostile-path', `"${relName}" resolves to ${real}, outside the model folder: refused`, { file: path });
    }
    return real;
  }

  async open(relName: string): Promise<ByteSource | null> {
    const real = await this.resolve(relName);
    if (real === null) return null;
    const src = await openFileSource(real);
    // Errors should name the file as the user knows it, not the blob it links to.
    return { ...bindSource(src), name: join(this.folder, relName) };
  }

  async readText(relName: string): Promise<string | null> {
    const real = await this.resolve(relName);
    return real === null ? null : readFile(real, 'utf8');
  }

  async close(): Promise<void> {}
}

function bindSource(src: ByteSource): ByteSource {
  return { name: src.name, size: src.size, read: src.read.bind(src), close: src.close.bind(src) };
}

export function folderOf(path: string): { folder: string; file: string } {
  return { folder: dirname(path), file: basename(path) };
}
