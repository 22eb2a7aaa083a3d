import type { ByteSource } from '../io/byte-source';
import type { Dtype } from '../formats/dtype';

/** One tensor as a safetensors header describes it, with ABSOLUTE byte offsets in its file. */
export interface TensorInfo {
  readonly name: string;
  readonly dtype: Dtype;
  /** Logical shape (F4 counts elements, two per byte). */
  readonly shape: readonly number[];
  /** Absolute offset of the first byte in the file (8 + header length + data_offsets[0]). */
  readonly offset: number;
  readonly byteLength: number;
}

/** A tensor of a (possibly sharded) checkpoint, and the file it lives in. */
export interface TensorEntry extends TensorInfo {
  /** Relative file name inside the model (e.g. "model-00001-of-00003.safetensors"). */
  readonly file: string;
}

/**
 * Opens the files of one model by relative name. A local folder, a Hugging Face cache snapshot
 * and the hub each implement this; the checkpoint logic above is the same for all of them.
 */
export interface FileProvider {
  /** Shown to users: a folder path, or "hub:org/name@commit". */
  readonly displayRoot: string;
  /** The revision/commit where known (hub, cache), for reports and overlay metadata. */
  readonly revision: string | null;
  /** Implementations refuse names with "/", "\\", "..", or absolute paths ('hostile-path'). */
  open(relName: string): Promise<ByteSource | null>;
  readText(relName: string): Promise<string | null>;
  close(): Promise<void>;
}

/** A whole checkpoint: config plus every tensor of every shard, read lazily by byte range. */
export interface Checkpoint {
  /** What the user named (path or model id). */
  readonly source: string;
  readonly revision: string | null;
  /** Parsed config.json, or null for a bare .safetensors file without one. */
  readonly config: Readonly<Record<string, unknown>> | null;
  readonly tensors: ReadonlyMap<string, TensorEntry>;
  /** __metadata__ of each shard, by file. */
  readonly fileMetadata: ReadonlyMap<string, Readonly<Record<string, string>>>;
  /** Total bytes of all shard files (headers included). */
  readonly totalBytes: number;
  /** The raw bytes of a tensor, or of a byte sub-range of it (one expert of a fused [E, ...] tensor). */
  readTensorBytes(name: string, range?: { offset: number; length: number }): Promise<Uint8Array>;
  close(): Promise<void>;
}
