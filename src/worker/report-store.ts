/**
 * The worker side of ReportStoreTarget: full layers and reports go to files, summaries go to the
 * caller. Files in the job's folder:
 *   layer-m<model>-L<layer>.json   one full LayerAnalysis, written as soon as the layer is done
 *   report-m<model>.json           the full AnalysisReport (schema moe-inspector/analysis@1)
 * Writes are synchronous so a file exists before the message naming it is sent; the report is
 * written layer by layer, never as one giant string.
 */
import { closeSync, mkdirSync, openSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { AnalysisReport, LayerAnalysis } from '../engine/report/schema';
import type { JobResult, ReportStoreTarget } from '../shared/messages';
import { summarizeLayer, summarizeReport, type LayerSummary } from '../shared/report-summary';

export const layerFileName = (modelIndex: number, layer: number) => `layer-m${modelIndex}-L${layer}.json`;
export const reportFileName = (modelIndex: number) => `report-m${modelIndex}.json`;

export class ReportStore {
  constructor(private readonly target: ReportStoreTarget) {
    mkdirSync(target.dir, { recursive: true });
  }

  /** Writes one finished layer; returns its summary and file. */
  layer(modelIndex: number, layer: LayerAnalysis): { layer: LayerSummary; file: string } {
    const file = join(this.target.dir, layerFileName(modelIndex, layer.layer));
    atomicWrite(file, (fd) => writeSync(fd, JSON.stringify(layer)));
    return { layer: summarizeLayer(layer), file };
  }

  /** Writes the full report(s) of a finished analyze/compare result; returns what the caller gets instead. */
  result(r: JobResult): JobResult {
    if (r.kind !== 'analyze' && r.kind !== 'compare') return r;
    const reports = r.kind === 'analyze' ? [r.report] : [...r.report.models];
    const files = reports.map((report, i) => this.report(i, report));
    return { kind: 'stored', job: r.kind, reports: reports.map(summarizeReport), files };
  }

  private report(modelIndex: number, report: AnalysisReport): string {
    const file = join(this.target.dir, reportFileName(modelIndex));
    const { layers, ...head } = report;
    atomicWrite(file, (fd) => {
      const open = JSON.stringify({ ...head, layers: [] });
      writeSync(fd, open.slice(0, -2)); // without the closing "]}"
      for (const [i, l] of layers.entries()) writeSync(fd, (i > 0 ? ',' : '') + JSON.stringify(l));
      writeSync(fd, ']}');
    });
    return file;
  }
}

/** A reader never sees half a file: write to a temp name, then rename. */
function atomicWrite(file: string, write: (fd: number) => void): void {
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    write(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
}

