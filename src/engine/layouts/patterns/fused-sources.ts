/** Turning a fused gate+up tensor and a down tensor (one slice per expert) into three projections. */
import { MoeInspectorError } from '../../errors';
import type { TensorEntry } from '../../model/checkpoint';
import type { Projection, RowBlockSource, WeightEncoding } from '../types';
import type { RowRange } from '../../formats/mxfp4';
import { assertFinite, decodeSlice, pickElems, pickRows, readSliceBytes, rowRangeOf, where, type RowPick } from '../tensor-read';
import { decodeRows, everyNthRow, pickColumns } from '../row-blocks';
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
  /**
   * Stored rows first, first + step, ... (count of them) of expert j's slice of a fused tensor,
   * decoded, in the orientation the checkpoint stores them (pass one of the streaming analysis).
   */
  readonly readStoredRows: (t: TensorEntry, j: number, first: number, count: number, step: number) => Promise<Float32Array>;
  /** Reads (and drops) expert j's stored bytes of a fused tensor and its scales: warms a hub range cache. */
  readonly prefetch: (t: TensorEntry, j: number) => Promise<void>;
  /** Each expert is stored input-major ([in, out], y = x @ W): row blocks then cut the transposed matrix. */
  readonly storedTransposed: boolean;
  readonly gateUpShape: readonly [number, number]; // [2I, H] as decoded
  readonly downShape: readonly [number, number]; // [H, I] as decoded
  readonly split: GateUpSplit;
  readonly encoding: WeightEncoding;
  readonly gateUpTensors: readonly string[];
  readonly downTensors: readonly string[];
  readonly gateUpBias: TensorEntry | null;
  readonly downBias: TensorEntry | null;
}

/** readStoredRows and prefetch for plain-dtype fused tensors [E, rows, cols]. */
export function plainStoredRows(ctx: PatternContext, E: number): Pick<FusedSpec, 'readStoredRows' | 'prefetch'> {
  return {
    async readStoredRows(t, j, first, count, step) {
      return everyNthRow(await decodeRows(ctx.ckpt, t, j, E, t.shape[1]!, first, (count - 1) * step + 1), t.shape[2]!, step, count);
    },
    async prefetch(t, j) {
      await readSliceBytes(ctx.ckpt, t, j, E);
    },
  };
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
    rowBlocks: gateUpBlocks(f, rowRangeOf(pick(p), rows2)),
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
      rowBlocks: downBlocks(f),
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

/**
 * Row blocks of gate or up. Output-major: the picked rows of the fused matrix (every second one, or
 * one half). Input-major ([H, 2I] stored): blocks of stored rows, the picked columns of each.
 */
function gateUpBlocks(f: FusedSpec, pick: RowRange): RowBlockSource {
  const [rows2, cols] = f.gateUpShape;
  const half = rows2 / 2;
  if (f.storedTransposed) {
    return {
      rows: cols,
      cols: half,
      transposed: true,
      async read(j, first, count) {
        return pickColumns(await f.readStoredRows(f.gateUp, j, first, count, 1), count, rows2, pick.first, pick.step, half);
      },
      prefetch: (j) => f.prefetch(f.gateUp, j),
    };
  }
  return {
    rows: half,
    cols,
    transposed: false,
    read: (j, first, count) => f.readStoredRows(f.gateUp, j, pick.first + first * pick.step, count, pick.step),
    prefetch: (j) => f.prefetch(f.gateUp, j),
  };
}

function downBlocks(f: FusedSpec): RowBlockSource {
  const [out, inner] = f.downShape;
  return {
    rows: f.storedTransposed ? inner : out,
    cols: f.storedTransposed ? out : inner,
    transposed: f.storedTransposed,
    read: (j, first, count) => f.readStoredRows(f.down, j, first, count, 1),
    prefetch: (j) => f.prefetch(f.down, j),
  };
}
