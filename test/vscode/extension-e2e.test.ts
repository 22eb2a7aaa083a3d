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
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Frame, Page } from 'playwright-core';
import { generateSyntheticCheckpoint } from '../../src/engine/synth/generate';
import { FakeHub } from '../hub/fake-hub';
import { COMMIT_A, writeSmallModel } from '../hub/helpers';
import {
  REPO, clickContextMenuItem, ensureCodeServer, findPanelFrame, installExtension, launchChromium, rightClickInExplorer, runFromPalette, startCodeServer, writeUserSettings, type Workbench,
} from './code-server';

const ARTIFACTS = join(REPO, 'test-artifacts');
const SMALL = { layers: 2, experts: 8, hidden: 128, intermediate: 64, ranks: { gate: 2, up: 4, down: 3 } };

describe('VS Code extension in code-server (end to end)', function () {
  this.timeout(180_000);
  let tmp: string;
  let workspace: string;
  let hookFile: string;
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
    writeDenseModel(join(workspace, 'dense'));
    // a safetensors header length pointing far past the end of the file
    const broken = Buffer.alloc(64);
    broken.writeBigUInt64LE(10_000_000n, 0);
    writeFileSync(join(workspace, 'broken.safetensors'), broken);

    const userDataDir = join(tmp, 'user-data');
    const extensionsDir = join(tmp, 'extensions');
    writeUserSettings(userDataDir, {
      'workbench.startupEditor': 'none',
      'workbench.tips.enabled': false,
      'security.workspace.trust.enabled': false,
      'telemetry.telemetryLevel': 'off',
      'extensions.autoCheckUpdates': false,
      'extensions.ignoreRecommendations': true,
      'moeInspector.defaultLayers': 'all',
      'moeInspector.executionProvider': 'cpu',
      'moeInspector.allowFullDownload': true,
    });
    installExtension(bin, vsix, extensionsDir, userDataDir);
    // A loopback hub that holds no repository: a model id typed in VS Code gets the hub's 404.
    hub = await new FakeHub().start();
    // ...and one small upcycled model behind a server that ignores Range: readable only with the
    // moeInspector.allowFullDownload setting (on below).
    await writeSmallModel(join(tmp, 'hub-model'));
    hub.repos.set('acme/tiny-moe', { dir: join(tmp, 'hub-model'), refs: { main: COMMIT_A } });
    hub.faults.ignoreRange = true;
    const hubEnv = { HF_ENDPOINT: hub.url, HF_HOME: join(tmp, 'hf'), XDG_CACHE_HOME: join(tmp, 'xdg'), HF_HUB_OFFLINE: '', HF_TOKEN: '' };
    server = await startCodeServer({ bin, workspace, extensionsDir, userDataDir, env: { MOE_INSPECTOR_TEST_HOOKS: hookFile, ...hubEnv }, log: (s) => serverLog.push(s) });
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

  async function markCount(frame: Frame, chartId: string, markClass: string): Promise<number> {
    return frame.locator(`[data-chart-id="${chartId}"] .vega svg g.${markClass}.role-mark > path`).count();
  }

  it('analyses a checkpoint from the explorer context menu and shows verdict and charts', async () => {
    await rightClickInExplorer(page, ['small', 'model.safetensors']);
    await clickContextMenuItem(page, 'Analyze MoE');
    const frame = await findPanelFrame(page, 60_000, '#verdict');
    // constructed upcycled: gate delta rank 2 of min(64,128)=64 (3%), experts = base + small deltas
    await frame.locator('#verdict').waitFor({ timeout: 60_000 });
    assert.match(await frame.locator('#verdict').innerText(), /upcycled/);
    await frame.waitForFunction(() => document.body.dataset['rendered'] !== '' && document.body.dataset['rendered'] !== undefined, undefined, { timeout: 30_000 });
    // one point per (layer, projection), one bar per (layer, projection)
    assert.equal(await markCount(frame, 'rank-ratio', 'mark-symbol'), SMALL.layers * 3);
    assert.equal(await markCount(frame, 'cosine', 'mark-rect'), SMALL.layers * 3);
    const layerItems = await frame.locator('ul.layers li').count();
    assert.equal(layerItems, SMALL.layers);
    await page.screenshot({ path: join(ARTIFACTS, 'panel.png') });
  });

  it('drills into a layer when a point of the rank chart is clicked', async () => {
    const frame = await findPanelFrame(page, 10_000, '#verdict');
    await frame.locator('[data-chart-id="rank-ratio"] .vega svg g.mark-symbol.role-mark > path').first().click({ force: true }); // overlapping points of one layer: any of them selects it
    await frame.locator('#drilldown').waitFor({ timeout: 20_000 });
    await frame.waitForFunction(() => document.querySelectorAll('[data-chart-id^="spectrum-"] .vega svg').length === 3, undefined, { timeout: 30_000 });
    const spectrumId = await frame.locator('[data-chart-id^="spectrum-"]').first().getAttribute('data-chart-id');
    // one decay curve per expert, one heatmap cell per expert pair, two norm bars per expert
    assert.equal(await markCount(frame, spectrumId!, 'mark-line'), SMALL.experts);
    const layer = spectrumId!.split('-')[1];
    assert.equal(await markCount(frame, `heatmap-${layer}-gate`, 'mark-rect'), SMALL.experts * SMALL.experts);
    assert.equal(await markCount(frame, `norms-${layer}-gate`, 'mark-rect'), SMALL.experts * 2);
    await page.screenshot({ path: join(ARTIFACTS, 'drilldown.png') });
  });

  it('keeps its state when hidden (the webview is destroyed) and shown again', async () => {
    const before = await findPanelFrame(page, 10_000, '#drilldown');
    const verdict = await before.locator('#verdict').innerText();
    const drilled = await before.locator('#drilldown h3').first().innerText();
    await runFromPalette(page, 'File: New Untitled Text File'); // the panel's tab is no longer visible
    await waitNoFrameWith('#drilldown', 15_000); // no retainContextWhenHidden: the page is gone
    await page.locator('.tabs-container .tab', { hasText: 'MoE: small/model.safetensors' }).first().click();
    const after = await findPanelFrame(page, 20_000, '#drilldown');
    await after.waitForFunction(() => document.querySelectorAll('[data-chart-id^="spectrum-"] .vega svg').length === 3, undefined, { timeout: 30_000 });
    assert.equal(await after.locator('#verdict').innerText(), verdict);
    assert.equal(await after.locator('#drilldown h3').first().innerText(), drilled);
  });

  it('estimates overlay storage from the explorer and shows the storage bars beside the analysis', async () => {
    await rightClickInExplorer(page, ['small', 'model.safetensors']);
    await clickContextMenuItem(page, 'Overlay: estimate');
    const input = page.locator('.quick-input-widget input');
    await input.waitFor({ state: 'visible', timeout: 10_000 });
    await input.press('Enter'); // the offered default: keep 95% of each delta's energy
    const frame = await findPanelFrame(page, 60_000, '#overlay-line');
    await frame.waitForFunction(() => document.querySelectorAll('[data-chart-id="overlay-storage"] .vega svg').length === 1, undefined, { timeout: 30_000 });
    // original and overlay bars for every MoE layer and for the total
    assert.equal(await markCount(frame, 'overlay-storage', 'mark-rect'), (SMALL.layers + 1) * 2);
    assert.match(await frame.locator('#overlay-line').innerText(), /estimate/i);
    assert.match(await frame.locator('#verdict').innerText(), /upcycled/, 'the analysis stays in the panel');
    await page.screenshot({ path: join(ARTIFACTS, 'overlay-estimate.png') });
  });

  it('compares two models side by side', async () => {
    await rightClickInExplorer(page, ['native', 'model.safetensors']);
    await clickContextMenuItem(page, 'Analyze MoE');
    // the small model's panel may still be there for a moment: wait for the frame that says native
    await frameSaying('#verdict', /native/, 60_000);
    await runFromPalette(page, 'MoE Inspector: Compare two models...');
    for (const name of ['small', 'native']) {
      const input = page.locator('.quick-input-widget input');
      await input.waitFor({ state: 'visible', timeout: 10_000 });
      await input.fill(`${name}/model.safetensors`);
      await page.locator('.quick-input-list .monaco-list-row', { hasText: `${name}/model.safetensors` }).first().click();
    }
    const frame = await findPanelFrame(page, 60_000, '#compare #verdict-1');
    await frame.waitForFunction(() => document.querySelectorAll('#compare [data-chart-id] .vega svg').length === 4, undefined, { timeout: 30_000 });
    assert.match(await frame.locator('#compare #verdict').innerText(), /upcycled/);
    assert.match(await frame.locator('#compare #verdict-1').innerText(), /native/);
    for (const prefix of ['a-', 'b-']) assert.equal(await markCount(frame, `${prefix}rank-ratio`, 'mark-symbol'), SMALL.layers * 3);
    await page.screenshot({ path: join(ARTIFACTS, 'compare.png') });
  });

  it('shows a clear error for a model that is not a Mixture-of-Experts', async () => {
    await rightClickInExplorer(page, ['dense', 'model.safetensors']);
    await clickContextMenuItem(page, 'Analyze MoE');
    const frame = await frameSaying('#error', /dense/, 60_000);
    assert.match(await frame.locator('#error').innerText(), /dense\/model\.safetensors: not a Mixture-of-Experts model: model_type llama/);
    await expectToast(/not a Mixture-of-Experts model/);
  });

  it('shows a clear error for a hub model id that does not exist', async () => {
    await analyzeHubId('acme/no-such-model');
    const frame = await frameSaying('#error', /no-such-model/, 60_000);
    assert.match(await frame.locator('#error').innerText(), /repository acme\/no-such-model not found/);
    await expectToast(/acme\/no-such-model/);
    assert.ok(hub.log.some((r) => r.path.includes('acme/no-such-model')), 'the request went to the loopback hub');
  });

  it('analyses a hub model id (the full-download setting lets it past a server that ignores Range)', async () => {
    await analyzeHubId('acme/tiny-moe');
    const frame = await frameSaying('#verdict', /upcycled/, 60_000);
    assert.match(await frame.locator('main').innerText(), /acme\/tiny-moe/);
    assert.ok(hub.log.some((r) => r.path.includes('acme/tiny-moe') && r.path.endsWith('.safetensors') && r.method === 'GET' && r.status === 200 && r.range !== null), 'a ranged shard request was answered whole, and accepted');
  });

  it('shows a clear error in the panel and a notification for a corrupt file', async () => {
    await rightClickInExplorer(page, ['broken.safetensors']);
    await clickContextMenuItem(page, 'Analyze MoE');
    const frame = await frameSaying('#error', /broken\.safetensors/, 60_000);
    const text = await frame.locator('#error').innerText();
    assert.match(text, /broken\.safetensors/);
    const toast = page.locator('.notifications-toasts .notification-toast', { hasText: 'MoE Inspector' }).first();
    await toast.waitFor({ state: 'visible', timeout: 20_000 });
    assert.match(await toast.innerText(), /broken\.safetensors/);
    await page.screenshot({ path: join(ARTIFACTS, 'error.png') });
  });

  it('cancels a long run from the command palette', async () => {
    await rightClickInExplorer(page, ['big']);
    await clickContextMenuItem(page, 'Analyze MoE');
    const frame = await findPanelFrame(page, 60_000, '#progress-text');
    // wait for the first streamed layer, then cancel mid-run
    await frame.locator('ul.layers li').first().waitFor({ timeout: 90_000 });
    await runFromPalette(page, 'MoE Inspector: Cancel analysis');
    await frame.locator('#cancelled').waitFor({ timeout: 30_000 });
    const layersShown = await frame.locator('ul.layers li').count();
    assert.ok(layersShown >= 1 && layersShown < 12, `layers shown after cancel: ${layersShown}`);
    await page.screenshot({ path: join(ARTIFACTS, 'cancelled.png') });
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
    // in test order: small analysed, its overlay estimated, native analysed, the two compared,
    // then the dense model and the unknown hub id fail, the hub model is read, the corrupt file
    // fails, and the long run is cancelled
    assert.deepEqual(runs.slice(0, 4), ['analyze:done', 'overlay:done', 'analyze:done', 'compare:done']);
    assert.equal(runs[4], 'analyze:not-moe');
    assert.equal(runs[5], 'analyze:not-found');
    assert.equal(runs[6], 'analyze:done');
    assert.equal(runs[7], 'analyze:format');
    assert.equal(runs[8], 'analyze:cancelled');
    assert.equal(runs.length, 9);
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
