/**
 * The pieces of resumable and sharded runs that need no model: the report file writer, shards,
 * run identity, the checkpoint fingerprint, and merge's refusals and verdict (against modelVerdict
 * computed here over the layers in model order, the single run's rule).
 */
import { strict as assert } from 'node:assert';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jsonPieces, parseJsonBytes, readJsonFile, writeJsonAtomic } from '../../src/engine/io/json-file';
import { parseShard, selectFrom, shardOf } from '../../src/engine/analysis/layer-selection';
import { modelVerdict } from '../../src/engine/analysis/verdict';
import { mergeAnalysisReports } from '../../src/engine/report/merge-reports';
import { runDifferences } from '../../src/engine/report/run-identity';
import { DEFAULT_THRESHOLDS, type AnalysisReport, type LayerAnalysis, type Verdict } from '../../src/engine/report/schema';
import { PROGRAM } from '../../src/engine/version';
import { checkpointFingerprint } from '../../src/engine/model/fingerprint';
import { resolveModel } from '../../src/engine/model/resolve-model';
import { generateSyntheticCheckpoint, type SynthSpec } from '../../src/engine/synth/generate';
import pkg from '../../package.json';

describe('report files', () => {
  it('writes exactly JSON.stringify(value, null, 2), piece by piece', () => {
    const values: unknown[] = [
      { a: 1, b: [1, 2, { c: 'x\ny', d: [] }], e: {}, f: undefined, g: null, h: [undefined, () => 1, NaN, -0, 1e-300], i: 'é"\\' },
      { layers: [{ layer: 0, m: [[1, 2], [3, 4]] }, { layer: 1, m: [] }], nested: { deeper: { deepest: [1, { x: [2] }] } } },
      [],
      [[[]]],
      'text',
      3.25,
      null,
    ];
    for (const v of values) assert.equal([...jsonPieces(v, '', 3)].join(''), JSON.stringify(v, null, 2));
  });

  it('replaces the file atomically and leaves no temp file behind', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'moe-json-'));
    try {
      const path = join(dir, 'r.json');
      await writeJsonAtomic(path, { layers: [1] });
      await writeJsonAtomic(path, { layers: [1, 2] });
      assert.deepEqual(JSON.parse(await readFile(path, 'utf8')), { layers: [1, 2] });
      assert.deepEqual(await readdir(dir), ['r.json']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('reads JSON piece by piece exactly as JSON.parse does, and rejects what it rejects', () => {
    const values: unknown[] = [
      { a: 'x, y] }{ "z": [', 'b\\"': [1, [2, { c: [] }], {}], d: 'é€😀', e: [null, true, false, -1.5e-300], ['__proto__']: { p: 1 } },
      [[], [[1, 2], { k: ',' }], '"'],
      {},
      [],
      42,
      'just a string',
    ];
    for (const v of values) {
      for (const text of [JSON.stringify(v), JSON.stringify(v, null, 2), ` \n${JSON.stringify(v, null, 1)}\n `]) {
        for (const depth of [0, 1, 2, 3, 5]) assert.deepEqual(parseJsonBytes(Buffer.from(text), depth), JSON.parse(text), `${text} at depth ${depth}`);
      }
    }
    const p = parseJsonBytes(Buffer.from('{"__proto__": {"p": 1}}'), 3) as object;
    assert.deepEqual(Object.keys(p), ['__proto__']);
    assert.equal(Object.getPrototypeOf(p), Object.prototype);
    for (const bad of ['{"a": [1, 2}', '{"a": "unterminated}', '[1, 2', '{"a" 1}', '{"a": 1,}', '[1,,2]', '{1: 2}']) {
      assert.throws(() => parseJsonBytes(Buffer.from(bad), 3), SyntaxError, bad);
    }
  });

  it('a report file above the one-parse size is written and read back intact', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'moe-json-'));
    try {
      const path = join(dir, 'big.json');
      let x = 1;
      const numbers = (n: number) => Array.from({ length: n }, () => (x = (x * 48271) % 2147483647) / 2147483647);
      const big = { schema: 'test', layers: [0, 1, 2].map((layer) => ({ layer, values: numbers(20_000), note: 'a, b ] }' })) };
      await writeJsonAtomic(path, big);
      const size = (await readFile(path)).length;
      // The real limit is 64 MiB; lowered here so the piecewise path is taken on a small file.
      assert.ok(size > 1 << 20, `${size} bytes`);
      assert.deepEqual(await readJsonFile(path, 1 << 20), big);
      assert.deepEqual(await readJsonFile(path), big);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('the program version is package.json\'s', () => {
    assert.equal(PROGRAM.version, pkg.version);
  });
});

describe('shards', () => {
  it('--shard i/N is 0-based and round robin; the shards partition the selection', () => {
    assert.deepEqual(parseShard('0/3'), { index: 0, count: 3 });
    assert.deepEqual(parseShard(' 2 / 3 '), { index: 2, count: 3 });
    assert.throws(() => parseShard('3/3'), /0-based, 0\.\.2/);
    assert.throws(() => parseShard('1/0'), /N >= 1/);
    assert.throws(() => parseShard('a/b'), /i\/N/);
    const layers = [1, 2, 3, 5, 6, 7, 9];
    const parts = [0, 1, 2].map((i) => shardOf(layers, { index: i, count: 3 }));
    assert.deepEqual(parts, [[1, 5, 9], [2, 6], [3, 7]]);
    assert.deepEqual(parts.flat().sort((a, b) => a - b), layers);
    assert.deepEqual(shardOf(layers, { index: 0, count: 10 }), [1]);
    assert.deepEqual(shardOf(layers, { index: 8, count: 10 }), []);
  });

  it('a selection names MoE layers only, and says which exist', () => {
    const moe = [1, 2, 3, 5].map((layer) => ({ layer }));
    assert.deepEqual(selectFrom(moe, { kind: 'list', layers: [2, 5] }), [{ layer: 2 }, { layer: 5 }]);
    assert.throws(() => selectFrom(moe, { kind: 'list', layers: [4] }), /layer 4 is not a MoE layer of the model; MoE layers: 1-3,5/);
  });
});

describe('checkpoint fingerprint', () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'moe-fp-'));
  });
  after(async () => rm(root, { recursive: true, force: true }));

  const spec = (seed: number): SynthSpec => ({ family: 'olmoe', dtype: 'BF16', numLayers: 1, numExperts: 4, hidden: 32, intermediate: 16, seed, structure: { kind: 'native' } });

  it('is stable, and tells apart two models whose headers are identical but whose weights differ', async () => {
    await generateSyntheticCheckpoint(join(root, 'a'), spec(1));
    await generateSyntheticCheckpoint(join(root, 'a2'), spec(1));
    await generateSyntheticCheckpoint(join(root, 'b'), spec(2));
    const open = (d: string) => resolveModel(join(root, d), {});
    const [a, a2, b] = await Promise.all([open('a'), open('a2'), open('b')]);
    try {
      // Same config and tensor table: only the weights differ.
      assert.deepEqual(a.config, b.config);
      assert.deepEqual([...a.tensors.values()], [...b.tensors.values()]);
      const sample = [...a.tensors.keys()].find((n) => n.includes('experts.0.gate_proj'))!;
      const fa = await checkpointFingerprint(a, sample);
      assert.match(fa, /^sha256:[0-9a-f]{64}$/);
      assert.equal(await checkpointFingerprint(a2, sample), fa);
      assert.notEqual(await checkpointFingerprint(b, sample), fa);
      // Without the sample the headers alone cannot tell them apart: the sample is what does.
      assert.equal(await checkpointFingerprint(b, null), await checkpointFingerprint(a, null));
    } finally {
      await Promise.all([a.close(), a2.close(), b.close()]);
    }
  });
});

