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
    });
    installExtension(bin, vsix, extensionsDir, userDataDir);
    server = await startCodeServer({ bin, workspace, extensionsDir, userDataDir, env: { MOE_INSPECTOR_TEST_HOOKS: hookFile }, log: (s) => serverLog.push(s) });
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    await page.goto(`${server.url}/?folder=${encodeURIComponent(workspace)}`);
    await page.locator('.explorer-folders-view').waitFor({ state: 'visible', timeout: 90_000 });
  });

  after(async function () {
    this.timeout(30_000);
    if (page && this.currentTest?.state === 'failed') await page.screenshot({ path: join(ARTIFACTS, 'failure.png') }).catch(() => undefined);
    await browser?.close();
    await server?.stop();
    if (serverLog.length > 0) writeFileSync(join(ARTIFACTS, 'code-server.log'), serverLog.join(''));
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed') await page.screenshot({ path: join(ARTIFACTS, `failed-${this.currentTest.title.replace(/\W+/g, '_')}.png`) }).catch(() => undefined);
  });

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

  it('shows a clear error in the panel and a notification for a corrupt file', async () => {
    await rightClickInExplorer(page, ['broken.safetensors']);
    await clickContextMenuItem(page, 'Analyze MoE');
    const frame = await findPanelFrame(page, 60_000, '#error');
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
    const outcomes = report.runs.map((r: { outcome: string }) => r.outcome);
    assert.equal(outcomes.length, 3);
    assert.equal(outcomes[0], 'done');
    assert.ok(outcomes[1] !== 'done' && outcomes[1] !== 'cancelled', `corrupt file outcome: ${outcomes[1]}`);
    assert.equal(outcomes[2], 'cancelled');
    assert.equal(report.activeRuns, 0);
  });
});
