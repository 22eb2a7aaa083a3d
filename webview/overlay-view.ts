/**
 * The overlay part of the panel: a form (mode, rank rule, storage dtype, save folder, overlay
 * folder or inputs file, pass criterion) that runs the overlay job on this panel's model, and the
 * results: totals with their scope, per layer the ranks, energy kept and output error against the
 * pass criterion, and the storage and error charts.
 */
import type { OverlayReport } from '../src/engine/report/schema';
import type { FromPanel, OverlayRequest, PanelState, PickPurpose } from '../src/extension/panel-protocol';
import { parseOverlayRanks } from '../src/extension/overlay-ranks';
import { overlayErrorChart, overlayStorageChart, type ChartSpec } from './charts';
import { overlayLine } from './summary';
import { button, el, helpNote, select } from './dom';
import { sortableTable } from './table';
import { currentTheme } from './theme';
import { PROJECTIONS } from './stats';

export interface OverlayUi {
  mode?: OverlayRequest['mode'];
  ranks?: string;
  dtype?: 'F32' | 'F16' | 'BF16';
  saveDir?: string;
  overlayDir?: string;
  inputsFile?: string;
  maxError?: string;
  problem?: string;
  sort?: { key: string; desc: boolean };
}

interface Env {
  post(m: FromPanel): void;
  chartBox(c: ChartSpec): HTMLElement;
  rerender(): void;
}

function input(id: string, value: string, placeholder: string, onInput: (v: string) => void): HTMLInputElement {
  const i = el('input', { id, type: 'text', value, placeholder, spellcheck: 'false' });
  i.addEventListener('input', () => onInput(i.value));
  return i;
}

function form(s: PanelState, u: OverlayUi, env: Env): HTMLElement {
  const mode = u.mode ?? 'estimate';
  const f = el('div', { class: 'overlay-form', id: 'overlay-form' });
  const pickRow = (purpose: PickPurpose, label: string, placeholder: string) =>
    el('label', { class: 'field wide' }, `${label} `, input(`overlay-${purpose}`, u[purpose] ?? '', placeholder, (v) => (u[purpose] = v)), button('Browse…', () => env.post({ type: 'pick', purpose }), { class: 'small secondary', id: `pick-${purpose}` }));
  f.append(
    select('overlay-mode', [['estimate', 'estimate (whole model, bytes)'], ['compute', 'compute (ranks, errors; optionally save)'], ['verify', 'verify (rebuild experts, output error)']], mode, (v) => { u.mode = v as OverlayRequest['mode']; env.rerender(); }, 'Mode'),
    el('label', { class: 'field' }, 'Ranks ', input('overlay-ranks', u.ranks ?? '0.95', '0.95 | 8,16,8 | x4', (v) => (u.ranks = v))),
    select('overlay-dtype', [['BF16', 'BF16'], ['F16', 'F16'], ['F32', 'F32']], u.dtype ?? 'BF16', (v) => (u.dtype = v as OverlayUi['dtype']), 'Storage dtype'),
  );
  if (mode === 'compute') f.append(pickRow('saveDir', 'Save to folder', 'optional: a folder for layer-N.safetensors + manifest'));
  if (mode === 'verify') {
    f.append(pickRow('overlayDir', 'Overlay folder', 'optional: verify a saved overlay (else the ranks above)'));
    f.append(pickRow('inputsFile', 'Inputs file', 'optional: real activations, one [T, H] tensor'));
    f.append(el('label', { class: 'field' }, 'Pass if output error ≤ ', input('overlay-max-error', u.maxError ?? '0.01', '0.01', (v) => (u.maxError = v))));
  }
  const run = () => {
    const ranks = parseOverlayRanks(u.ranks ?? '0.95');
    if (typeof ranks === 'string') {
      u.problem = `Ranks: ${ranks}`;
      env.rerender();
      return;
    }
    const maxError = u.maxError ? Number(u.maxError) : undefined;
    if (maxError !== undefined && !(maxError > 0)) {
      u.problem = 'The pass criterion must be a positive number.';
      env.rerender();
      return;
    }
    u.problem = '';
    const req: OverlayRequest = {
      mode,
      ranks,
      overlayDtype: u.dtype ?? 'BF16',
      ...(mode === 'compute' && u.saveDir ? { saveDir: u.saveDir } : {}),
      ...(mode === 'verify' && u.overlayDir ? { overlayDir: u.overlayDir } : {}),
      ...(mode === 'verify' && u.inputsFile ? { inputsFile: u.inputsFile } : {}),
      ...(mode === 'verify' && maxError !== undefined ? { maxError } : {}),
    };
    env.post({ type: 'runOverlay', request: req });
  };
  const running = s.status.kind === 'running';
  f.append(button(`Run overlay ${mode}`, run, { id: 'overlay-run', ...(running ? { disabled: '' } : {}) }));
  if (running) f.append(el('span', { class: 'loading', id: 'overlay-running' }, `${s.status.kind === 'running' ? s.status.what : ''} running… (progress at the top of the panel)`));
  if (u.problem) f.append(el('p', { class: 'error', role: 'alert' }, u.problem));
  return f;
}

