"""The numpy/scipy pipeline a researcher would write, for `npm run bench` to compare against.

One MoE layer of a safetensors checkpoint (the bench's generated GPT-OSS- or OLMoE-shaped model),
every expert of gate/up/down, the same exact work as the project:
  decode (BF16, or MXFP4 blocks + E8M0 scales with gate/up interleaved in gate_up_proj)
  base = mean of the experts (float64 accumulation, stored float32)
  Frobenius norms and the E x E cosine matrix of the raw experts
  per expert: D = W - base (float32); G = D D^T or D^T D on the smaller side (float32 BLAS);
    eigenvalues by LAPACK syevr: scipy.linalg.eigh(G, eigvals_only=True, driver='evr')
  effective ranks at 90/95/99% energy from the clipped eigenvalues (the project's definition).
Prints one JSON line: seconds per stage, total, and the ranks per projection.
Usage: python3 numpy_layer.py MODEL_DIR FAMILY LAYER   (FAMILY: gpt_oss | olmoe)
       python3 numpy_layer.py MODEL_DIR FAMILY LAYER --float64 gate:9,up:29
         the float64 reference ranks of the listed experts (base, delta and Gram in float64, LAPACK
         dsyevd): the arbiter where the float32 pipelines disagree by one at a threshold.
"""
import json
import os
import sys
import time

import numpy as np
import scipy.linalg

E2M1 = np.array([0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6], dtype=np.float32)
THRESHOLDS = ('0.9', '0.95', '0.99')


def tensors(model_dir):
    """name -> (file, dtype, shape, begin, end) over every .safetensors file of the folder."""
    out = {}
    for f in sorted(os.listdir(model_dir)):
        if not f.endswith('.safetensors'):
            continue
        path = os.path.join(model_dir, f)
        with open(path, 'rb') as fh:
            n = int.from_bytes(fh.read(8), 'little')
            header = json.loads(fh.read(n))
        for name, t in header.items():
            if name != '__metadata__':
                out[name] = (path, t['dtype'], t['shape'], 8 + n + t['data_offsets'][0], 8 + n + t['data_offsets'][1])
    return out


