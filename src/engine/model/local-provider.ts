/**
 * Files of a local model folder (or a Hugging Face cache snapshot). Names come from index files we
 * do not trust: a name that is not a plain file name, or that resolves outside the model, is refused.
 */
import { realpath } from 'node:fs/promises';
import { basename, dirname, join, sep } from 'node:path';
import { MoeInspectorError } from '../errors';
import type { ByteSource } from '../io/byte-source';
import { openFileSource } from '../io/file-source';
import type { FileProvider } from './checkpoint';

/** config.json and index files are small; anything bigger is not what it claims to be. */
const MAX_TEXT_FILE_BYTES = 64 * 1024 * 1024;

/**
 * A relative file name is acceptable only as a plain name inside the folder: no separators, no
 * "..", no NUL, not empty, not absolute (a Windows drive prefix counts).
 * @param context.file the file the name came from (the index), for the error message
 */
export function assertPlainFileName(name: string, context: { file: string; what: string }): void {
  const hostile = name === '' || name === '.' || name.includes('..') || /[/\\\0]/.test(name) || /^[A-Za-z]:/.test(name);
  if (hostile) {
    throw new MoeInspectorError('hostile-path', `${context.what} ${JSON.stringify(name)} is not a plain file name inside the model folder: refused`, { file: context.file });
  }
}

/**
 * The folder that snapshot files may legitimately resolve into: for a Hugging Face cache snapshot
 * (.../models--org--name/snapshots/<commit>) its repo folder, whose blobs/ the snapshot links into;
 * otherwise the folder itself.
 */
export function trustedRootOf(realFolder: string): string {
  const snapshots = dirname(realFolder);
  const repo = dirname(snapshots);
  if (basename(snapshots) === 'snapshots' && /^models--.+--.+$/.test(basename(repo))) return repo;
  return realFolder;
}

export class LocalFolderProvider implements FileProvider {
  private rootPromise: Promise<{ folder: string; trusted: string }> | null = null;

  /**
   * @param folder the model folder (a cache snapshot folder is recognized by its path)
   * @param revision the commit, where known (cache snapshots)
   */
  constructor(
    private readonly folder: string,
    readonly revision: string | null = null,
  ) {}

  get displayRoot(): string {
    return this.folder;
  }

  private roots(): Promise<{ folder: string; trusted: string }> {
    this.rootPromise ??= realpath(this.folder).then(
      (folder) => ({ folder, trusted: trustedRootOf(folder) }),
      (e: NodeJS.ErrnoException) => {
        throw new MoeInspectorError(e.code === 'ENOENT' ? 'not-found' : 'io', `cannot open the model folder: ${e.message}`, { file: this.folder });
      },
    );
    return this.rootPromise;
  }

  /** The real path of a file in the folder, null when absent; refuses names and links that leave the model. */
  private async resolve(relName: string): Promise<string | null> {
    assertPlainFileName(relName, { file: join(this.folder, 'model.safetensors.index.json'), what: 'file name' });
    const { trusted } = await this.roots();
    const path = join(this.folder, relName);
    let real: string;
    try {
      real = await realpath(path);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return null; // absent, or a dangling snapshot link
      throw new MoeInspectorError('io', `cannot resolve: ${(e as Error).message}`, { file: path });
    }
    if (!(real === trusted || real.startsWith(trusted + sep))) {
      throw new MoeInspectorError('hostile-path', `${JSON.stringify(relName)} is a link to ${real}, outside the model folder: refused`, { file: path });
    }
    return real;
  }

  async open(relName: string): Promise<ByteSource | null> {
    const real = await this.resolve(relName);
    if (real === null) return null;
    const src = await openFileSource(real);
    // Errors should name the file as the user knows it, not the blob it links to.
    return renamed(src, join(this.folder, relName));
  }

  async readText(relName: string): Promise<string | null> {
    const real = await this.resolve(relName);
    if (real === null) return null;
    const path = join(this.folder, relName);
    const src = await openFileSource(real).catch((e: unknown) => {
      throw e instanceof MoeInspectorError ? new MoeInspectorError(e.code, e.problem, { file: path }) : e;
    });
    try {
      if (src.size > MAX_TEXT_FILE_BYTES) throw new MoeInspectorError('format', `${src.size} bytes is too large for a JSON metadata file`, { file: path });
      return new TextDecoder('utf-8').decode(await src.read(0, src.size));
    } finally {
      await src.close();
    }
  }

  async close(): Promise<void> {}
}

function renamed(src: ByteSource, name: string): ByteSource {
  return {
    name,
    size: src.size,
    read: async (offset, length) => {
      try {
        return await src.read(offset, length);
      } catch (e) {
        throw e instanceof MoeInspectorError ? new MoeInspectorError(e.code, e.problem, { ...e.where, file: name }) : e;
      }
    },
    close: () => src.close(),
  };
}
