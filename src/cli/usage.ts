/** The help texts: `moe-inspect --help` and each command's `--help` (`moe-inspect overlay compute --help`). */
import { SYNTH_USAGE } from './synth-command';

const MODEL = `MODEL: a .safetensors file, a model.safetensors.index.json, a model folder (with config.json), or a
Hugging Face id org/name[@revision]: a local path first, then the local Hugging Face cache, then the
hub (HF_TOKEN, HF_ENDPOINT, HF_HUB_OFFLINE honoured).
  --allow-full-download   fetch a whole hub file when its server ignores HTTP Range (refused by default)`;

const LAYERS = `  --layer N | --layers 0,3,8-11 | --layers all
                          decoder layers by the checkpoint's numbering (default: the first MoE layer);
                          in models with layer groups: encoder.1, decoder.0-3, vision (a whole group);
                          a bare index selects that layer in every group`;

const DEVICE = `  --device auto|cpu|cuda  ONNX Runtime execution provider (auto: CUDA when available, else CPU)`;

const OUTPUT = `  --json                  print the JSON report instead of the text report
  -o, --output FILE       also write the JSON report to FILE`;

export const MAIN_USAGE = `moe-inspect — is this Mixture-of-Experts upcycled or native?

Usage:
  moe-inspect info     -m MODEL [--headers-only] [--json] [-o out.json]
  moe-inspect analyze  -m MODEL [--layer N | --layers 0,3,8-11 | --layers all] [--shard i/N] [--sample-experts N]
                                [--device auto|cpu|cuda] [--full-spectra] [--json] [-o out.json [--resume]]
                                [--parent DENSE] [--no-provenance] [--sketch-dim K] [--pair-experts N|all]
  moe-inspect merge    part1.json part2.json ... [-o model.json] [--allow-incomplete] [--json]
  moe-inspect compare  -m A -c B [--layer N | --layers ...] [--no-provenance] [-o out.json]
  moe-inspect provenance -m MOE [--parent DENSE] [--layer N | --layers ...] [--sketch-dim K] [--pair-experts N|all] [--json] [-o out.json]
  moe-inspect overlay compute  -m MODEL [--layers ...] [--gate-rank R --up-rank R --down-rank R | --energy 0.95 | --target-ratio X] [--save DIR]
  moe-inspect overlay verify   -m MODEL [--overlay DIR | ranks] [--inputs FILE] [--max-error E] [--seed N]
  moe-inspect overlay estimate -m MODEL [ranks] [--overlay-dtype BF16|F16|F32] [--fast] [-o out.json [--resume]]
  moe-inspect synth --family F --out DIR [--structure upcycled|native|partial] [--dtype ...] ...
  moe-inspect example            generate the bundled example model and analyse it

moe-inspect COMMAND --help prints that command's options.

${MODEL}
Aliases (the seeds' names): moe-type-analyze, moe-type-compare, moe-overlay-compute, moe-overlay-verify, moe-overlay-estimate.
Exit codes: 0 ok, 1 bad input or failed check, 2 usage, 130 cancelled.`;

const INFO = `moe-inspect info -m MODEL [--headers-only] [--json] [-o out.json]

Reads the headers only (no tensor data): family, MoE layers, expert count, per-projection shapes and
encodings, shared experts, dtypes with bytes, parameter counts. A model it cannot lay out as MoE is
an error (exit 1), as in analyze.
  -m, --model MODEL       (or the model as the first argument)
  --headers-only          list the headers even when no MoE layout resolves, saying why
${OUTPUT}

${MODEL}`;

const PROVENANCE_OPTIONS = `  --parent DENSE          the dense model the MoE may have been upcycled from (path or hub id): every
                          expert's neurons are matched against the parent FFN of the same layer
                          (with layer groups: the first group's layers, e.g. encoder.N)
  --sketch-dim K          sketch dimension of neuron matching, 8..4096 (default: 256, smaller for very
                          large layers)
  --pair-experts N|all    match at most N experts pair by pair, evenly spaced (default 64: pairs grow
                          as E^2; a 256-expert layer would have 32 640); "all" for every pair`;

const ANALYZE = `moe-inspect analyze -m MODEL [options]

Upcycled or native: per MoE layer and projection, the effective ranks of every expert's delta from
the mean expert, and the pairwise cosine of the experts; a verdict per layer and for the model.
  -m, --model MODEL
${LAYERS}
  --sample-experts N      analyse N experts (indices floor(i*E/N)) instead of all
${DEVICE}
  --full-spectra          keep every singular value (spectra longer than 512 are stored at 256 positions)
  --shard i/N             every N-th of the selected MoE layers, from i (i = 0..N-1; default --layers all);
                          moe-inspect merge joins the parts
${OUTPUT}
                          (written after every layer)
  --resume                continue the run saved in the -o file
${PROVENANCE_OPTIONS}
  --no-provenance         skip the neuron-matching pass (the rank + cosine rule alone, no recipe)

${MODEL}`;

const MERGE = `moe-inspect merge part1.json part2.json ... [-o model.json] [--allow-incomplete] [--json]

Joins the reports of one model analysed in shards (analyze --shard i/N -o part-i.json) into one report.
  --allow-incomplete      merge what there is, even when a part is unfinished or a planned layer is missing
${OUTPUT}`;

