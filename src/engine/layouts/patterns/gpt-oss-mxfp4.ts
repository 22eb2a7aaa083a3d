/**
 * GPT-OSS MXFP4 experts (openai/gpt-oss weights.py; transformers integrations/mxfp4.py):
 *   mlp.experts.gate_up_proj_blocks U8 [E, 2I, H/32, 16] + _scales U8 [E, 2I, H/32] + _bias [E, 2I]
 *   mlp.experts.down_proj_blocks    U8 [E, H, I/32, 16]  + _scales U8 [E, H, I/32]  + _bias [E, H]
 * Rows are outputs (linear orientation); the 32-blocks run along the input. gate_up rows are
 * INTERLEAVED: even rows gate, odd rows up (GptOssExperts: gate_up[..., ::2], gate_up[..., 1::2]).
 * Biases are per output row and stay apart: folding them in made GPT-OSS look upcycled (fact sheet 5).
 */
import { MoeInspectorError } from '../../errors';
import { decodeMxfp4, type RowRange } from '../../formats/mxfp4';
import type { TensorEntry } from '../../model/checkpoint';
import { readSliceBytes, tensorOf, where } from '../tensor-read';
import { readRowBytes } from '../row-blocks';
import { fusedSources, optionalTensor } from './fused-sources';
import type { LayerTensors, LayoutPattern, PatternContext, PatternMatch } from './types';
import { expertBlockKey } from './expert-block';

function checkBlocks(t: TensorEntry): void {
  if (t.dtype !== 'U8' || t.shape.length !== 4 || t.shape[3] !== 16) {
    throw new MoeInspectorError('layout', `MXFP4 blocks must be U8 [E, rows, groups, 16], got ${t.dtype} [${t.shape.join(', ')}]`, where(t));
  }
}

function checkScales(s: TensorEntry, blocks: TensorEntry): void {
  const [E, rows, groups] = blocks.shape;
  if (s.dtype !== 'U8' || s.shape.length !== 3 || s.shape[0] !== E || s.shape[1] !== rows || s.shape[2] !== groups) {
    throw new MoeInspectorError('layout', `MXFP4 scales are ${s.dtype} [${s.shape.join(', ')}], expected U8 [${E}, ${rows}, ${groups}] to match blocks [${blocks.shape.join(', ')}]`, where(s));
  }
}

function match(layer: LayerTensors, ctx: PatternContext): PatternMatch | null {
  const key = expertBlockKey(layer, ctx, (k) => k.endsWith('experts.gate_up_proj_blocks'));
  if (!key) return null;
  const base = layer.prefix + key.slice(0, -'gate_up_proj_blocks'.length);
  const need = (s: string): TensorEntry => tensorOf(ctx.ckpt, base + s);
  const [gub, gus, db, ds] = [need('gate_up_proj_blocks'), need('gate_up_proj_scales'), need('down_proj_blocks'), need('down_proj_scales')];
  checkBlocks(gub);
  checkBlocks(db);
  checkScales(gus, gub);
  checkScales(ds, db);
  const [E, R2, G] = gub.shape as [number, number, number];
  const [Ed, H, Gd] = db.shape as [number, number, number];
  if (Ed !== E || H !== G * 32 || R2 !== 2 * Gd * 32) {
    throw new MoeInspectorError('layout', `down_proj_blocks [${db.shape.join(', ')}] does not fit gate_up_proj_blocks [${gub.shape.join(', ')}] (expected [${E}, ${G * 32}, ${R2 / 64}, 16])`, where(db));
  }
  const scalesOf = new Map([[gub.name, gus], [db.name, ds]]);
  // Only expert j's byte range of blocks and scales is read.
  const decode = async (t: TensorEntry, j: number, rows?: RowRange): Promise<Float32Array> => {
    const [, all, groups] = t.shape as [number, number, number];
    const [blocks, scales] = await Promise.all([readSliceBytes(ctx.ckpt, t, j, E), readSliceBytes(ctx.ckpt, scalesOf.get(t.name)!, j, E)]);
    return decodeMxfp4(blocks, scales, all, groups, where(t), rows);
  };
  // Rows first, first + step, ...: the byte range of the rows they span, blocks and scales alike.
  const readStoredRows = async (t: TensorEntry, j: number, first: number, count: number, step: number): Promise<Float32Array> => {
    const [, all, groups] = t.shape as [number, number, number];
    const span = (count - 1) * step + 1;
    const [blocks, scales] = await Promise.all([readRowBytes(ctx.ckpt, t, j, E, all, first, span), readRowBytes(ctx.ckpt, scalesOf.get(t.name)!, j, E, all, first, span)]);
    return decodeMxfp4(blocks, scales, span, groups, where(t), { first: 0, step, count });
  };
  const prefetch = async (t: TensorEntry, j: number): Promise<void> => {
    await Promise.all([readSliceBytes(ctx.ckpt, t, j, E), readSliceBytes(ctx.ckpt, scalesOf.get(t.name)!, j, E)]);
  };
  return {
    pattern: 'gpt-oss-mxfp4',
    numExperts: E,
    projections: fusedSources(ctx, {
      gateUp: gub,
      down: db,
      numExperts: E,
      decode,
      decodeRows: decode,
      readStoredRows,
      prefetch,
      storedTransposed: false,
      gateUpShape: [R2, G * 32],
      downShape: [H, Gd * 32],
      split: 'interleaved',
      encoding: { kind: 'mxfp4' },
      gateUpTensors: [gub.name, gus.name],
      downTensors: [db.name, ds.name],
      gateUpBias: optionalTensor(ctx, base + 'gate_up_proj_bias'),
      downBias: optionalTensor(ctx, base + 'down_proj_bias'),
    }),
  };
}

export const gptOssMxfp4Pattern: LayoutPattern = { name: 'gpt-oss-mxfp4', match };
