/** Tiny DOM helpers for the panel (no framework: the panel is a handful of sections). */
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) e.append(c);
  return e;
}

export function button(label: string, onClick: () => void, attrs: Record<string, string> = {}): HTMLButtonElement {
  const b = el('button', { type: 'button', ...attrs }, label);
  b.addEventListener('click', onClick);
  return b;
}

/** A collapsible note: help where it is needed, out of the way otherwise. */
export function helpNote(text: string, summary = 'What does this show?'): HTMLElement {
  return el('details', { class: 'help' }, el('summary', {}, summary), el('p', {}, text));
}

export function select(id: string, options: readonly [string, string][], value: string, onChange: (v: string) => void, label?: string): HTMLElement {
  const s = el('select', { id });
  for (const [v, text] of options) {
    const o = el('option', { value: v }, text);
    if (v === value) o.selected = true;
    s.append(o);
  }
  s.addEventListener('change', () => onChange(s.value));
  return label ? el('label', { class: 'field' }, `${label} `, s) : s;
}
