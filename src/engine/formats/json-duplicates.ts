/**
 * Duplicate-key detection for JSON texts. JSON.parse keeps the last of two equal keys without a
 * word; in a safetensors header or a shard index that hides a conflicting definition, so we look.
 */

export interface DuplicateKey {
  readonly key: string;
  /** Keys of the enclosing objects, outermost first ([] for a top-level duplicate). */
  readonly path: readonly string[];
}

interface Frame {
  readonly isObject: boolean;
  readonly keys: Set<string>;
  /** The key under which this container sits in its parent object (null in arrays / at the root). */
  readonly keyInParent: string | null;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;

function isJsonSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

/**
 * The first key that appears twice in one object, at any depth, or null. `text` must already be
 * valid JSON (parse it first): the scanner only tracks nesting and string literals.
 */
export function firstDuplicateKey(text: string): DuplicateKey | null {
  const stack: Frame[] = [];
  let pendingKey: string | null = null; // the last key seen, so a container opened after it knows its name
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      const start = i;
      for (i++; text.charCodeAt(i) !== QUOTE; i++) if (text.charCodeAt(i) === BACKSLASH) i++;
      const top = stack[stack.length - 1];
      if (top?.isObject && followedByColon(text, i + 1)) {
        const key = JSON.parse(text.slice(start, i + 1)) as string;
        if (top.keys.has(key)) return { key, path: pathOf(stack) };
        top.keys.add(key);
        pendingKey = key;
      }
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      const parent = stack[stack.length - 1];
      stack.push({ isObject: c === 0x7b, keys: new Set(), keyInParent: parent?.isObject ? pendingKey : null });
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
    }
  }
  return null;
}

function followedByColon(text: string, from: number): boolean {
  let j = from;
  while (j < text.length && isJsonSpace(text.charCodeAt(j))) j++;
  return text.charCodeAt(j) === COLON;
}

function pathOf(stack: readonly Frame[]): string[] {
  return stack.slice(1).map((f) => f.keyInParent ?? '[]');
}
