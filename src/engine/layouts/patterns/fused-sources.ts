/** Turning a fused gate+up tensor and a down tensor (one slice per expert) into three projections. */
import { MoeInspectorError } from '../../errors';
import type { TensorEntry } from '../../model/checkpoint';
import type { Projection, WeightEncoding } from '../types';
import type { RowRange } from '../../formats/mxfp4';
import { assertFinite, decodeSlice, pickElems, pickRows, rowRangeOf, where, type RowPick } from '../tensor-read';
import type { PatternContext, ProjSource } from './types';

/** How gate and up share the fused output rows: alternating (GPT-OSS) or gate half then up half. */
export type GateUpSplit = 'interleaved' | 'halves';

export interface FusedSpec {
  readonly gateUp: TensorEntry;
  readonly down: TensorEntry;
  readonly numExperts: number;
  /** Decodes expert j of a fused tensor to [out, in] (before any gate/up split). */
  readonly decode: (t: TensorEntry, j: number) => Promise<Float32Array>;
  /** Decodes only the picked rows of expert j's gate_up, where the format can skip the others (MXFP4). */
  readonly decodeRows?: (t: TensorEntry, j: number, rows: RowRange) => Promise<Float32Array>;
  readonly gateUpShape: readonly [number, number]; // [2I, H] as decoded
  readonly downShape: readonly [number, number]; // [H, I] as decoded
  readonly split: GateUpSplit;
  readonly encoding: WeightEncoding;
  readonly gateUpTensors: readonly string[];
  readonly downTensors: readonly string[];
  readonly gateUpBias: TensorEntry | null;
  readonly downBias: TensorEntry | null;
}

export function optionalTensor(ctx: PatternContext, name: string | undefined): TensorEntry | null {
  return name === undefined ? null : (ctx.ckpt.tensors.get(name) ?? null);
}

/** A bias must hold one value per output row of every expert. */
export function checkBias(bias: TensorEntry | null, E: number, out: number): void {
  if (bias && (bias.shape.length !== 2 || bias.shape[0] !== E || bias.shape[1] !== out)) {
    throw new MoeInspectorError('layout', `expert bias has shape [${bias.shape.join(', ')}], expected [${E}, ${out}]`, where(bias));
  }
}

async function readBias(ctx: PatternContext, t: TensorEntry, j: number, E: number, pick: RowPick | null): Promise<Float32Array> {
  const all = await decodeSlice(ctx.ckpt, t, j, E);
  const b = pick ? pickElems(all, pick) : all;
  assertFinite(b, t, j);
  return b;
}

export function fusedSources(ctx: PatternContext, f: FusedSpec): Record<Projection, ProjSource> {
  const [rows2, cols] = f.gateUpShape;
  if (rows2 % 2 !== 0) throw new MoeInspectorError('layout', `fused gate/up has ${rows2} output rows, not an even number`, where(f.gateUp));
  checkBias(f.gateUpBias, f.numExperts, rows2);
  checkBias(f.downBias, f.numExperts, f.downShape[0]);
  const pick = (p: 'gate' | 'up'): RowPick => (f.split === 'interleaved' ? (p === 'gate' ? 'even' : 'odd') : p === 'gate' ? 'first-half' : 'second-half');
  const gu = (p: 'gate' | 'up'): ProjSource => ({
    layout: { shape: [rows2 / 2, cols], encoding: f.encoding, tensors: [...f.gateUpTensors, ...(f.gateUpBias ? [f.gateUpBias.name] : [])], hasBias: f.gateUpBias !== null },
    async read(j) {
      const w = f.decodeRows
        ? await f.decodeRows(f.gateUp, j, rowRangeOf(pick(p), rows2))
        : pickRows(await f.decode(f.gateUp, j), rows2, cols, pick(p));
      assertFinite(w, f.gateUp, j);
      return w;
    },
    async readBias(j) {
      return f.gateUpBias ? readBias(ctx, f.gateUpBias, j, f.numExperts, pick(p)) : null;
    },
  });
  return {
    gate: gu('gate'),
    up: gu('up'),
    down: {
      layout: { shape: f.downShape, encoding: f.encoding, tensors: [...f.downTensors, ...(f.downBias ? [f.downBias.name] : [])], hasBias: f.downBias !== null },
      async read(j) {
        const w = await f.decode(f.down, j);
        assertFinite(w, f.down, j);
        return w;
      },
      async readBias(j) {
        return f.downBias ? readBias(ctx, f.downBias, j, f.numExperts, null) : null;
      },
    },
  };
}