/** A report as a run writes it, with layers whose verdicts are given (metrics are not needed by merge). */
function report(layers: { layer: number; type: Verdict; confidence: number }[], opts: { shard?: { index: number; count: number } | null; state?: 'complete' | 'interrupted'; planned?: number[]; edit?: (r: Record<string, any>) => void } = {}): AnalysisReport {
  const las: LayerAnalysis[] = layers.map((l) => ({ layer: l.layer, group: null, name: String(l.layer), verdict: { type: l.type, confidence: l.confidence, reasons: [] }, projections: {}, estimated_overlay_ratio: null }));
  const r: Record<string, any> = {
    schema: 'moe-inspector/analysis@1',
    status: { state: opts.state ?? 'complete', layers_planned: opts.planned ?? las.map((l) => l.layer), layers_done: las.map((l) => l.layer) },
    program: { ...PROGRAM },
    model: { source: 'm', revision: null, family: 'olmoe', num_experts: 8, moe_layers: [0, 1, 2, 3, 4, 5], shared_experts: false, fingerprint: 'sha256:aa' },
    options: { sample_experts: null, thresholds: DEFAULT_THRESHOLDS, full_spectra: false, layers: 'all', shard: opts.shard ?? null },
    verdict: { type: 'uncertain', confidence: 0 },
    runtime: { execution_provider: 'cpu', seconds: 1, checkpoint_bytes: 100, execution_providers: ['cpu'] },
    layers: las,
  };
  opts.edit?.(r);
  return r as AnalysisReport;
}

