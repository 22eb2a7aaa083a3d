/**
 * A compact sortable table: click a header to sort (again to reverse), click a row to select it.
 * Numbers sort as numbers. Column headers carry their explanation as a hover title.
 */
import { el } from './dom';

export interface Column<R> {
  readonly key: string;
  readonly label: string;
  readonly help?: string;
  readonly value: (r: R) => number | string;
  readonly format?: (r: R) => string;
}

export interface TableOptions<R> {
  readonly id: string;
  readonly columns: readonly Column<R>[];
  readonly rows: readonly R[];
  readonly rowKey: (r: R) => string;
  readonly selected?: string | null;
  readonly onSelect?: (r: R) => void;
  /** Sort state, kept by the caller so a redraw keeps the user's order. */
  readonly sort: { key: string; desc: boolean };
  readonly onSort: (s: { key: string; desc: boolean }) => void;
  readonly maxHeight?: boolean;
}

export function sortableTable<R>(o: TableOptions<R>): HTMLElement {
  const col = o.columns.find((c) => c.key === o.sort.key) ?? o.columns[0]!;
  const rows = [...o.rows].sort((a, b) => {
    const x = col.value(a);
    const y = col.value(b);
    const c = typeof x === 'number' && typeof y === 'number' ? (Number.isNaN(x) ? 1 : Number.isNaN(y) ? -1 : x - y) : String(x).localeCompare(String(y), undefined, { numeric: true });
    return o.sort.desc ? -c : c;
  });
  const head = el('tr');
  for (const c of o.columns) {
    const active = c.key === col.key;
    const numeric = o.rows.length > 0 && typeof c.value(o.rows[0]!) === 'number';
    const th = el('th', { 'data-key': c.key, title: c.help ?? `Sort by ${c.label}`, class: `${numeric ? 'num ' : ''}${active ? `sorted ${o.sort.desc ? 'desc' : 'asc'}` : ''}`, tabindex: '0', 'aria-sort': active ? (o.sort.desc ? 'descending' : 'ascending') : 'none' }, c.label);
    const sortBy = () => o.onSort({ key: c.key, desc: active ? !o.sort.desc : false });
    th.addEventListener('click', sortBy);
    th.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' || e.key === ' ') sortBy();
    });
    head.append(th);
  }
  const body = el('tbody');
  for (const r of rows) {
    const key = o.rowKey(r);
    const tr = el('tr', { 'data-key': key, tabindex: '0', class: key === o.selected ? 'selected' : '' });
    for (const c of o.columns) tr.append(el('td', { class: typeof c.value(r) === 'number' ? 'num' : '' }, c.format ? c.format(r) : String(c.value(r))));
    if (o.onSelect) {
      tr.addEventListener('click', () => o.onSelect!(r));
      tr.addEventListener('keydown', (e) => {
        if (e.key === 'Enter') o.onSelect!(r);
      });
    }
    body.append(tr);
  }
  return el('div', { class: o.maxHeight === false ? 'table-wrap' : 'table-wrap scroll' }, el('table', { id: o.id, class: 'data' }, el('thead', {}, head), body));
}

/** The table's data as CSV (all rows, in the columns' order, raw numbers). */
export function toCsv<R>(columns: readonly Column<R>[], rows: readonly R[]): string {
  const cell = (v: number | string) => {
    const s = typeof v === 'number' ? (Number.isFinite(v) ? String(v) : '') : v;
    return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return [columns.map((c) => cell(c.label)).join(','), ...rows.map((r) => columns.map((c) => cell(c.value(r))).join(','))].join('\n') + '\n';
}
