/** One line for a long run's progress, shared by the CLI's progress line and the VS Code notification. */
import type { Progress, RunProgress } from './messages';

export function formatBytes(n: number): string {
  if (n < 1e3) return `${n} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = n;
  let u = -1;
  while (v >= 1e3 && u < units.length - 1) {
    v /= 1e3;
    u++;
  }
  return `${v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)} ${units[u]}`;
}

export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  return `${h}h${String(m % 60).padStart(2, '0')}m`;
}

/** "layer 3 · 2/58 layers done · up: spectra, experts 120/256 · 4.21 GB read · ETA 1h12m". */
/** `named: false` leaves out the model name (a line whose message names it already). */
export function formatRun(r: RunProgress, named = true): string {
  const parts = [
    ...(r.layer !== null ? [`layer ${r.layer}`] : []),
    `${r.layersDone}/${r.layersTotal} layers done`,
    ...(r.step ? [`${r.step}${r.expertsTotal > 0 ? `, experts ${r.expertsDone}/${r.expertsTotal}` : ''}`] : []),
    `${formatBytes(r.bytesRead)} read`,
    `ETA ${r.etaSeconds === null ? '…' : formatDuration(r.etaSeconds)}`,
  ];
  return `${named && r.model !== undefined ? `${r.model}: ` : ''}${parts.join(' · ')}`;
}

/** The run's line where the message carries one, else the plain message. */
export function formatProgress(p: Progress): string {
  return p.run ? formatRun(p.run) : p.message;
}
