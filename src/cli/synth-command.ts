/** `moe-inspect synth`: writes a synthetic checkpoint of known structure (see src/engine/synth). */
import { parseArgs } from 'node:util';
import { MoeInspectorError } from '../engine/errors';
import { generateSyntheticCheckpoint, type SynthSpec } from '../engine/synth/generate';
import { SYNTH_FAMILIES, type SynthFamily } from '../engine/synth/families';
import type { Structure } from '../engine/synth/experts';
import type { SynthDtype } from '../engine/synth/encode-matrix';
import { RECIPE_KINDS, type Recipe, type RecipeKind } from '../engine/synth/recipes';

const DTYPES: readonly SynthDtype[] = ['F32', 'BF16', 'F16', 'MXFP4', 'FP8'];

export const SYNTH_USAGE = `moe-inspect synth --family F --out DIR [options]
  --family      ${SYNTH_FAMILIES.join(' | ')}
  --dtype       F32 | BF16 | F16 | MXFP4 (gpt_oss) | FP8 (deepseek family, 128x128 block scales)   [BF16]
  --structure   upcycled | native | partial                                                      [upcycled]
  --ranks G,U,D delta ranks of gate, up, down for upcycled/partial                                [4,8,6]
  --fraction F  share of upcycled experts for partial                                             [0.5]
  --layers N --experts E --hidden H --intermediate I                                              [2, 8, 256, 128]
  --seed N      any non-negative integer                                                        [1234]
  --delta-scale S --noise S --shard-mb MB
  --recipe      ${RECIPE_KINDS.join(' | ')}
                build experts neuron by neuron from a dense parent, written to --parent-out [DIR-parent]
  --reinit R    re-initialised share (permuted-copy [0.5], split-reinit [0.5]) or noised share (noise-copy [0.5])
  --segments S --replicas R --no-shuffle   split: S segments x R replicas = experts [R 1]
  --parent-intermediate P                  split-reinit: the parent's intermediate size [2 x I]
  --drift D     training drift: independent noise of relative size D on every expert weight   [0]`;

function int(v: string | undefined, dflt: number, name: string, min = 1): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (v.trim() === '' || !Number.isSafeInteger(n) || n < min) {
    throw new MoeInspectorError('usage', `--${name} must be ${min === 0 ? 'a non-negative' : 'a positive'} integer (got "${v}")`);
  }
  return n;
}

function num(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new MoeInspectorError('usage', `--${name} must be a non-negative number (got "${v}")`);
  return n;
}

function recipeOf(v: Record<string, string | boolean | undefined>): Recipe {
  const kind = v['recipe'] as RecipeKind;
  if (!RECIPE_KINDS.includes(kind)) throw new MoeInspectorError('usage', `--recipe must be one of ${RECIPE_KINDS.join(', ')}`);
  const n = (k: string): number | undefined => num(v[k] as string | undefined, k);
  const i = (k: string): number | undefined => (v[k] === undefined ? undefined : int(v[k] as string, 0, k));
  const fields: Record<string, number | boolean | undefined> = {
    reinit: n('reinit'), noise: n('noise'), fraction: n('fraction'), drift: n('drift'),
    segments: i('segments'), replicas: i('replicas'), parentIntermediate: i('parent-intermediate'),
    ...(v['no-shuffle'] ? { shuffle: false } : {}),
  };
  return { kind, ...Object.fromEntries(Object.entries(fields).filter(([, x]) => x !== undefined)) } as Recipe;
}

