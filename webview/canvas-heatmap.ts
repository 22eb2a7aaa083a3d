/**
 * Big heatmaps (a 128 x 128 cosine matrix, 48 layers x 128 experts) drawn straight onto a canvas.
 * Why: through vega such a chart costs 1-2 s of the page's only thread (16k tuples through the
 * dataflow and the expression interpreter), during which clicks wait; a canvas fill of the same
 * cells takes milliseconds. Same colours (viridis over the given domain), a colour bar with its
 * ends, hover values, click to select, the selected column/row outlined. Small heatmaps stay vega
 * charts (their SVG marks are what the tests count); exports of these charts use the vega spec.
 */
import { scheme } from 'vega';
import { el } from './dom';

export interface CanvasHeatmap {
  readonly rows: readonly number[]; // row keys, top to bottom
  readonly cols: readonly number[]; // column keys, left to right
  readonly rowTitle: string;
  readonly colTitle: string;
  readonly value: (row: number, col: number) => number | undefined;
  readonly domain: readonly [number, number];
  readonly valueLabel: string;
  readonly format: (v: number) => string;
  /** Square cells (E x E matrix) or stretched to the width. */
  readonly square: boolean;
  readonly highlight: { readonly col?: number; readonly row?: number } | null;
  readonly onClick?: (row: number, col: number) => void;
}

const LEFT = 44;
const BOTTOM = 34;
const BAR = 70;

export function drawCanvasHeatmap(target: HTMLElement, h: CanvasHeatmap, colors: { foreground: string; accent: string }): HTMLCanvasElement {
  const width = Math.max(240, target.clientWidth || 600);
  const plotW = h.square ? Math.min(560, width - LEFT - BAR) : width - LEFT - BAR;
  const cellW = plotW / h.cols.length;
  const cellH = h.square ? cellW : Math.max(4, Math.min(14, 360 / h.rows.length));
  const plotH = cellH * h.rows.length;
  const ratio = window.devicePixelRatio || 1;
  const canvas = el('canvas', { class: 'heatmap-canvas', role: 'img', 'aria-label': `${h.valueLabel}: ${h.rows.length} x ${h.cols.length} heatmap` });
  const cssW = LEFT + plotW + BAR;
  const cssH = plotH + BOTTOM + 4;
  canvas.width = Math.round(cssW * ratio);
  canvas.height = Math.round(cssH * ratio);
  canvas.style.width = `${cssW}px`;
  canvas.style.height = `${cssH}px`;
  const ctx = canvas.getContext('2d')!;
  ctx.scale(ratio, ratio);
  const interp = scheme('viridis') as (t: number) => string;
  const [lo, hi] = h.domain;
  const color = (v: number) => interp(Math.min(1, Math.max(0, (v - lo) / (hi - lo || 1))));
  for (const [i, r] of h.rows.entries()) {
    for (const [j, c] of h.cols.entries()) {
      const v = h.value(r, c);
      if (v === undefined || !Number.isFinite(v)) continue;
      ctx.fillStyle = color(v);
      ctx.fillRect(LEFT + j * cellW, i * cellH, Math.ceil(cellW), Math.ceil(cellH));
    }
  }
  // selection outline
  ctx.strokeStyle = colors.accent;
  ctx.lineWidth = 2;
  const hc = h.highlight?.col !== undefined ? h.cols.indexOf(h.highlight.col) : -1;
  const hr = h.highlight?.row !== undefined ? h.rows.indexOf(h.highlight.row) : -1;
  if (hc >= 0) ctx.strokeRect(LEFT + hc * cellW, 0, cellW, plotH);
  if (hr >= 0) ctx.strokeRect(LEFT, hr * cellH, plotW, cellH);
  // axes: a label every few cells
  ctx.fillStyle = colors.foreground;
  ctx.font = '11px sans-serif';
  ctx.textAlign = 'center';
  ctx.textBaseline = 'top';
  const colStep = Math.max(1, Math.ceil(24 / cellW));
  for (let j = 0; j < h.cols.length; j += colStep) ctx.fillText(String(h.cols[j]), LEFT + (j + 0.5) * cellW, plotH + 3);
  ctx.fillText(h.colTitle, LEFT + plotW / 2, plotH + 18);
  ctx.textAlign = 'right';
  ctx.textBaseline = 'middle';
  const rowStep = Math.max(1, Math.ceil(13 / cellH));
  for (let i = 0; i < h.rows.length; i += rowStep) ctx.fillText(String(h.rows[i]), LEFT - 4, (i + 0.5) * cellH);
  ctx.save();
  ctx.translate(10, plotH / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.textAlign = 'center';
  ctx.fillText(h.rowTitle, 0, 0);
  ctx.restore();
  // colour bar with its two ends
  const barX = LEFT + plotW + 14;
  const barH = Math.min(160, Math.max(60, plotH));
  for (let y = 0; y < barH; y++) {
    ctx.fillStyle = interp(1 - y / barH);
    ctx.fillRect(barX, y, 12, 1);
  }
  ctx.textAlign = 'left';
  ctx.textBaseline = 'top';
  ctx.fillStyle = colors.foreground;
  ctx.fillText(h.format(hi), barX + 15, 0);
  ctx.textBaseline = 'bottom';
  ctx.fillText(h.format(lo), barX + 15, barH);

  const cellAt = (e: MouseEvent) => {
    const r = canvas.getBoundingClientRect();
    const x = e.clientX - r.left - LEFT;
    const y = e.clientY - r.top;
    const j = Math.floor(x / cellW);
    const i = Math.floor(y / cellH);
    return x >= 0 && i >= 0 && i < h.rows.length && j >= 0 && j < h.cols.length ? { row: h.rows[i]!, col: h.cols[j]! } : null;
  };
  const tip = el('div', { class: 'heatmap-tip' });
  canvas.addEventListener('mousemove', (e) => {
    const c = cellAt(e);
    const v = c ? h.value(c.row, c.col) : undefined;
    if (!c || v === undefined) {
      tip.classList.remove('visible');
      return;
    }
    tip.textContent = `${h.rowTitle} ${c.row} · ${h.colTitle} ${c.col} · ${h.valueLabel} ${h.format(v)}`;
    tip.style.left = `${e.clientX + 12}px`;
    tip.style.top = `${e.clientY + 12}px`;
    tip.classList.add('visible');
  });
  canvas.addEventListener('mouseleave', () => tip.classList.remove('visible'));
  if (h.onClick) {
    canvas.style.cursor = 'pointer';
    canvas.addEventListener('click', (e) => {
      const c = cellAt(e);
      if (c) h.onClick!(c.row, c.col);
    });
  }
  target.replaceChildren(canvas, tip);
  return canvas;
}
