/**
 * A checkpoint's fingerprint: what `--resume` and `merge` compare to be sure every layer of a report
 * came from the same weights. Hashing the weights themselves would read the whole model, so it hashes
 * what identifies a checkpoint cheaply: config.json, every shard's tensor table (names, dtypes,
 * shapes, files, offsets, byte lengths), the shards' metadata and the total size. A hub or cache
 * model also has its commit (compared separately); a local folder has none, and a model re-saved
 * with the same shapes (a training run overwriting its checkpoint) would keep the same headers, so
 * there the first bytes of one expert tensor are hashed too.
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from '../io/json-file';
import type { Checkpoint } from './checkpoint';

/** Expert bytes hashed for a local model: enough to tell two trainings of one architecture apart. */
const SAMPLE_BYTES = 4096;

/** @param sampleTensor a tensor every run reads anyway (an expert weight of the first MoE layer) */
export async function checkpointFingerprint(ckpt: Checkpoint, sampleTensor: string | null): Promise<string> {
  const h = createHash('sha256');
  h.update(canonicalJson(ckpt.config ?? null));
  const tensors = [...ckpt.tensors.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const t of tensors) h.update(`\n${JSON.stringify([t.name, t.file, t.dtype, t.shape, t.offset, t.byteLength])}`);
  const files = [...ckpt.fileMetadata.keys()].sort();
  for (const f of files) h.update(`\n${JSON.stringify(f)}:${canonicalJson(ckpt.fileMetadata.get(f))}`);
  h.update(`\n${ckpt.totalBytes}`);
  const sample = ckpt.revision === null && sampleTensor !== null ? ckpt.tensors.get(sampleTensor) : undefined;
  if (sample) h.update(await ckpt.readTensorBytes(sample.name, { offset: 0, length: Math.min(SAMPLE_BYTES, sample.byteLength) }));
  return `sha256:${h.digest('hex')}`;
}