describe('merge', () => {
  const L = [
    { layer: 0, type: 'upcycled' as const, confidence: 0.9 },
    { layer: 1, type: 'native' as const, confidence: 0.7 },
    { layer: 2, type: 'upcycled' as const, confidence: 0.6 },
    { layer: 3, type: 'uncertain' as const, confidence: 0.8 },
    { layer: 4, type: 'upcycled' as const, confidence: 0.55 },
    { layer: 5, type: 'native' as const, confidence: 1 },
  ];
  const shard = (i: number) => report(shardOf(L, { index: i, count: 3 }), { shard: { index: i, count: 3 } });

  it('joins shards in model order with the single run\'s verdict, status and part list', () => {
    const m = mergeAnalysisReports([2, 0, 1].map((i) => ({ file: `part-${i}.json`, report: shard(i) })));
    assert.deepEqual(m.layers.map((l) => l.layer), [0, 1, 2, 3, 4, 5]);
    assert.deepEqual(m.verdict, modelVerdict(L.map((l) => ({ ...l, reasons: [] }))));
    assert.deepEqual(m.status, { state: 'complete', layers_planned: [0, 1, 2, 3, 4, 5], layers_done: [0, 1, 2, 3, 4, 5] });
    assert.deepEqual(m.options.layers, 'all');
    assert.equal(m.options.shard, null);
    assert.equal(m.runtime.seconds, 3);
    assert.deepEqual(m.merged_from!.map((p) => [p.file, p.layers]), [['part-2.json', [2, 5]], ['part-0.json', [0, 3]], ['part-1.json', [1, 4]]]);
  });

  it('joins --layers parts; the plan is the union of their selections', () => {
    const a = report(L.slice(0, 2), { edit: (r) => (r.options.layers = [0, 1]) });
    const b = report(L.slice(2), { edit: (r) => (r.options.layers = [2, 3, 4, 5]) });
    const m = mergeAnalysisReports([{ file: 'a', report: a }, { file: 'b', report: b }]);
    assert.equal(m.status!.state, 'complete');
    assert.deepEqual(m.options.layers, [0, 1, 2, 3, 4, 5]);
  });

  const parts = (edit: (r: Record<string, any>) => void) => [
    { file: 'part-0.json', report: shard(0) },
    { file: 'part-1.json', report: report(shardOf(L, { index: 1, count: 3 }), { shard: { index: 1, count: 3 }, edit }) },
    { file: 'part-2.json', report: shard(2) },
  ];

  const refusals: [string, (r: Record<string, any>) => void, RegExp][] = [
    ['another model', (r) => (r.model.fingerprint = 'sha256:bb'), /part-1\.json: not parts of one run: model fingerprint differs/],
    ['another revision', (r) => (r.model.revision = 'abc'), /model revision null \(part-0\.json\) vs "abc" \(part-1\.json\)/],
    ['another family', (r) => (r.model.family = 'mixtral'), /model family "olmoe" \(part-0\.json\) vs "mixtral"/],
    ['other options', (r) => (r.options.sample_experts = 4), /option sample_experts null \(part-0\.json\) vs 4 \(part-1\.json\)/],
    ['other thresholds', (r) => (r.options.thresholds = { ...DEFAULT_THRESHOLDS, native_max_cosine: 0.2 }), /option thresholds/],
    ['full spectra', (r) => (r.options.full_spectra = true), /option full_spectra false \(part-0\.json\) vs true/],
    ['another program version', (r) => (r.program.version = '0.0.9'), /program version "0\.1\.0" \(part-0\.json\) vs "0\.0\.9"/],
    ['a report without run identity', (r) => delete r.program, /part-1\.json: this report has no run identity/],
    ['not an analysis report', (r) => (r.schema = 'moe-inspector/overlay@1'), /part-1\.json: not an analysis report \(schema "moe-inspector\/overlay@1"/],
  ];
  for (const [what, edit, message] of refusals) {
    it(`refuses ${what}`, () => assert.throws(() => mergeAnalysisReports(parts(edit)), message));
  }

  it('refuses a layer in two parts', () => {
    assert.throws(
      () => mergeAnalysisReports([{ file: 'a.json', report: shard(0) }, { file: 'b.json', report: report([L[3]!], { shard: { index: 0, count: 2 } }) }]),
      /layer 3 is in two parts: a\.json and b\.json/,
    );
  });

  it('refuses an unfinished part and a missing shard unless --allow-incomplete; the result is then "partial"', () => {
    const unfinished = report([L[1]!], { shard: { index: 1, count: 3 }, state: 'interrupted', planned: [1, 4] });
    const withUnfinished = [{ file: 'part-0.json', report: shard(0) }, { file: 'part-1.json', report: unfinished }, { file: 'part-2.json', report: shard(2) }];
    assert.throws(() => mergeAnalysisReports(withUnfinished), /part-1\.json: unfinished part \(1 of 2 layers done, interrupted\): finish it with --resume/);
    const missing = [{ file: 'part-0.json', report: shard(0) }, { file: 'part-2.json', report: shard(2) }];
    assert.throws(() => mergeAnalysisReports(missing), /leave out planned layers 1, 4/);
    const m = mergeAnalysisReports(withUnfinished, { allowIncomplete: true });
    assert.equal(m.status!.state, 'partial');
    assert.deepEqual(m.status!.layers_done, [0, 1, 2, 3, 5]);
    assert.deepEqual(m.verdict, modelVerdict([0, 1, 2, 3, 5].map((i) => ({ ...L[i]!, reasons: [] }))));
  });
});

describe('run identity', () => {
  it('lists every difference at once; the source path and key order do not matter', () => {
    const a = report(L6(), {});
    const b = report(L6(), { edit: (r) => {
      r.model.source = '/elsewhere/m';
      r.options = { shard: null, layers: 'all', full_spectra: false, thresholds: DEFAULT_THRESHOLDS, sample_experts: null };
    } });
    assert.deepEqual(runDifferences(a, b, { labels: ['x', 'y'] }), []);
    const c = report(L6(), { edit: (r) => {
      r.program.version = '9';
      r.options.sample_experts = 2;
      r.options.layers = [0];
    } });
    const d = runDifferences(a, c, { labels: ['in the file', 'now'] });
    assert.equal(d.length, 3, d.join('\n'));
  });
});

function L6() {
  return [0, 1, 2, 3, 4, 5].map((layer) => ({ layer, type: 'native' as const, confidence: 1 }));
}
