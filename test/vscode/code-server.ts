/**
 * Helpers for driving a real VS Code workbench: code-server (installed by
 * scripts/ensure-code-server.sh) on loopback, and Debian's Chromium through playwright-core.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { chromium, type Browser, type Frame, type Page } from 'playwright-core';

export const REPO = join(__dirname, '..', '..');

export function ensureCodeServer(): string {
  return execFileSync(join(REPO, 'scripts', 'ensure-code-server.sh'), { encoding: 'utf8', timeout: 15 * 60_000 }).trim().split('\n').pop()!;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

export interface Workbench {
  readonly process: ChildProcess;
  readonly url: string;
  stop(): Promise<void>;
}

export function writeUserSettings(userDataDir: string, settings: Record<string, unknown>): void {
  mkdirSync(join(userDataDir, 'User'), { recursive: true });
  writeFileSync(join(userDataDir, 'User', 'settings.json'), JSON.stringify(settings, null, 2));
}

export function installExtension(bin: string, vsix: string, extensionsDir: string, userDataDir: string): string {
  return execFileSync(bin, ['--install-extension', vsix, '--extensions-dir', extensionsDir, '--user-data-dir', userDataDir, '--force'], {
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, ORT_DISABLE_TELEMETRY: '1' },
  });
}

export async function startCodeServer(opts: { bin: string; workspace: string; extensionsDir: string; userDataDir: string; env: NodeJS.ProcessEnv; log: (s: string) => void }): Promise<Workbench> {
  const port = await freePort();
  const args = [
    '--auth', 'none', '--bind-addr', `127.0.0.1:${port}`, '--disable-telemetry', '--disable-update-check', '--disable-workspace-trust',
    '--disable-getting-started-override', '--extensions-dir', opts.extensionsDir, '--user-data-dir', opts.userDataDir, opts.workspace,
  ];
  const child = spawn(opts.bin, args, { env: { ...process.env, ...opts.env, ORT_DISABLE_TELEMETRY: '1' }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  child.stdout!.on('data', (d: Buffer) => opts.log(d.toString()));
  child.stderr!.on('data', (d: Buffer) => opts.log(d.toString()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`code-server exited with ${child.exitCode}`);
    try {
      if ((await fetch(`${url}/healthz`)).ok) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) throw new Error('code-server did not start within 60 s');
    await new Promise((r) => setTimeout(r, 300));
  }
  return {
    process: child,
    url,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      try {
        process.kill(-child.pid!, 'SIGTERM'); // its whole group: server, extension host, our worker
      } catch {
        /* already gone */
      }
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        /* gone */
      }
    },
  };
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

/** The report webview's content frame (nested inside the workbench's webview host iframe). */
export async function findPanelFrame(page: Page, timeoutMs: number, selector = 'main#app'): Promise<Frame> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const f of page.frames()) {
      try {
        if (await f.evaluate((sel) => !!document.querySelector(sel), selector)) return f;
      } catch {
        /* frame navigating or detached */
      }
    }
    if (Date.now() > deadline) throw new Error(`no webview frame with ${selector} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Opens the command palette. F1 is occasionally lost while a webview holds the focus: then the command center is clicked. */
async function openPalette(page: Page, input: ReturnType<Page['locator']>): Promise<void> {
  await page.keyboard.press('F1');
  if (!(await input.waitFor({ state: 'visible', timeout: 3_000 }).then(() => true, () => false))) {
    await page.locator('.command-center .search-label, .command-center-center').first().click();
    await input.waitFor({ state: 'visible', timeout: 10_000 });
  }
}

/** Runs a command through the command palette, as a user would. */
export async function runFromPalette(page: Page, title: string): Promise<void> {
  const input = page.locator('.quick-input-widget input');
  // The palette can close again right after it opened (focus taken by a webview that finished
  // drawing): then it is opened again, at most three times.
  for (let attempt = 1; ; attempt++) {
    await openPalette(page, input);
    const filled = await input.fill(`>${title}`, { timeout: 5_000 }).then(() => true, (e: unknown) => (attempt >= 3 ? Promise.reject(e) : false));
    if (filled) break;
  }
  const row = page.locator('.quick-input-list .monaco-list-row', { hasText: title }).first();
  await row.waitFor({ state: 'visible', timeout: 10_000 });
  // Enter when the match is the focused row, as a user does (a click was sometimes not taken as accept); else click it.
  if (await page.locator('.quick-input-list .monaco-list-row.focused', { hasText: title }).count()) await input.press('Enter');
  else await row.click();
  // accepted: the palette closed, or the command opened its own input box in the same widget
  await page.waitForFunction(
    (text) => {
      const el = document.querySelector<HTMLInputElement>('.quick-input-widget input');
      return !el || el.offsetParent === null || el.value !== text;
    },
    `>${title}`,
    { timeout: 10_000 },
  );
}

/**
 * Expands folders along `path` in the explorer and right-clicks the last entry. Names repeat across
 * folders (every model has a model.safetensors), so each step looks only inside the folder opened
 * by the step before: rows after the parent's (data-index) until the tree leaves its subtree (aria-level).
 */
export async function rightClickInExplorer(page: Page, path: readonly string[]): Promise<void> {
  let parent = -1;
  for (const [i, name] of path.entries()) {
    const row = await childRow(page, parent, i + 1, name);
    if (i < path.length - 1) {
      if ((await row.getAttribute('aria-expanded')) !== 'true') await row.click();
      parent = Number(await row.getAttribute('data-index'));
    } else {
      await row.click({ button: 'right' });
    }
  }
}

/** The explorer row `name` at tree level `level` inside the subtree of the row at index `parent` (-1: the top). */
async function childRow(page: Page, parent: number, level: number, name: string) {
  const rows = page.locator('.explorer-folders-view .monaco-list-row');
  const deadline = Date.now() + 30_000;
  for (;;) {
    const found = await rows.evaluateAll(
      (els, a) => {
        const byIndex = new Map(els.map((e) => [Number(e.getAttribute('data-index')), e]));
        for (let k = a.parent + 1; byIndex.has(k); k++) {
          const e = byIndex.get(k)!;
          const lvl = Number(e.getAttribute('aria-level'));
          if (lvl < a.level) break; // left the parent's subtree
          if (lvl === a.level && e.getAttribute('aria-label') === a.name) return k;
        }
        return null;
      },
      { parent, level, name },
    );
    if (found !== null) return page.locator(`.explorer-folders-view .monaco-list-row[data-index="${found}"]`);
    if (Date.now() > deadline) throw new Error(`explorer: no "${name}" at level ${level} under row ${parent}`);
    await page.waitForTimeout(200);
  }
}

export async function clickContextMenuItem(page: Page, label: string): Promise<void> {
  const item = page.locator('.context-view .monaco-menu .action-item .action-label', { hasText: label }).first();
  await item.waitFor({ state: 'visible', timeout: 10_000 });
  await item.hover();
  await item.click();
  // the workbench sometimes swallows the first click while the menu is still opening: use the keyboard then
  const menu = page.locator('.context-view .monaco-menu');
  if (await menu.isVisible().catch(() => false)) {
    await page.waitForTimeout(300);
    if (await menu.isVisible().catch(() => false)) await page.keyboard.press('Enter');
  }
  await menu.waitFor({ state: 'hidden', timeout: 5_000 });
}
