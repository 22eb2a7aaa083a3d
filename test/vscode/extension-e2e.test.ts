/**
 * End to end in a real VS Code: package the VSIX, install it into code-server, open a workspace of
 * generated checkpoints in Debian's Chromium and use the extension as a user would: explorer
 * right-click -> "Analyze MoE", read the verdict and the rendered charts in the webview, drill into
 * a layer, get a clear error for a corrupt file, cancel a long run, and let the extension host
 * report on its commands and worker process.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Frame, Page } from 'playwright-core';
import { generateSyntheticCheckpoint } from '../../src/engine/synth/generate';
import type { AnalysisReport } from '../../src/engine/report/schema';
import { FakeHub } from '../hub/fake-hub';
import { COMMIT_A, writeSmallModel } from '../hub/helpers';
import {
  REPO, clickContextMenuItem, ensureCodeServer, findPanelFrame, installExtension, launchChromium, rightClickInExplorer, runFromPalette, startCodeServer, writeUserSettings, type Workbench,
} from './code-server';

const ARTIFACTS = join(REPO, 'test-artifacts');
const SMALL = { layers: 2, experts: 8, hidden: 128, intermediate: 64, ranks: { gate: 2, up: 4, down: 3 } };
/** A real-size structure (OLMoE/Qwen3-like layer and expert counts) with tiny matrices, so it runs in seconds. */
const WIDE = { layers: 48, experts: 128, hidden: 32, intermediate: 16 };
/** Encoder and decoder stacks whose MoE layers share their indices (encoder.1 and decoder.1, encoder.3 and decoder.3). */
const GROUPED = { layers: 4, experts: 6, hidden: 64, intermediate: 96, names: ['encoder.1', 'encoder.3', 'decoder.1', 'decoder.3'] };

