/**
 * Saved analysis runs in the extension's global storage: one folder per run, holding what the
 * worker wrote (every full layer, the full report per model; see src/worker/report-store.ts) and
 * what the host adds when the run ends (the summaries and run.json, the side bar's entry). The side
 * bar and a re-opened panel read these files: a closed panel or a reloaded window loses nothing.
 * The oldest runs beyond MAX_RUNS are deleted, so the folder does not grow without bound.
 */
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Verdict } from '../engine/report/schema';
import type { ReportSummary } from '../shared/report-summary';
import { layerFileName, reportFileName } from '../worker/report-store';

const MAX_RUNS = 40;

/** The side bar's view of a saved run: small, read at start-up. */
export interface SavedRun {
  readonly version: 1;
  readonly id: string;
  readonly kind: 'analyze' | 'compare';
  readonly sources: readonly string[];
  readonly date: string;
  readonly models: readonly {
    readonly source: string;
    readonly family: string;
    readonly numExperts: number;
    readonly verdict: { readonly type: Verdict; readonly confidence: number };
    readonly layers: readonly { readonly layer: number; readonly verdict: Verdict; readonly confidence: number; readonly reasons: readonly string[] }[];
  }[];
}

export class RunStore {
  constructor(readonly root: string) {}

  /** A fresh folder for a run; ids sort by start time. */
  async newRun(): Promise<{ id: string; dir: string }> {
    const id = `${new Date().toISOString().replace(/[-:.]/g, '').replace('T', '-').slice(0, 15)}-${Math.random().toString(36).slice(2, 8)}`;
    const dir = this.dir(id);
    await mkdir(dir, { recursive: true });
    return { id, dir };
  }

  dir(id: string): string {
    if (!/^[\w-]+$/.test(id)) throw new Error(`not a run id: ${id}`);
    return join(this.root, id);
  }

  layerFile(id: string, model: number, layer: number): string {
    return join(this.dir(id), layerFileName(model, layer));
  }

  reportFile(id: string, model: number): string {
    return join(this.dir(id), reportFileName(model));
  }

  /** Called when a run finished: its summaries and the side bar entry. */
  async save(id: string, kind: SavedRun['kind'], sources: readonly string[], reports: readonly ReportSummary[]): Promise<SavedRun> {
    const run: SavedRun = {
      version: 1,
      id,
      kind,
      sources,
      date: new Date().toISOString(),
      models: reports.map((r) => ({
        source: r.model.source,
        family: r.model.family,
        numExperts: r.model.num_experts,
        verdict: { type: r.verdict.type, confidence: r.verdict.confidence },
        layers: r.layers.map((l) => ({ layer: l.layer, verdict: l.verdict.type, confidence: l.verdict.confidence, reasons: [...l.verdict.reasons] })),
      })),
    };
    await Promise.all(reports.map((r, i) => writeFile(join(this.dir(id), `summary-m${i}.json`), JSON.stringify(r))));
    await writeFile(join(this.dir(id), 'run.json'), JSON.stringify(run));
    await this.prune();
    return run;
  }

  async summaries(run: SavedRun): Promise<ReportSummary[]> {
    return Promise.all(run.models.map(async (_, i) => JSON.parse(await readFile(join(this.dir(run.id), `summary-m${i}.json`), 'utf8')) as ReportSummary));
  }

  /** Every saved run, newest first. Unreadable folders (a run still going, a crash) are skipped. */
  async list(): Promise<SavedRun[]> {
    let ids: string[];
    try {
      ids = await readdir(this.root);
    } catch {
      return [];
    }
    const runs = await Promise.all(
      ids.map(async (id) => {
        try {
          const r = JSON.parse(await readFile(join(this.root, id, 'run.json'), 'utf8')) as SavedRun;
          return r.version === 1 && r.id === id ? r : null;
        } catch {
          return null;
        }
      }),
    );
    return runs.filter((r): r is SavedRun => r !== null).sort((a, b) => (a.id < b.id ? 1 : -1));
  }

  async get(id: string): Promise<SavedRun | null> {
    return (await this.list()).find((r) => r.id === id) ?? null;
  }

  private async prune(): Promise<void> {
    const ids = (await readdir(this.root)).sort();
    for (const id of ids.slice(0, Math.max(0, ids.length - MAX_RUNS))) await rm(join(this.root, id), { recursive: true, force: true });
  }
}