const PROVENANCE = `moe-inspect provenance -m MOE [options]

Neuron matching alone, without spectra: per MoE layer, which expert pairs share neurons (one-to-one
matches above the null threshold tau), in what order, and, with --parent, which experts come from the
dense parent and how its neurons were split among them; the verdict with recipe from this evidence.
Experts without a gate (nemotron_h, switch_transformers, nllb_moe) are matched on up+down neurons.
  -m, --model MOE
${LAYERS}
${PROVENANCE_OPTIONS}
${DEVICE}
${OUTPUT}   (moe-inspector/provenance@1)

${MODEL}`;

const COMPARE = `moe-inspect compare -m A -c B [options]

Analyses two models with the same options and prints them side by side.
  -m, --model A
  -c, --compare B
${LAYERS}
  --sample-experts N      analyse N experts instead of all
${DEVICE}
  --no-provenance         skip the neuron-matching pass in both models
${OUTPUT}   (moe-inspector/compare@1)

${MODEL}`;

const RANKS = `  ranks, one of:
    --gate-rank R --up-rank R --down-rank R   fixed ranks
    --energy T            smallest rank where every expert keeps at least T of its delta energy [0.95]
    --target-ratio X      per projection, the largest rank whose compression ratio is still >= X`;

const OVERLAY_COMPUTE = `moe-inspect overlay compute -m MODEL [options]

Base (the mean expert) + per-expert truncated-SVD deltas: picks the ranks, reports bytes, the
weight error ||W - W_hat|| / ||W|| and the delta energy kept, per projection; --save writes it.
The weight error is that of exact float32 factors, before rounding to --overlay-dtype (overlay verify
measures the stored overlay, its rounding included).
  -m, --model MODEL
${LAYERS}
${RANKS}
  --overlay-dtype BF16|F16|F32   dtype the overlay's bytes are counted (and saved) in [BF16]
  --save DIR              write layer-N.safetensors files and overlay-manifest.json
${DEVICE}
${OUTPUT}

${MODEL}`;

const OVERLAY_VERIFY = `moe-inspect overlay verify -m MODEL [--overlay DIR | ranks] [options]

Rebuilds every expert from the overlay (a saved --overlay DIR, or ranks computed now) and measures
the weight error, which includes the rounding of the overlay's storage dtype, and the whole expert's
output error on seeded N(0, 1) tokens (and on --inputs). Exit 1 when the worst output error exceeds
--max-error.
  -m, --model MODEL
  --overlay DIR           an overlay written by overlay compute --save (default: all its layers)
${LAYERS}
${RANKS}
  --inputs FILE           real activations: a .safetensors file with one [T, H] float tensor
  --max-error E           pass/fail threshold on the worst relative output error [0.01]
  --seed N                seed of the N(0, 1) tokens, any non-negative integer [0]
  --overlay-dtype BF16|F16|F32   dtype the overlay is stored in, when computed now [BF16]
${DEVICE}
${OUTPUT}

${MODEL}`;

const OVERLAY_ESTIMATE = `moe-inspect overlay estimate -m MODEL [ranks] [options]

Whole-model bytes before and after: every MoE layer measured with its own spectra; attention,
router, embeddings, norms, biases and shared experts shown apart.
  -m, --model MODEL
${RANKS}
  --overlay-dtype BF16|F16|F32   dtype the overlay is counted in [BF16]
  --fast                  ranks from the first MoE layer only
${DEVICE}
${OUTPUT}
                          (written after every layer)
  --resume                continue the run saved in the -o file

${MODEL}`;

const OVERLAY = `moe-inspect overlay compute|verify|estimate -m MODEL [options]

  compute    pick ranks, report bytes and errors, optionally --save the overlay
  verify     rebuild the experts and measure weight and output errors (exit 1 on failure)
  estimate   whole-model bytes before and after

moe-inspect overlay MODE --help prints that mode's options.`;

const EXAMPLE = `moe-inspect example

Generates (once) two small OLMoE-layout models, one upcycled (experts = base + rank 4/8/6 deltas) and
one native, analyses both and compares them: the tool's main job on data whose answer is known.
The models and compare.json go to .cache/example/ in the installation folder.`;

const USAGES: Record<string, string> = {
  info: INFO,
  analyze: ANALYZE,
  merge: MERGE,
  compare: COMPARE,
  provenance: PROVENANCE,
  overlay: OVERLAY,
  'overlay compute': OVERLAY_COMPUTE,
  'overlay verify': OVERLAY_VERIFY,
  'overlay estimate': OVERLAY_ESTIMATE,
  synth: `${SYNTH_USAGE}\n\nWrites a synthetic checkpoint of known structure and its ground truth (synth-ground-truth.json).`,
  example: EXAMPLE,
};

/** The help of `command` (and its overlay mode, when it has one), or null for an unknown command. */
export function usageOf(command: string, mode?: string): string | null {
  if (command === 'overlay' && mode !== undefined && USAGES[`overlay ${mode}`]) return USAGES[`overlay ${mode}`]!;
  return USAGES[command] ?? null;
}