describe('VS Code extension in code-server (end to end)', function () {
  this.timeout(180_000);
  let tmp: string;
  let workspace: string;
  let hookFile: string;
  let saveDir: string;
  let theme: 'dark' | 'light' = 'dark';
  const timings: string[] = [];
  let server: Workbench | null = null;
  let browser: Browser | null = null;
  let page: Page;
  let hub: FakeHub;
  const serverLog: string[] = [];

  before(async function () {
    this.timeout(20 * 60_000); // the first run on a fresh machine installs code-server
    const bin = ensureCodeServer();
    tmp = mkdtempSync(join(tmpdir(), 'moe-e2e-'));
    workspace = join(tmp, 'workspace');
    hookFile = join(tmp, 'self-check.json');
    saveDir = join(tmp, 'saved');
    mkdirSync(saveDir, { recursive: true });
    mkdirSync(ARTIFACTS, { recursive: true });

    // The shipped VSIX, exactly as `npm run package` makes it (bundles built by `npm test`'s build step).
    if (!existsSync(join(REPO, 'dist', 'worker.js'))) execFileSync('node', ['esbuild.mjs'], { cwd: REPO, stdio: 'inherit' });
    const vsix = join(tmp, 'moe-inspector.vsix');
    execFileSync(join(REPO, 'node_modules', '.bin', 'vsce'), ['package', '--no-yarn', '--skip-license', '--allow-missing-repository', '--out', vsix], { cwd: REPO, stdio: 'pipe' });

    // Checkpoints: a small upcycled model (gate delta rank 2 of 64), a bigger native one for cancel, a corrupt file.
    await generateSyntheticCheckpoint(join(workspace, 'small'), {
      family: 'olmoe', dtype: 'BF16', numLayers: SMALL.layers, numExperts: SMALL.experts, hidden: SMALL.hidden, intermediate: SMALL.intermediate,
      structure: { kind: 'upcycled', ranks: SMALL.ranks }, seed: 7,
    });
    await generateSyntheticCheckpoint(join(workspace, 'big'), {
      family: 'olmoe', dtype: 'BF16', numLayers: 12, numExperts: 32, hidden: 256, intermediate: 256, structure: { kind: 'native' }, seed: 8, expertsOnly: true,
    });
    await generateSyntheticCheckpoint(join(workspace, 'native'), {
      family: 'olmoe', dtype: 'BF16', numLayers: SMALL.layers, numExperts: SMALL.experts, hidden: SMALL.hidden, intermediate: SMALL.intermediate,
      structure: { kind: 'native' }, seed: 9,
    });
    await generateSyntheticCheckpoint(join(workspace, 'wide'), {
      family: 'olmoe', dtype: 'BF16', numLayers: WIDE.layers, numExperts: WIDE.experts, hidden: WIDE.hidden, intermediate: WIDE.intermediate,
      structure: { kind: 'upcycled', ranks: { gate: 2, up: 3, down: 2 } }, seed: 10, expertsOnly: true,
    });
    await generateSyntheticCheckpoint(join(workspace, 'grouped'), {
      family: 'switch_transformers', dtype: 'BF16', numLayers: GROUPED.layers, numExperts: GROUPED.experts, hidden: GROUPED.hidden, intermediate: GROUPED.intermediate,
      structure: { kind: 'upcycled', ranks: { gate: 2, up: 3, down: 2 } }, seed: 11,
    });
    writeDenseModel(join(workspace, 'dense'));
    // a safetensors header length pointing far past the end of the file
    const broken = Buffer.alloc(64);
    broken.writeBigUInt64LE(10_000_000n, 0);
    writeFileSync(join(workspace, 'broken.safetensors'), broken);

    const userDataDir = join(tmp, 'user-data');
    const extensionsDir = join(tmp, 'extensions');
    const settings = {
      'workbench.startupEditor': 'none',
      'workbench.tips.enabled': false,
      'security.workspace.trust.enabled': false,
      'telemetry.telemetryLevel': 'off',
      'extensions.autoCheckUpdates': false,
      'extensions.ignoreRecommendations': true,
      'moeInspector.executionProvider': 'cpu',
      'moeInspector.allowFullDownload': true,
      'workbench.colorTheme': 'Default Dark Modern',
    };
    writeUserSettings(userDataDir, settings);
    installExtension(bin, vsix, extensionsDir, userDataDir);
    // A loopback hub that holds no repository: a model id typed in VS Code gets the hub's 404.
    hub = await new FakeHub().start();
    // ...and one small upcycled model behind a server that ignores Range: readable only with the
    // moeInspector.allowFullDownload setting (on below).
    await writeSmallModel(join(tmp, 'hub-model'));
    hub.repos.set('acme/tiny-moe', { dir: join(tmp, 'hub-model'), refs: { main: COMMIT_A } });
    hub.faults.ignoreRange = true;
    const hubEnv = { HF_ENDPOINT: hub.url, HF_HOME: join(tmp, 'hf'), XDG_CACHE_HOME: join(tmp, 'xdg'), HF_HUB_OFFLINE: '', HF_TOKEN: '' };
    server = await startCodeServer({ bin, workspace, extensionsDir, userDataDir, env: { MOE_INSPECTOR_TEST_HOOKS: hookFile, MOE_INSPECTOR_TEST_SAVE_DIR: saveDir, ...hubEnv }, log: (s) => serverLog.push(s) });
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    await page.goto(`${server.url}/?folder=${encodeURIComponent(workspace)}`);
    await page.locator('.explorer-folders-view').waitFor({ state: 'visible', timeout: 90_000 });
    // The explorer can show before the extension's contributions are registered (its menu items
    // missing on a first right-click): wait for its activity bar entry.
    await page.locator('.activitybar .action-item [aria-label^="MoE Inspector"]').first().waitFor({ state: 'attached', timeout: 90_000 });
  });

  after(async function () {
    this.timeout(30_000);
    if (page && this.currentTest?.state === 'failed') await page.screenshot({ path: join(ARTIFACTS, 'failure.png') }).catch(() => undefined);
    await browser?.close();
    await server?.stop();
    await hub?.stop();
    if (serverLog.length > 0) writeFileSync(join(ARTIFACTS, 'code-server.log'), serverLog.join(''));
    if (timings.length > 0) writeFileSync(join(ARTIFACTS, 'measurements.txt'), timings.join('\n') + '\n');
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed') await page.screenshot({ path: join(ARTIFACTS, `failed-${this.currentTest.title.replace(/\W+/g, '_')}.png`) }).catch(() => undefined);
  });

  async function waitNoFrameWith(selector: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      let found = false;
      for (const f of page.frames()) found ||= await f.evaluate((sel) => !!document.querySelector(sel), selector).catch(() => false);
      if (!found) return;
      if (Date.now() > deadline) throw new Error(`a frame still shows ${selector} after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /** The panel frame whose `selector` element says `text` (another panel's stale frame may still be there). */
  async function frameSaying(selector: string, text: RegExp, timeoutMs: number): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (const f of page.frames()) {
        const said = await f.evaluate((sel) => document.querySelector(sel)?.textContent ?? null, selector).catch(() => null);
        if (said !== null && text.test(said)) return f;
      }
      if (Date.now() > deadline) throw new Error(`no webview frame whose ${selector} matches ${text} after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /** Palette -> "Analyze Hugging Face model..." -> type the id -> Enter. */
  async function analyzeHubId(id: string): Promise<void> {
    await runFromPalette(page, 'MoE Inspector: Analyze Hugging Face model...');
    const input = page.locator('.quick-input-widget input');
    await input.waitFor({ state: 'visible', timeout: 10_000 });
    await input.fill(id);
    await input.press('Enter');
  }

  async function expectToast(text: RegExp): Promise<void> {
    const toast = page.locator('.notifications-toasts .notification-toast', { hasText: text }).first();
    await toast.waitFor({ state: 'visible', timeout: 20_000 });
  }

  /** The chart's data marks, once it has drawn (a section may be redrawing while layers stream in). */
  async function markCount(frame: Frame, chartId: string, markClass: string): Promise<number> {
    const sel = `[data-chart-id="${chartId}"] .vega svg g.${markClass}.role-mark > path`;
    await frame.waitForFunction((x) => document.querySelectorAll(x).length > 0, sel, { timeout: 20_000 }).catch(() => undefined);
    return frame.locator(sel).count();
  }

  /** The panel frame showing model `name`'s report (a frame whose h2 names it), with its overview drawn. */
  async function panelOf(name: RegExp, timeoutMs = 60_000): Promise<Frame> {
    return frameSaying('#summary-0 h2', name, timeoutMs);
  }

  async function shot(name: string): Promise<void> {
    await page.screenshot({ path: join(ARTIFACTS, `${name}-${theme}.png`) });
  }

  async function setTheme(t: 'dark' | 'light'): Promise<void> {
    theme = t;
    await runFromPalette(page, 'Preferences: Toggle between Light/Dark Themes');
    await page.waitForFunction((dark) => document.querySelector('.monaco-workbench')?.classList.contains(dark ? 'vs-dark' : 'vs') ?? false, t === 'dark', { timeout: 20_000 });
  }

  async function hostInfo(): Promise<{ pid: number; rss: number; workerPid: number | null }> {
    const file = `${hookFile}.host.json`;
    rmSync(file, { force: true });
    await runFromPalette(page, 'MoE Inspector: Test: extension host info');
    // The extension may still be writing the file when it appears: retry until it parses.
    const deadline = Date.now() + 20_000;
    for (;;) {
      try {
        return JSON.parse(readFileSync(file, 'utf8'));
      } catch (e) {
        if (Date.now() > deadline) throw e;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  /** Where a drill-down's time went: the layer's data on its way from the host, and each chart's drawing. */
  async function breakdown(frame: Frame, clickedAt: number): Promise<string> {
    return frame.evaluate((t0) => {
      const d = document.getElementById('drilldown')!.dataset;
      const charts = [...document.querySelectorAll<HTMLElement>('#drilldown [data-chart-id]')].map((e) => `${e.dataset['chartId']!.split('-')[0]} ${e.dataset['ms']} ms`);
      return `the click reached the page's handler ${Number(d['selectedAt']) - t0} ms after the test clicked (${d['inputLagMs']} ms of it waiting for the page's thread), drawn ${Number(d['drawnAt']) - t0} ms after; data from the host ${d['loadMs']} ms, drawing ${charts.join(', ')} (section wall ${d['wallMs']} ms, ${d['overviewRedraws']} overview redraws meanwhile)`;
    }, clickedAt);
  }

  function rssOf(pid: number): number {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : NaN;
  }

  async function drawn(frame: Frame, section: string, timeoutMs = 30_000): Promise<void> {
    await frame.waitForFunction((sel) => { const e = document.querySelector<HTMLElement>(sel); return !!e && !!e.dataset['drawn']; }, section, { timeout: timeoutMs });
  }

  it('analyses every MoE layer from the explorer: verdict in words, overview heatmaps, layer table', async () => {
    await rightClickInExplorer(page, ['small', 'model.safetensors']);
    await clickContextMenuItem(page, 'Analyze MoE');
    const frame = await findPanelFrame(page, 60_000, '#verdict');
    assert.match(await frame.locator('#verdict').innerText(), /upcycled/);
    assert.doesNotMatch(await frame.locator('#verdict').innerText(), /Verdict: \[?upcycled\]? upcycled/);
    // the evidence in words, with the numbers against the thresholds
    assert.match(await frame.locator('#evidence').innerText(), /All 2 analysed layers look copied from one dense FFN: .*gate rank ratio \d+\.\d% on average.*upcycled needs rank ratio < 5%/);
    await drawn(frame, '#overview-0');
    await drawn(frame, '#experts-overview-0');
    // layers x projections: one cell per (layer, projection); layers x experts: one per (layer, expert)
    assert.equal(await markCount(frame, 'rank-ratio', 'mark-rect.cells_marks'), SMALL.layers * 3);
    assert.equal(await markCount(frame, 'cosine', 'mark-rect.cells_marks'), SMALL.layers * 3);
    assert.equal(await markCount(frame, 'experts', 'mark-rect'), SMALL.layers * SMALL.experts);
    assert.equal(await frame.locator('#layer-table tbody tr').count(), SMALL.layers);
    // sortable: by gate rank, descending
    await frame.locator('#layer-table th[data-key="rank-gate"]').click();
    await frame.locator('#layer-table th[data-key="rank-gate"]').click();
    const ranks = await frame.locator('#layer-table tbody tr td:nth-child(4)').allInnerTexts();
    assert.deepEqual(ranks, [...ranks].sort((a, b) => parseFloat(b) - parseFloat(a)));
    await shot('panel');
  });

  it('drills into a layer: scrolls to it, per-expert table, spectra, cosine heatmap, expert selection', async () => {
    const frame = await panelOf(/small/);
    const t0 = Date.now();
    await frame.locator('#layer-table tbody tr[data-key="1"]').click();
    await drawn(frame, '#drilldown');
    timings.push(`drill-down of a 2x8 layer drawn ${Date.now() - t0} ms after the click (idle)`);
    // brought into view: the drill-down's title is inside the panel's viewport
    const inView = await frame.evaluate(() => { const r = document.getElementById('drilldown-title')!.getBoundingClientRect(); return r.top >= 0 && r.top < window.innerHeight; });
    assert.ok(inView, 'the drill-down is scrolled into view');
    assert.equal(await frame.evaluate(() => document.activeElement?.id), 'drilldown-title');
    assert.equal(await markCount(frame, 'spectrum-1-gate', 'mark-line'), SMALL.experts);
    assert.equal(await markCount(frame, 'heatmap-1-gate', 'mark-rect'), SMALL.experts * SMALL.experts);
    assert.equal(await markCount(frame, 'norms-1-gate', 'mark-rect'), SMALL.experts * 2);
    assert.equal(await frame.locator('#expert-table tbody tr').count(), SMALL.experts);
    // per-expert r95 of the constructed gate delta: rank 2 for every expert
    assert.deepEqual(await frame.locator('#expert-table tbody tr td:nth-child(3)').allInnerTexts(), Array(SMALL.experts).fill(String(SMALL.ranks.gate)));
    // the spectrum's x axis ends at the max rank (min(64, 128) = 64), not at a rounded 100 or 1,000
    const xLabels = await frame.locator('[data-chart-id="spectrum-1-gate"] .vega svg g.role-axis-label text').allInnerTexts();
    assert.ok(!xLabels.some((l) => /1,?000|^100$/.test(l)), `x labels: ${xLabels.join(' ')}`);
    // rank marker labels sit on three rows: they never overlap
    const boxes = await frame.locator('[data-chart-id="spectrum-1-gate"] .vega svg g.mark-text text').evaluateAll((els) => els.map((e) => { const r = (e as SVGGraphicsElement).getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; }));
    for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
      const [a, b] = [boxes[i]!, boxes[j]!];
      assert.ok(a[2]! <= b[0]! || b[2]! <= a[0]! || a[3]! <= b[1]! || b[3]! <= a[1]!, 'rank labels overlap');
    }
    // legend sorted numerically
    const legend = await frame.locator('[data-chart-id="spectrum-1-gate"] .vega svg g.role-legend-label text').allInnerTexts();
    assert.deepEqual(legend.map(Number), [...legend.map(Number)].sort((a, b) => a - b));
    // select expert 5: highlighted in the table and outlined in the heatmap
    await frame.locator('#expert-table tbody tr[data-key="5"]').click();
    await drawn(frame, '#drilldown');
    assert.equal(await frame.locator('#expert-table tbody tr.selected').getAttribute('data-key'), '5');
    assert.match(await frame.locator('#drilldown h4').innerText(), /expert 5 selected/);
    // the heatmap: its cells plus the two outline rects of the selection
    assert.equal(await frame.locator('[data-chart-id="heatmap-1-gate"] .vega svg g.mark-rect.role-mark').count(), 3);
    // grouped by clusters
    await frame.locator('#heatmap-order').selectOption('cluster');
    await drawn(frame, '#drilldown');
    assert.match(await frame.locator('[data-chart-id="heatmap-1-gate"] .chart-title').innerText(), /grouped by clusters/);
    await frame.locator('#proj-down').click();
    await drawn(frame, '#drilldown');
    assert.equal(await markCount(frame, 'spectrum-1-down', 'mark-line'), SMALL.experts);
    await frame.locator('#drilldown h4').evaluate((e) => e.scrollIntoView({ block: 'start' }));
    await shot('drilldown');
  });

  it('keeps its state when hidden (the webview is destroyed) and shown again', async () => {
    const before = await findPanelFrame(page, 10_000, '#drilldown-title');
    const verdict = await before.locator('#verdict').innerText();
    const drilled = await before.locator('#drilldown-title').innerText();
    await runFromPalette(page, 'File: New Untitled Text File');
    await waitNoFrameWith('#drilldown-title', 15_000);
    await page.locator('.tabs-container .tab', { hasText: 'MoE: small/model.safetensors' }).first().click();
    const after = await findPanelFrame(page, 20_000, '#drilldown-title');
    await drawn(after, '#drilldown');
    assert.equal(await after.locator('#verdict').innerText(), verdict);
    assert.equal(await after.locator('#drilldown-title').innerText(), drilled);
  });

  it('exports the layer and expert tables as CSV and the full report as JSON', async () => {
    const frame = await panelOf(/small/);
    await frame.locator('#export-json').click();
    await frame.locator('#export-csv-layers').click();
    await frame.locator('#export-csv-experts').click();
    const files = ['analysis.json', 'layers.csv', 'experts.csv'].map((f) => join(saveDir, `small_model.safetensors-${f}`));
    const deadline = Date.now() + 20_000;
    while (!files.every(existsSync) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    const report = JSON.parse(readFileSync(files[0]!, 'utf8'));
    assert.equal(report.schema, 'moe-inspector/analysis@1');
    assert.equal(report.layers[0].projections.gate.cosine.matrix.length, SMALL.experts, 'the JSON export keeps the E x E matrices');
    const layersCsv = readFileSync(files[1]!, 'utf8').trim().split('\n');
    assert.equal(layersCsv.length, 1 + SMALL.layers);
    const head = layersCsv[0]!.split(',');
    const row0 = layersCsv[1]!.split(',');
    assert.equal(Number(row0[head.indexOf('gate rank')]), report.layers[0].projections.gate.rank_ratio);
    const expertsCsv = readFileSync(files[2]!, 'utf8').trim().split('\n');
    assert.equal(expertsCsv.length, 1 + SMALL.layers * 3 * SMALL.experts);
    const eh = expertsCsv[0]!.split(',');
    const e1 = expertsCsv[1]!.split(',');
    assert.equal(Number(e1[eh.indexOf('r95')]), report.layers[0].projections.gate.effective_rank['0.95'][0]);
    assert.equal(Number(e1[eh.indexOf('||W − mean||')]), report.layers[0].projections.gate.delta_norms[0]);
    // the standalone HTML: every layer's drill-down as static SVG (fetched one layer at a time)
    await frame.locator('#export-html').click();
    const html = join(saveDir, 'small_model.safetensors-report.html');
    const until = Date.now() + 30_000;
    while (!existsSync(html) && Date.now() < until) await new Promise((r) => setTimeout(r, 200));
    const text = readFileSync(html, 'utf8');
    for (const l of [0, 1]) for (const p of ['gate', 'up', 'down']) assert.ok(text.includes(`id="spectrum-${l}-${p}"`) && text.includes(`id="heatmap-${l}-${p}"`), `layer ${l} ${p} in the HTML`);
    assert.ok(!/<script(?! type="application\/json")/.test(text), 'no executable script');
  });

  it('runs overlay estimate, compute with a save folder, and verify of that folder from the panel', async () => {
    const frame = await panelOf(/small/);
    await frame.locator('#overlay-mode').selectOption('estimate');
    await frame.locator('#overlay-run').click();
    await frame.locator('#overlay-line').waitFor({ timeout: 60_000 });
    await drawn(frame, '#overlay');
    assert.match(await frame.locator('#overlay-line').innerText(), /estimate.*whole model/);
    assert.equal(await markCount(frame, 'overlay-storage', 'mark-rect'), (SMALL.layers + 1) * 2);
    assert.match(await frame.locator('#verdict').innerText(), /upcycled/, 'the analysis stays in the panel');
    await shot('overlay-estimate');
    const out = join(tmp, 'overlay-out');
    await frame.locator('#overlay-mode').selectOption('compute');
    await frame.locator('#overlay-ranks').fill('2,4,3');
    await frame.locator('#overlay-saveDir').fill(out);
    await frame.locator('#overlay-run').click();
    await frameSaying('#overlay-line', /compute/, 60_000);
    assert.match(await frame.locator('#overlay-line').innerText(), /expert weights of the listed layers only.*saved to/);
    assert.ok(existsSync(join(out, 'overlay-manifest.json')));
    assert.deepEqual(await frame.locator('#overlay-table tbody tr:first-child td:nth-child(2), #overlay-table tbody tr:first-child td:nth-child(3), #overlay-table tbody tr:first-child td:nth-child(4)').allInnerTexts(), ['2', '4', '3']);
    await frame.locator('#overlay-mode').selectOption('verify');
    await frame.locator('#overlay-overlayDir').fill(out);
    await frame.locator('#overlay-run').click();
    await frameSaying('#overlay-line', /verify/, 90_000);
    await drawn(frame, '#overlay');
    // constructed ranks kept exactly: the output error is tiny, the verify passes
    assert.match(await frame.locator('#overlay-line').innerText(), /verify passed: worst output error .* against the criterion ≤ 0\.01/);
    assert.match(await frame.locator('#overlay-table tbody tr:first-child').innerText(), /✓/);
    await shot('overlay-verify');
  });

  it('compares two models: both drill down, shared colour scales, a difference view', async () => {
    await rightClickInExplorer(page, ['native', 'model.safetensors']);
    await clickContextMenuItem(page, 'Analyze MoE');
    await frameSaying('#verdict', /native/, 60_000);
    await runFromPalette(page, 'MoE Inspector: Compare two models...');
    for (const name of ['small', 'native']) {
      const input = page.locator('.quick-input-widget input');
      await input.waitFor({ state: 'visible', timeout: 10_000 });
      await input.fill(`${name}/model.safetensors`);
      await page.locator('.quick-input-list .monaco-list-row', { hasText: `${name}/model.safetensors` }).first().click();
    }
    const frame = await findPanelFrame(page, 60_000, '#models.compare #verdict-1');
    await drawn(frame, '#difference');
    assert.match(await frame.locator('#verdict').innerText(), /upcycled/);
    assert.match(await frame.locator('#verdict-1').innerText(), /native/);
    for (const prefix of ['a-', 'b-']) assert.equal(await markCount(frame, `${prefix}rank-ratio`, 'mark-rect.cells_marks'), SMALL.layers * 3);
    assert.equal(await markCount(frame, 'difference', 'mark-rect'), SMALL.layers * 3 * 2);
    // the second model's layer opens the second model's drill-down
    await frame.locator('#layer-table-1 tbody tr[data-key="0"]').click();
    await drawn(frame, '#drilldown');
    assert.match(await frame.locator('#drilldown-title').innerText(), /^B: Layer 0 — native/);
    assert.equal(await markCount(frame, 'b-spectrum-0-gate', 'mark-line'), SMALL.experts);
    await frame.locator('#other-model').click();
    await drawn(frame, '#drilldown');
    assert.match(await frame.locator('#drilldown-title').innerText(), /^A: Layer 0 — upcycled/);
    await shot('compare');
  });

  it('a model with encoder and decoder stacks: every group\'s layers in the table and heatmaps, a decoder layer drills down to itself', async () => {
    // the reference: the CLI's report of the same checkpoint (decoder.1's own per-expert numbers)
    const cliJs = join(REPO, 'dist', 'cli.js');
    const ref = JSON.parse(execFileSync(process.execPath, [cliJs, 'analyze', '-m', join(workspace, 'grouped'), '--layers', 'all', '--json'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, ORT_DISABLE_TELEMETRY: '1' } })) as AnalysisReport;
    assert.deepEqual(ref.layers.map((l) => l.name), GROUPED.names);
    await rightClickInExplorer(page, ['grouped', 'model.safetensors']);
    await clickContextMenuItem(page, 'Analyze MoE');
    const frame = await panelOf(/grouped/);
    await frame.locator('#verdict').waitFor({ timeout: 60_000 }); // the run ended
    assert.match(await frame.locator('#verdict').innerText(), /upcycled/);
    // no gate in this family: the evidence and the experts heatmap use up, as the verdict does
    assert.match(await frame.locator('#evidence').innerText(), /up rank ratio \d+\.\d% on average/);
    await drawn(frame, '#overview-0');
    await drawn(frame, '#experts-overview-0');
    // one table row and one heatmap cell per layer of each group: encoder.1 and decoder.1 do not collapse into "1"
    const keys = await frame.locator('#layer-table tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-key')));
    assert.deepEqual([...keys].sort(), [...GROUPED.names].sort());
    assert.equal(await markCount(frame, 'rank-ratio', 'mark-rect.cells_marks'), GROUPED.names.length * 2, 'up and down per layer (no gate)');
    assert.equal(await markCount(frame, 'experts', 'mark-rect'), GROUPED.names.length * GROUPED.experts);
    // the heatmaps label their rows and columns by name
    const labels = await frame.locator('[data-chart-id="experts"] svg text').allTextContents();
    for (const n of GROUPED.names) assert.ok(labels.includes(n), `experts heatmap labels ${n}: ${labels.join(' ')}`);
    await frame.locator('#layer-table tbody tr[data-key="decoder.1"]').click();
    await drawn(frame, '#drilldown');
    assert.match(await frame.locator('#drilldown-title').innerText(), /^Layer decoder\.1 — /);
    assert.equal(await markCount(frame, 'spectrum-decoder.1-up', 'mark-line'), GROUPED.experts);
    // the per-expert table holds decoder.1's numbers, not encoder.1's
    const deltaCol = async () => frame.locator('#expert-table tbody tr td:nth-child(6)').allInnerTexts();
    const fmt = (xs: readonly number[]) => xs.map((x) => x.toPrecision(4));
    const layerRef = (name: string) => ref.layers.find((l) => l.name === name)!.projections.up!.delta_norms;
    assert.notDeepEqual(fmt(layerRef('decoder.1')), fmt(layerRef('encoder.1')), 'the two layers differ, so a mix-up would show');
    assert.deepEqual(await deltaCol(), fmt(layerRef('decoder.1')));
    await frame.locator('#drilldown-title').evaluate((e) => e.scrollIntoView({ block: 'start' }));
    await shot('grouped-drilldown');
    await frame.locator('#layer-table tbody tr[data-key="encoder.1"]').click();
    await frame.waitForFunction(() => document.getElementById('drilldown-title')?.textContent?.startsWith('Layer encoder.1') ?? false, undefined, { timeout: 30_000 });
    await drawn(frame, '#drilldown');
    assert.deepEqual(await deltaCol(), fmt(layerRef('encoder.1')));
  });

  it('shows errors in words for a dense model, an unknown hub id and a corrupt file', async () => {
    await rightClickInExplorer(page, ['dense', 'model.safetensors']);
    await clickContextMenuItem(page, 'Analyze MoE');
    let frame = await frameSaying('#error', /dense/, 60_000);
    const text = await frame.locator('#error').innerText();
    assert.match(text, /^Not a Mixture-of-Experts model\. .*dense\/model\.safetensors: not a Mixture-of-Experts model: model_type llama/);
    assert.doesNotMatch(text, /\(not-moe\)/);
    await expectToast(/not a Mixture-of-Experts model/);
    await shot('error');
    await analyzeHubId('acme/no-such-model');
    frame = await frameSaying('#error', /no-such-model/, 60_000);
    assert.match(await frame.locator('#error').innerText(), /^Not found\. .*repository acme\/no-such-model not found/);
    assert.ok(hub.log.some((r) => r.path.includes('acme/no-such-model')), 'the request went to the loopback hub');
    await rightClickInExplorer(page, ['broken.safetensors']);
    await clickContextMenuItem(page, 'Analyze MoE');
    frame = await frameSaying('#error', /broken\.safetensors/, 60_000);
    assert.match(await frame.locator('#error').innerText(), /^The checkpoint file is damaged or not a safetensors file\. .*broken\.safetensors/);
  });

  it('analyses a hub model id (the full-download setting lets it past a server that ignores Range)', async () => {
    await analyzeHubId('acme/tiny-moe');
    const frame = await frameSaying('#verdict', /upcycled/, 60_000);
    assert.match(await frame.locator('main').innerText(), /acme\/tiny-moe/);
    assert.ok(hub.log.some((r) => r.path.includes('acme/tiny-moe') && r.path.endsWith('.safetensors') && r.method === 'GET' && r.status === 200 && r.range !== null), 'a ranged shard request was answered whole, and accepted');
  });

  it(`48 layers x 128 experts: the extension host stays small and the panel answers while it runs`, async function () {
    this.timeout(300_000);
    const idle = await hostInfo();
    const idleRss = rssOf(idle.pid);
    let peak = idleRss;
    const sampler = setInterval(() => { try { peak = Math.max(peak, rssOf(idle.pid)); } catch { /* gone */ } }, 100);
    try {
      await rightClickInExplorer(page, ['wide']);
      await clickContextMenuItem(page, 'Analyze MoE');
      const frame = await panelOf(/wide/);
      await frame.locator('#layer-table tbody tr').nth(1).waitFor({ timeout: 120_000 });
      // while it runs: a click on a layer draws its drill-down (128 spectra, 128 x 128 cosines)
      const stillRunning = (await frame.locator('#progress-text').count()) > 0;
      const t0 = Date.now();
      await frame.locator('#layer-table tbody tr[data-key="1"]').click();
      await drawn(frame, '#drilldown', 60_000);
      const clickMs = Date.now() - t0;
      const t1 = Date.now();
      await frame.locator('#expert-table th[data-key="r95"]').click();
      await frame.locator('#expert-table th[data-key="r95"].sorted').waitFor({ timeout: 20_000 });
      const sortMs = Date.now() - t1;
      timings.push(`48x128 run: layer click -> drill-down drawn ${clickMs} ms (clicked ${stillRunning ? 'while the analysis ran' : 'after it ended'}; ${await breakdown(frame, t0)}); expert table sort ${sortMs} ms`);
      await frame.locator('#verdict').waitFor({ timeout: 240_000 });
      assert.equal(await frame.locator('#layer-table tbody tr').count(), WIDE.layers);
      await runFromPalette(page, 'Notifications: Clear All Notifications');
      await frame.evaluate(() => window.scrollTo(0, 0));
      await drawn(frame, '#experts-overview-0');
      await shot('wide-overview');
      // the same click once the run has ended: the reference for the time above
      const t2 = Date.now();
      await frame.locator('#layer-table tbody tr[data-key="2"]').click();
      await frame.waitForFunction(() => document.getElementById('drilldown-title')?.textContent?.startsWith('Layer 2') ?? false, undefined, { timeout: 30_000 });
      await drawn(frame, '#drilldown', 60_000);
      timings.push(`48x128: layer click -> drill-down drawn ${Date.now() - t2} ms after the run ended (reference; ${await breakdown(frame, t2)}); load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')} on ${cpus().length} cores`);
      assert.equal(await markCount(frame, 'experts', 'mark-rect').catch(() => 0) >= 0, true);
      assert.equal(await frame.locator('[data-chart-id="experts"]').getAttribute('data-marks'), String(WIDE.layers * WIDE.experts));
      await shot('wide');
    } finally {
      clearInterval(sampler);
    }
    const growth = peak - idleRss;
    timings.push(`48x128 run: extension host RSS idle ${(idleRss / 2 ** 20).toFixed(0)} MB, peak ${(peak / 2 ** 20).toFixed(0)} MB (+${(growth / 2 ** 20).toFixed(0)} MB)`);
    writeFileSync(join(ARTIFACTS, 'measurements.txt'), timings.join('\n') + '\n');
    assert.ok(growth < 300 * 2 ** 20, `extension host grew by ${(growth / 2 ** 20).toFixed(0)} MB`);
  });

  it('cancels a long run from the panel: the worker stops, finished layers stay', async () => {
    await rightClickInExplorer(page, ['big']);
    await clickContextMenuItem(page, 'Analyze MoE');
    const frame = await panelOf(/big/);
    await frame.locator('#layer-table tbody tr').first().waitFor({ timeout: 90_000 });
    const { workerPid } = await hostInfo();
    await frame.locator('#cancel-run').click();
    await frame.locator('#cancelled').waitFor({ timeout: 30_000 });
    const layersShown = await frame.locator('#layer-table tbody tr').count();
    assert.ok(layersShown >= 1 && layersShown < 12, `layers shown after cancel: ${layersShown}`);
    assert.match(await frame.locator('#cancelled').innerText(), new RegExp(`The ${layersShown} layers? finished before the cancel`));
    // the worker stopped within its grace period (killed if it did not stop by itself)
    await new Promise((r) => setTimeout(r, 1500));
    assert.ok(workerPid !== null);
    let stopped = false;
    try { process.kill(workerPid!, 0); } catch { stopped = true; }
    const busy = stopped ? 0 : Number(readFileSync(`/proc/${workerPid}/stat`, 'utf8').split(' ')[13]);
    await new Promise((r) => setTimeout(r, 1000));
    const busyAfter = stopped ? 0 : Number(readFileSync(`/proc/${workerPid}/stat`, 'utf8').split(' ')[13]);
    assert.ok(stopped || busyAfter - busy < 20, 'the worker is gone or idle after the cancel');
    await shot('cancelled');
  });

  it('a crashed worker (killed, as by the kernel when out of memory) shows an error, not a spinner', async () => {
    await rightClickInExplorer(page, ['big']);
    await clickContextMenuItem(page, 'Analyze MoE');
    const frame = await panelOf(/big/);
    await frame.locator('#progress-text').waitFor({ timeout: 60_000 });
    await frame.locator('#layer-table tbody tr').first().waitFor({ timeout: 90_000 });
    const { workerPid } = await hostInfo();
    process.kill(workerPid!, 'SIGKILL');
    await frame.locator('#error').waitFor({ timeout: 30_000 });
    assert.match(await frame.locator('#error').innerText(), /The compute worker stopped unexpectedly\..*signal SIGKILL.*ran out of memory/s);
    assert.equal(await frame.locator('#progress-text').count(), 0);
    assert.ok((await frame.locator('#layer-table tbody tr').count()) >= 1, 'finished layers stay');
  });

  it('the side bar reopens a closed report; re-running a model reuses its tab', async () => {
    // close every editor, then open the small model's report from the side bar
    await runFromPalette(page, 'View: Close All Editors');
    await page.locator('.activitybar .action-item [aria-label^="MoE Inspector"]').first().click();
    const item = page.locator('.pane-body .monaco-list-row', { hasText: /^\s*small\/model\.safetensors/ }).first();
    await item.waitFor({ timeout: 20_000 });
    await item.click();
    const frame = await panelOf(/small/);
    assert.match(await frame.locator('#verdict').innerText(), /upcycled/);
    await page.locator('.activitybar .action-item [aria-label^="Explorer"]').first().click();
    await rightClickInExplorer(page, ['small', 'model.safetensors']);
    await clickContextMenuItem(page, 'Analyze MoE');
    await frameSaying('#verdict', /upcycled/, 60_000);
    const titles = await page.locator('.tabs-container .tab .label-name').allInnerTexts();
    assert.equal(titles.filter((t) => t.trim() === 'MoE: small/model.safetensors').length, 1, `one tab per model: ${titles.join(' | ')}`);
  });

  it('looks right in the light theme too (screenshots of panel, drill-down, compare)', async () => {
    await setTheme('light');
    const frame = await panelOf(/small/);
    await drawn(frame, '#overview-0');
    await shot('panel');
    await frame.locator('#layer-table tbody tr[data-key="0"]').click();
    await drawn(frame, '#drilldown');
    await frame.locator('#expert-table tbody tr[data-key="3"]').click();
    await drawn(frame, '#drilldown');
    await frame.locator('#drilldown h4').evaluate((e) => e.scrollIntoView({ block: 'start' }));
    await shot('drilldown');
    await setTheme('dark');
  });

  it('extension host: every command registered, worker runs and stops with the extension', async () => {
    await runFromPalette(page, 'MoE Inspector: Test: extension self-check');
    const deadline = Date.now() + 20_000;
    while (!existsSync(hookFile) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    const report = JSON.parse(readFileSync(hookFile, 'utf8'));
    const contributed = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')).contributes.commands as { command: string }[]).map((c) => c.command);
    for (const c of contributed) assert.ok(report.commands.includes(c), `command ${c} registered`);
    assert.equal(report.worker.aliveBefore, true);
    assert.equal(report.worker.aliveAfterDispose, false);
    assert.ok(report.analysedModels.some((m: string) => m.endsWith(join('small', 'model.safetensors'))));
    const runs = report.runs.map((r: { job: string; outcome: string }) => `${r.job}:${r.outcome}`);
    assert.deepEqual(runs, [
      'analyze:done', 'overlay:done', 'overlay:done', 'overlay:done', 'analyze:done', 'compare:done', 'analyze:done',
      'analyze:not-moe', 'analyze:not-found', 'analyze:format', 'analyze:done', 'analyze:done', 'analyze:cancelled', 'analyze:worker-crashed', 'analyze:done',
    ]);
    assert.equal(report.activeRuns, 0);
  });
});

/** A dense (non-MoE) llama checkpoint: one FFN weight, no experts. */
function writeDenseModel(dir: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ model_type: 'llama', num_hidden_layers: 1 }));
  const header = JSON.stringify({ 'model.layers.0.mlp.up_proj.weight': { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] } });
  const buf = Buffer.alloc(8 + header.length + 16);
  buf.writeBigUInt64LE(BigInt(header.length));
  buf.write(header, 8);
  writeFileSync(join(dir, 'model.safetensors'), buf);
}