def raw(entry, dtype, first=None):
    """The tensor, or only its slice [first] along the leading (expert) axis."""
    path, _, shape, begin, end = entry
    if first is not None:
        size = (end - begin) // shape[0]
        begin, end, shape = begin + first * size, begin + (first + 1) * size, shape[1:]
    return np.fromfile(path, dtype=dtype, count=(end - begin) // np.dtype(dtype).itemsize, offset=begin).reshape(shape)


def bf16(entry):
    return (raw(entry, np.uint16).astype(np.uint32) << 16).view(np.float32)


POW2 = np.append(np.ldexp(np.float32(1), np.arange(-127, 128)), np.nan).astype(np.float32)  # E8M0 byte -> 2^(byte - 127); 255 is NaN


def mxfp4(blocks_entry, scales_entry, e, rows=slice(None)):
    """Expert e of an MXFP4 tensor, only the picked rows: blocks [E, rows, G, 16] (low nibble = even element), scales [E, rows, G]."""
    blocks = raw(blocks_entry, np.uint8, e)[rows]
    scales = POW2[raw(scales_entry, np.uint8, e)[rows]]
    r, groups = scales.shape
    codes = np.empty((r, groups, 32), dtype=np.uint8)
    codes[..., 0::2] = blocks & 0x0F
    codes[..., 1::2] = blocks >> 4
    return (E2M1[codes] * scales[..., None]).reshape(r, groups * 32)


def experts_of(t, family, layer, proj, num_experts):
    prefix = f'model.layers.{layer}.mlp.experts'
    if family == 'olmoe':
        return [bf16(t[f'{prefix}.{j}.{proj}_proj.weight']) for j in range(num_experts)]
    if proj == 'down':
        return [mxfp4(t[f'{prefix}.down_proj_blocks'], t[f'{prefix}.down_proj_scales'], j) for j in range(num_experts)]
    start = 0 if proj == 'gate' else 1  # gate_up interleaved: gate = rows ::2, up = rows 1::2
    return [mxfp4(t[f'{prefix}.gate_up_proj_blocks'], t[f'{prefix}.gate_up_proj_scales'], j, slice(start, None, 2)) for j in range(num_experts)]


def effective_rank(ev_desc, t):
    e = np.clip(ev_desc, 0, None).astype(np.float64)
    total = e.sum()
    if total == 0:
        return 0
    k = int(np.searchsorted(np.cumsum(e), t * total) + 1)
    return min(k, len(e))


def main():
    model_dir, family, layer = sys.argv[1], sys.argv[2], int(sys.argv[3])
    t = tensors(model_dir)
    if family == 'olmoe':
        num_experts = len({k for k in t if k.startswith(f'model.layers.{layer}.mlp.experts.') and k.endswith('.gate_proj.weight')})
    else:
        num_experts = t[f'model.layers.{layer}.mlp.experts.down_proj_blocks'][2][0]
    stages = {'decode': 0.0, 'base_norms_cosine': 0.0, 'gram': 0.0, 'eigenvalues': 0.0}
    ranks = {}
    t_all = time.perf_counter()
    for proj in ('gate', 'up', 'down'):
        t0 = time.perf_counter()
        w = np.stack(experts_of(t, family, layer, proj, num_experts))  # [E, m, n] float32
        stages['decode'] += time.perf_counter() - t0
        t0 = time.perf_counter()
        base = w.mean(axis=0, dtype=np.float64).astype(np.float32)
        flat = w.reshape(num_experts, -1)
        norms = np.sqrt(np.einsum('ij,ij->i', flat, flat, dtype=np.float64))
        cosine = (flat @ flat.T) / np.outer(norms, norms)
        stages['base_norms_cosine'] += time.perf_counter() - t0
        m, n = w.shape[1:]
        ranks[proj] = {th: [] for th in THRESHOLDS}
        for j in range(num_experts):
            t0 = time.perf_counter()
            d = w[j] - base
            g = d @ d.T if m <= n else d.T @ d
            t1 = time.perf_counter()
            ev = scipy.linalg.eigh(g, eigvals_only=True, driver='evr', overwrite_a=True, check_finite=False)[::-1]
            t2 = time.perf_counter()
            stages['gram'] += t1 - t0
            stages['eigenvalues'] += t2 - t1
            for th in THRESHOLDS:
                ranks[proj][th].append(effective_rank(ev, float(th)))
        del w, flat, cosine
    total = time.perf_counter() - t_all
    print(json.dumps({'seconds': total, 'stages': stages, 'ranks': ranks, 'numpy': np.__version__, 'scipy': scipy.__version__}))


def float64_ranks(model_dir, family, layer, wanted):
    t = tensors(model_dir)
    if family == 'olmoe':
        num_experts = len({k for k in t if k.startswith(f'model.layers.{layer}.mlp.experts.') and k.endswith('.gate_proj.weight')})
    else:
        num_experts = t[f'model.layers.{layer}.mlp.experts.down_proj_blocks'][2][0]
    out = {}
    for proj in sorted({p for p, _ in wanted}):
        experts = [e for p, e in wanted if p == proj]
        w = experts_of(t, family, layer, proj, num_experts)
        base = np.zeros(w[0].shape, dtype=np.float64)
        for x in w:
            base += x
        base /= num_experts
        out[proj] = {}
        for j in experts:
            d = w[j].astype(np.float64) - base
            g = d @ d.T if d.shape[0] <= d.shape[1] else d.T @ d
            ev = np.linalg.eigvalsh(g)[::-1]
            out[proj][str(j)] = {th: effective_rank(ev, float(th)) for th in THRESHOLDS}
    print(json.dumps(out))


if __name__ == '__main__':
    if '--float64' in sys.argv:
        pairs = [x.split(':') for x in sys.argv[sys.argv.index('--float64') + 1].split(',')]
        float64_ranks(sys.argv[1], sys.argv[2], int(sys.argv[3]), [(p, int(e)) for p, e in pairs])
    else:
        main()
