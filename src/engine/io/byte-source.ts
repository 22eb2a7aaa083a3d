/**
 * Random access to the bytes of one file, local or remote. Everything above this reads tensors by
 * byte range through it, so no checkpoint file is ever loaded whole.
 */
export interface ByteSource {
  /** What to name in error messages: a local path or a hub URL/repo path. */
  readonly name: string;
  /** Total size in bytes. */
  readonly size: number;
  /** Exactly `length` bytes at `offset`; rejects (never short-reads) if the range is past EOF. */
  read(offset: number, length: number): Promise<Uint8Array>;
  close(): Promise<void>;
}
