/**
 * A model on the Hugging Face hub as a Checkpoint, reading only the bytes asked for: the
 * headers, then tensors by byte range, each range fetched once and kept in the range cache.
 */
import { MoeInspectorError } from '../errors';
import type { Checkpoint } from '../model/checkpoint';
import type { ModelId } from '../model/hf-cache';
import { openCheckpointFromProvider } from '../model/open-checkpoint';
import { hubEndpoint, hubToken, isHubOffline, rangeCacheRoot } from './hub-env';
import { redactError } from './hub-errors';
import { HubHttp, type TransferStats } from './hub-http';
import { HubFileProvider } from './hub-provider';
import type { RetryPolicy } from './retry';

export type { TransferStats } from './hub-http';

export interface HubOptions {
  readonly env?: NodeJS.ProcessEnv;
  /** Overrides HF_TOKEN and the token file. */
  readonly token?: string;
  /** Download a whole file when the server ignores Range (otherwise: 'range-unsupported'). */
  readonly allowFullDownload?: boolean;
  /** Bytes received so far vs bytes the reads so far need from the network. */
  readonly onBytes?: (fetched: number, needed: number) => void;
  readonly signal?: AbortSignal;
  /** Parallel requests to the hub (default 4). */
  readonly concurrency?: number;
  /** Backoff tuning (tests use short delays). */
  readonly retry?: Partial<RetryPolicy>;
  /** Root of the range cache (default $XDG_CACHE_HOME/moe-inspector/hub-ranges). */
  readonly rangeCacheDir?: string;
}

const transfers = new WeakMap<Checkpoint, Readonly<TransferStats>>();

/**
 * The live transfer counters of a checkpoint opened from the hub (bytesFetched: what came over the
 * network; bytesFromCache: what the range cache served), or null for a local one.
 */
export function transferStatsOf(ckpt: Checkpoint): Readonly<TransferStats> | null {
  return transfers.get(ckpt) ?? null;
}

export async function openHubModel(id: ModelId, opts: HubOptions = {}): Promise<Checkpoint> {
  const env = opts.env ?? process.env;
  const spec = id.revision === null ? id.repo : `${id.repo}@${id.revision}`;
  if (isHubOffline(env)) throw new MoeInspectorError('offline', 'HF_HUB_OFFLINE is set: the hub may not be contacted, and this model is not in the local cache', { file: spec });
  const token = hubToken(env, opts.token);
  const http = new HubHttp({
    endpoint: hubEndpoint(env),
    token,
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...(opts.onBytes ? { onBytes: opts.onBytes } : {}),
    ...(opts.retry ? { retry: opts.retry } : {}),
    ...(opts.concurrency ? { concurrency: opts.concurrency } : {}),
  });
  try {
    const provider = await HubFileProvider.connect(id.repo, id.revision, http, {
      allowFullDownload: opts.allowFullDownload ?? false,
      cacheRoot: opts.rangeCacheDir ?? rangeCacheRoot(env),
    });
    const ckpt = await openCheckpointFromProvider(provider, spec);
    const withRedaction: Checkpoint = {
      ...ckpt,
      readTensorBytes: (name, range) => ckpt.readTensorBytes(name, range).catch((e: unknown) => Promise.reject(redactError(e, token))),
      close: () => ckpt.close(),
    };
    transfers.set(withRedaction, http.stats);
    return withRedaction;
  } catch (e) {
    throw redactError(e, token);
  }
}
