/** Shared set-up for the hub tests: a small synthetic model served by a FakeHub, temp folders. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSyntheticCheckpoint, type SynthSpec } from '../../src/engine/synth/generate';

export const COMMIT_A = 'a'.repeat(39) + '1';
export const COMMIT_B = 'b'.repeat(39) + '2';
export const SECRET = 'hf_testSecretToken1234567890';

/** Mixtral layout, BF16, sharded into 3 files: big enough for several ranges, small enough to write in milliseconds. */
export const SMALL_SPEC: SynthSpec = {
  family: 'mixtral',
  dtype: 'BF16',
  numLayers: 2,
  numExperts: 4,
  hidden: 64,
  intermediate: 96,
  structure: { kind: 'upcycled', ranks: { gate: 3, up: 4, down: 5 } },
  seed: 7,
  maxShardBytes: 160_000,
};

export async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `moe-hub-${prefix}-`));
}

export async function writeSmallModel(dir: string): Promise<void> {
  await generateSyntheticCheckpoint(dir, SMALL_SPEC);
}

export async function removeAll(...dirs: string[]): Promise<void> {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
}

/** An environment that points at the fake hub and at private cache folders, nothing from the real user. */
export function hubEnv(endpoint: string, home: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { HOME: home, HF_HOME: join(home, 'hf'), XDG_CACHE_HOME: join(home, 'xdg'), HF_ENDPOINT: endpoint, ...extra };
}

/** Retries without the production waits. */
export const FAST_RETRY = { baseDelayMs: 5, maxDelayMs: 20 };