const pct = (x: number) => `${(x * 100).toFixed(2)}%`;
const minOf = (xs: readonly number[]) => (xs.length ? Math.min(...xs) : NaN);

type Row = OverlayReport['layers'][number];

function results(o: OverlayReport, u: OverlayUi, env: Env, charts: ChartSpec[]): HTMLElement {
  const box = el('div', { class: 'overlay-results', id: 'overlay-results' });
  box.append(el('p', { id: 'overlay-line' }, overlayLine(o)));
  if (o.note) box.append(el('p', { class: 'note' }, o.note));
  const crit = o.verification?.max_error ?? o.options?.max_error;
  const cols = [
    { key: 'layer', label: 'layer', value: (l: Row) => l.layer },
    ...PROJECTIONS.map((p) => ({ key: `rank-${p}`, label: `${p} rank`, help: `Rank kept for ${p}`, value: (l: Row) => l.ranks?.[p] ?? l.projections[p]?.rank ?? NaN })),
    ...PROJECTIONS.map((p) => ({ key: `energy-${p}`, label: `${p} energy kept (min)`, help: `Smallest share of delta energy kept over the experts of ${p}`, value: (l: Row) => minOf(l.projections[p]?.energy_kept ?? []), format: (l: Row) => { const v = minOf(l.projections[p]?.energy_kept ?? []); return Number.isFinite(v) ? pct(v) : '—'; } })),
    { key: 'out', label: 'worst output error', help: `Largest relative output error of a whole expert (seeded tokens)${crit !== undefined ? `; pass criterion ≤ ${crit}` : ''}`, value: (l: Row) => l.expert_output_error?.seeded?.max ?? NaN, format: (l: Row) => { const v = l.expert_output_error?.seeded?.max; return v === undefined ? '—' : `${v.toExponential(2)}${crit !== undefined ? (v <= crit ? ' ✓' : ' ✗') : ''}`; } },
    { key: 'ratio', label: 'ratio', help: 'original / overlay bytes of this layer\'s expert weights', value: (l: Row) => l.ratio ?? NaN, format: (l: Row) => (l.ratio === undefined ? '—' : `${l.ratio.toFixed(2)}x`) },
  ];
  box.append(sortableTable({ id: 'overlay-table', columns: cols, rows: o.layers, rowKey: (l) => String(l.layer), sort: u.sort ?? { key: 'layer', desc: false }, onSort: (x) => { u.sort = x; env.rerender(); } }));
  charts.push(...[overlayStorageChart(o, currentTheme()), overlayErrorChart(o, currentTheme())].filter((c) => c.dataMarks > 0));
  for (const c of charts) box.append(env.chartBox(c));
  return box;
}

/** The section and the charts to draw into it once it is in the page. */
export function overlaySection(s: PanelState, u: OverlayUi, env: Env): { sec: HTMLElement; charts: ChartSpec[] } {
  const sec = el('section', { id: 'overlay', class: 'overlay' });
  const charts: ChartSpec[] = [];
  if (s.models.length !== 1) return { sec, charts };
  sec.append(el('h3', {}, 'Overlay compression'));
  sec.append(
    helpNote(
      'Overlay = the mean expert (base) + a rank-r factorisation of each expert\'s delta. Ranks: an energy share (0.95: every expert keeps at least 95% of its delta energy), three fixed ranks gate,up,down (8,16,8), or a target compression ratio (x4). Estimate sizes the whole model; compute picks ranks and measures weight errors (and can save the overlay); verify rebuilds every expert and measures the output error of the whole expert function against the pass criterion.',
      'How the overlay works',
    ),
  );
  sec.append(form(s, u, env));
  if (s.overlay) sec.append(results(s.overlay, u, env, charts));
  return { sec, charts };
}
