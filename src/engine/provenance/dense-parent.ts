/**
 * The dense parent's FFN, read from any checkpoint the model-opening code opens (local folder,
 * Hugging Face cache, hub by byte range): per decoder layer L the tensors
 *   <stack>.L.mlp.{gate_proj, up_proj, down_proj}.weight   (llama, mistral, qwen2, gemma, ...)
 *   <stack>.L.feed_forward.{w1, w3, w2}.weight             (llama-original / mistral-original names)
 *   <stack>.L.mlp.{up_proj | fc1, down_proj | fc2}.weight  (no gate)
 * in linear [out, in] orientation: gate/up [P, H], down [H, P]. Only the layer asked for is read.
 */
import { MoeInspectorError } from '../errors';
import { assertPlainFloat, decodeSlice } from '../layouts/tensor-read';
import type { Checkpoint, TensorEntry } from '../model/checkpoint';
import type { FfnMatrices } from './neurons';

const LAYER = /^(.*?\b(?:layers|blocks|h))\.(\d+)\.(mlp|feed_forward)\.([a-z0-9_]+)\.weight$/;
const ROLES: Record<string, 'gate' | 'up' | 'down'> = { gate_proj: 'gate', w1: 'gate', up_proj: 'up', w3: 'up', fc1: 'up', down_proj: 'down', w2: 'down', fc2: 'down' };

export interface DenseParent {
  readonly source: string;
  /** Decoder layers that hold a dense FFN. */
  readonly layers: readonly number[];
  /** The FFN of decoder layer `layer`, checked against the MoE's hidden size. */
  ffn(layer: number, hidden: number): Promise<FfnMatrices>;
}

export function denseParentOf(ckpt: Checkpoint): DenseParent {
  const byLayer = new Map<number, Partial<Record<'gate' | 'up' | 'down', TensorEntry>>>();
  for (const [name, t] of ckpt.tensors) {
    const m = LAYER.exec(name);
    const role = m ? ROLES[m[4]!] : undefined;
    if (!m || !role) continue;
    const l = Number(m[2]);
    const slot = byLayer.get(l) ?? {};
    slot[role] = t;
    byLayer.set(l, slot);
  }
  const layers = [...byLayer.entries()].filter(([, s]) => s.up && s.down).map(([l]) => l).sort((a, b) => a - b);
  if (layers.length === 0) {
    throw new MoeInspectorError('layout', 'no dense FFN found in the parent (looked for <layers>.N.mlp.{gate,up,down}_proj.weight, feed_forward.{w1,w3,w2}, mlp.{fc1,fc2})', { file: ckpt.source });
  }
  return {
    source: ckpt.source,
    layers,
    async ffn(layer, hidden) {
      const slot = byLayer.get(layer);
      if (!slot?.up || !slot.down) throw new MoeInspectorError('layout', `the parent has no dense FFN at layer ${layer} (dense FFN layers: ${layers.join(', ')})`, { file: ckpt.source });
      const read = async (t: TensorEntry, rows: number, cols: number) => {
        assertPlainFloat(t);
        if (t.shape.length !== 2 || t.shape[0] !== rows || t.shape[1] !== cols) {
          throw new MoeInspectorError('layout', `parent FFN tensor has shape [${t.shape.join(', ')}], expected [${rows}, ${cols}] (hidden size ${hidden} of the MoE)`, { file: t.file, tensor: t.name });
        }
        return { rows, cols, data: await decodeSlice(ckpt, t, 0, 1) };
      };
      const P = slot.up.shape[0] ?? 0;
      return {
        gate: slot.gate ? await read(slot.gate, P, hidden) : null,
        up: await read(slot.up, P, hidden),
        down: await read(slot.down, hidden, P),
      };
    },
  };
}

/**
 * The parent a layer is matched against: a dense parent is one stack of layers, so it stands for the
 * model's first layer group only (the single stack, the text experts of a vision-language MoE, or the
 * encoder); layers of the other groups (decoder, vision) are matched among their own experts.
 */
export function parentOfLayer(parent: DenseParent | undefined, model: { readonly layers: readonly { readonly group: string | null }[] }, layout: { readonly group: string | null }): DenseParent | undefined {
  return parent && layout.group === (model.layers[0]?.group ?? null) ? parent : undefined;
}