export function parseSynthArgs(args: string[]): { out: string; spec: SynthSpec; parentOut?: string } {
  const { values: v } = parseArgs({
    args,
    strict: true,
    options: {
      family: { type: 'string' }, dtype: { type: 'string' }, structure: { type: 'string' }, ranks: { type: 'string' },
      fraction: { type: 'string' }, layers: { type: 'string' }, experts: { type: 'string' }, hidden: { type: 'string' },
      intermediate: { type: 'string' }, 'delta-scale': { type: 'string' }, noise: { type: 'string' }, seed: { type: 'string' },
      'shard-mb': { type: 'string' }, out: { type: 'string', short: 'o' },
      recipe: { type: 'string' }, reinit: { type: 'string' }, segments: { type: 'string' }, replicas: { type: 'string' },
      'no-shuffle': { type: 'boolean' }, 'parent-intermediate': { type: 'string' }, drift: { type: 'string' }, 'parent-out': { type: 'string' },
    },
  });
  const family = v.family as SynthFamily | undefined;
  if (!family || !SYNTH_FAMILIES.includes(family)) throw new MoeInspectorError('usage', `--family must be one of ${SYNTH_FAMILIES.join(', ')}\n\n${SYNTH_USAGE}`);
  if (!v.out) throw new MoeInspectorError('usage', `missing --out DIR\n\n${SYNTH_USAGE}`);
  const dtype = (v.dtype ?? 'BF16').toUpperCase() as SynthDtype;
  if (!DTYPES.includes(dtype)) throw new MoeInspectorError('usage', `--dtype must be one of ${DTYPES.join(', ')}`);
  const r = (v.ranks ?? '4,8,6').split(',').map((x) => int(x, 0, 'ranks'));
  if (r.length !== 3) throw new MoeInspectorError('usage', '--ranks takes three numbers: gate,up,down');
  const ranks = { gate: r[0]!, up: r[1]!, down: r[2]! };
  const extra = { ...(num(v['delta-scale'], 'delta-scale') !== undefined ? { deltaScale: num(v['delta-scale'], 'delta-scale')! } : {}), ...(num(v.noise, 'noise') !== undefined ? { noise: num(v.noise, 'noise')! } : {}) };
  const kind = v.structure ?? 'upcycled';
  if (v.recipe !== undefined && v.structure !== undefined) throw new MoeInspectorError('usage', 'give --structure or --recipe, not both');
  const structure: Structure =
    v.recipe !== undefined ? { kind: 'recipe', recipe: recipeOf(v) }
    : kind === 'native' ? { kind: 'native' }
    : kind === 'partial' ? { kind: 'partial', fraction: num(v.fraction, 'fraction') ?? 0.5, ranks, ...extra }
    : kind === 'upcycled' ? { kind: 'upcycled', ranks, ...extra }
    : (() => { throw new MoeInspectorError('usage', '--structure must be upcycled, native or partial'); })();
  const shardMb = num(v['shard-mb'], 'shard-mb');
  return {
    out: v.out,
    ...(v.recipe !== undefined ? { parentOut: v['parent-out'] ?? `${v.out.replace(/[\\/]+$/, '')}-parent` } : {}),
    spec: {
      family, dtype, structure,
      numLayers: int(v.layers, 2, 'layers'),
      numExperts: int(v.experts, 8, 'experts'),
      hidden: int(v.hidden, 256, 'hidden'),
      intermediate: int(v.intermediate, 128, 'intermediate'),
      // Any seed is a seed, 0 included.
      seed: int(v.seed, 1234, 'seed', 0),
      ...(shardMb !== undefined ? { maxShardBytes: Math.floor(shardMb * 1e6) } : {}),
    },
  };
}

export async function synthCommand(args: string[]): Promise<number> {
  const { out, spec, parentOut } = parseSynthArgs(args);
  const truth = await generateSyntheticCheckpoint(out, spec, parentOut ? { parentDir: parentOut } : {});
  process.stdout.write(
    `wrote ${out}: ${spec.family} ${spec.dtype}, ${spec.numExperts} experts, MoE layers ${truth.moeLayerNames.join(',')}, ` +
      `${truth.files.length} file${truth.files.length === 1 ? '' : 's'}, ${(truth.totalBytes / 1e6).toFixed(1)} MB; ground truth in synth-ground-truth.json${parentOut ? `; dense parent in ${parentOut}` : ''}\n`,
  );
  return 0;
}
