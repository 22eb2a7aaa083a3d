/**
 * The JSON of a safetensors header, parsed straight from its bytes by the rules the reference reader
 * applies (huggingface/safetensors `SafeTensors::read_metadata`: `serde_json::from_str` into a serde
 * derive of `HashMetadata { __metadata__: Option<HashMap<String, String>>, #[flatten] tensors:
 * HashMap<String, TensorInfo { dtype, shape: Vec<usize>, data_offsets: (usize, usize) }> }`):
 *
 * - strict RFC 8259 JSON, JSON whitespace around it, nothing after it ("trailing characters");
 * - at most 127 nested arrays/objects (serde_json's recursion limit: remaining_depth starts at 128);
 * - strings: no raw control characters, only the JSON escapes, no lone surrogate in a \u escape;
 * - every number must fit a float64 (serde_json: "number out of range"), even in ignored fields;
 * - shape and data_offsets elements are usize: JSON integers written without sign, fraction or
 *   exponent (`1.0`, `1e0`, `-0`, `-1` are floats or negatives to serde_json and are refused), up to
 *   2^64-1, kept exact (a bigint above 2^53);
 * - an entry is an object with dtype, shape and data_offsets (unknown fields ignored) or, as serde's
 *   derive also accepts, the array [dtype, shape, data_offsets]; dtype is a name, or the one-key
 *   object {"NAME": null} (serde's externally tagged form of a unit variant);
 * - data_offsets has exactly two elements; __metadata__ is null or an object of strings.
 *
 * One deliberate difference: a key that appears twice in one object is refused at any depth (the
 * spec forbids it; serde keeps the last tensor entry or metadata value without a word).
 *
 * Iterative (an explicit stack, never recursion) and linear in the header size: nothing can
 * overflow the stack, and a 10^6-entry header parses about as fast as JSON.parse (see the bench).
 */
import { isUtf8 } from 'node:buffer';
import { MoeInspectorError } from '../errors';
import { DTYPES, type Dtype } from './dtype';

/** A usize of the header: a number up to 2^53 - 1, a bigint above (exact up to 2^64 - 1). */
export type U64 = number | bigint;

/** One tensor entry as written, handed to the caller as soon as it is parsed. */
export interface RawEntry {
  readonly name: string;
  readonly dtype: Dtype;
  readonly shape: readonly U64[];
  readonly begin: U64;
  readonly end: U64;
}

export interface RawHeader<T> {
  /** What `build` made of each entry, in the order of the JSON. */
  readonly entries: readonly T[];
  readonly metadata: Readonly<Record<string, string>>;
}

/** serde_json's recursion limit: the 128th nested array/object is refused. */
export const MAX_JSON_DEPTH = 127;
export const U64_MAX = (1n << 64n) - 1n;
/** Decimal digits that always fit a safe integer: longer integers go through BigInt. */
const SAFE_DIGITS = 15;
/** Longer plain integers may overflow float64 (about 1.8e308) and are range-checked. */
const LONG_NUMBER = 300;
const EXCERPT = 40;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const COMMA = 0x2c;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;

const isDigit = (c: number | undefined): boolean => c !== undefined && c >= ZERO && c <= NINE;
const isSpace = (c: number | undefined): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

/** Field names of a tensor entry, in the order of the array form. */
const FIELDS = ['dtype', 'shape', 'data_offsets'] as const;
type Field = (typeof FIELDS)[number];
const FIELD_BYTES = FIELDS.map((f) => Uint8Array.from(f, (ch) => ch.charCodeAt(0)));
const DTYPE_SET: ReadonlySet<string> = new Set(DTYPES);

/** Shortens echoed input: a 1 MB key must not become a 1 MB error message. */
export function excerpt(text: string, max = EXCERPT): string {
  return text.length <= max ? text : `${text.slice(0, max)}... (${text.length} characters)`;
}

/**
 * Parses and checks the header JSON; every failure is a 'format' MoeInspectorError naming `file`.
 * @param build turns each entry into the caller's record at once (a 10^6-entry header then keeps
 *   one object per tensor alive, not two: most of the parse time is the garbage collector's)
 */
export function parseHeaderJson<T>(bytes: Uint8Array, file: string, build: (e: RawEntry) => T): RawHeader<T> {
  if (!isUtf8(bytes)) {
    throw new MoeInspectorError('format', `header is not valid UTF-8 (first invalid byte at file offset ${8 + firstInvalidUtf8(bytes)})`, { file });
  }
  return new HeaderParser(bytes, file).header(build);
}

/** Node's Buffer has latin1Slice (what toString('latin1') calls, without its argument handling); not in the typings. */
type FastBuffer = Buffer & { latin1Slice(start: number, end: number): string };

class HeaderParser {
  private i = 0;
  private readonly n: number;
  private readonly buf: Buffer;

  constructor(
    private readonly b: Uint8Array,
    private readonly file: string,
  ) {
    this.n = b.length;
    this.buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  }

  header<T>(build: (e: RawEntry) => T): RawHeader<T> {
    this.ws();
    if (this.b[this.i] !== LBRACE) {
      if (this.i >= this.n) this.fail('header is empty or only whitespace: not a JSON object');
      this.fail(`header is not a JSON object (it starts with ${this.near(this.i)})`);
    }
    this.i++;
    const entries: T[] = [];
    const names = new Set<string>();
    let metadata: Record<string, string> | null = null;
    this.ws();
    if (this.b[this.i] === RBRACE) this.i++;
    else {
      for (;;) {
        const name = this.key('a tensor name');
        if (name === '__metadata__') {
          if (metadata !== null) this.fail('__metadata__ appears twice in the header');
          metadata = this.metadata();
        } else {
          if (names.has(name)) this.fail(`duplicate key "${excerpt(name)}" in header: two entries for one tensor name`, name);
          names.add(name);
          entries.push(build(this.entry(name)));
        }
        if (this.endOfMember(RBRACE)) break;
      }
    }
    this.ws();
    if (this.i < this.n) this.syntax(`trailing characters after the header's JSON object`);
    return { entries, metadata: metadata ?? {} };
  }

  /** After a member or element: true at the closing bracket, false after a comma (both consumed). */
  private endOfMember(close: number): boolean {
    this.ws();
    const c = this.b[this.i];
    if (c === COMMA) {
      this.i++;
      return false;
    }
    if (c === close) {
      this.i++;
      return true;
    }
    return this.syntax(`expected ',' or '${String.fromCharCode(close)}'`);
  }

  /** A key and its colon. */
  private key(what: string): string {
    this.ws();
    if (this.b[this.i] !== QUOTE) this.syntax(`expected ${what} in double quotes`);
    const k = this.string();
    this.ws();
    if (this.b[this.i] !== COLON) this.syntax(`expected ':' after the key "${excerpt(k)}"`);
    this.i++;
    this.ws();
    return k;
  }

  /** An entry's field name and its colon: the three known names are matched on their bytes. */
  private fieldKey(): string {
    this.ws();
    const b = this.b;
    const at = this.i;
    if (b[at] === QUOTE) {
      for (let f = 0; f < FIELD_BYTES.length; f++) {
        const name = FIELD_BYTES[f]!;
        let k = 0;
        while (k < name.length && b[at + 1 + k] === name[k]) k++;
        if (k === name.length && b[at + 1 + k] === QUOTE) {
          this.i = at + 2 + k;
          this.ws();
          if (b[this.i] !== COLON) break; // let key() report it
          this.i++;
          this.ws();
          return FIELDS[f]!;
        }
      }
    }
    this.i = at;
    return this.key('a field name');
  }

  /** null (absent, as serde reads Option) or an object of string values. */
  private metadata(): Record<string, string> {
    const meta: Record<string, string> = {};
    if (this.literalIs('null')) {
      this.i += 4;
      return meta;
    }
    if (this.b[this.i] !== LBRACE) this.fail(`__metadata__ is ${this.valueExcerpt()}, not an object of string values`);
    this.i++;
    this.ws();
    if (this.b[this.i] === RBRACE) {
      this.i++;
      return meta;
    }
    for (;;) {
      const k = this.key('a __metadata__ key');
      if (Object.prototype.hasOwnProperty.call(meta, k)) this.fail(`duplicate field "${excerpt(k)}" in __metadata__`);
      if (this.b[this.i] !== QUOTE) this.fail(`__metadata__ value for "${excerpt(k)}" is ${this.valueExcerpt()}, not a string`);
      // defineProperty: a key such as "__proto__" stays an ordinary entry.
      Object.defineProperty(meta, k, { value: this.string(), enumerable: true, writable: true, configurable: true });
      if (this.endOfMember(RBRACE)) return meta;
    }
  }

  private entry(name: string): RawEntry {
    const c = this.b[this.i];
    if (c === LBRACE) return this.entryObject(name);
    if (c === LBRACKET) return this.entryArray(name);
    return this.fail(`entry is ${this.valueExcerpt()}, not an object with "dtype", "shape" and "data_offsets"`, name);
  }

  private entryObject(name: string): RawEntry {
    this.i++;
    let dtype: Dtype | undefined;
    let shape: U64[] | undefined;
    let offsets: U64[] | undefined;
    let extra: Set<string> | null = null;
    this.ws();
    if (this.b[this.i] === RBRACE) this.i++;
    else {
      for (;;) {
        const field = this.fieldKey();
        if (field === 'dtype') {
          if (dtype !== undefined) this.fail('duplicate field "dtype" in the entry', name);
          dtype = this.dtype(name);
        } else if (field === 'shape') {
          if (shape !== undefined) this.fail('duplicate field "shape" in the entry', name);
          shape = this.uintList(name, 'shape');
        } else if (field === 'data_offsets') {
          if (offsets !== undefined) this.fail('duplicate field "data_offsets" in the entry', name);
          offsets = this.uintList(name, 'data_offsets');
        } else {
          // Unknown fields are ignored by the reference, but must still be valid JSON within its limits.
          extra ??= new Set();
          if (extra.has(field)) this.fail(`duplicate field "${excerpt(field)}" in the entry`, name);
          extra.add(field);
          this.skipValue(2, name);
        }
        if (this.endOfMember(RBRACE)) break;
      }
    }
    if (dtype === undefined) return this.missing(name, 'dtype');
    if (shape === undefined) return this.missing(name, 'shape');
    if (offsets === undefined) return this.missing(name, 'data_offsets');
    return this.made(name, dtype, shape, offsets);
  }

  private missing(name: string, field: Field): never {
    return this.fail(`entry has no "${field}" field (it needs "dtype", "shape" and "data_offsets")`, name);
  }

  /** serde's derive also reads a struct from a sequence of its fields in order: [dtype, shape, data_offsets]. */
  private entryArray(name: string): RawEntry {
    this.i++;
    const arity = (): never => this.fail('entry written as an array must have exactly 3 elements: [dtype, shape, data_offsets]', name);
    this.ws();
    if (this.b[this.i] === RBRACKET) return arity();
    const dtype = this.dtype(name);
    if (this.endOfMember(RBRACKET)) return arity();
    this.ws();
    const shape = this.uintList(name, 'shape');
    if (this.endOfMember(RBRACKET)) return arity();
    this.ws();
    const offsets = this.uintList(name, 'data_offsets');
    if (!this.endOfMember(RBRACKET)) return arity();
    return this.made(name, dtype, shape, offsets);
  }

  private made(name: string, dtype: Dtype, shape: U64[], offsets: U64[]): RawEntry {
    if (offsets.length !== 2) {
      this.fail(`"data_offsets" has ${offsets.length} element${offsets.length === 1 ? '' : 's'}, not 2 ([begin, end])`, name);
    }
    return { name, dtype, shape, begin: offsets[0]!, end: offsets[1]! };
  }

  /** A dtype name, or serde's one-key form {"F32": null}. */
  private dtype(name: string): Dtype {
    const c = this.b[this.i];
    let s: string;
    if (c === QUOTE) s = this.string();
    else if (c === LBRACE) {
      this.i++;
      this.ws();
      if (this.b[this.i] === RBRACE) this.fail(`"dtype" is {}, not a dtype name`, name);
      s = this.key('a dtype name');
      if (!this.literalIs('null')) this.fail(`"dtype" written as an object must be {"NAME": null}`, name);
      this.i += 4;
      this.ws();
      if (this.b[this.i] !== RBRACE) this.fail(`"dtype" written as an object must have a single key`, name);
      this.i++;
    } else return this.fail(`"dtype" is ${this.valueExcerpt()}, not a dtype name`, name);
    // Never guess: an unknown dtype name means we cannot know the element size.
    if (!DTYPE_SET.has(s)) {
      this.fail(`unknown dtype ${JSON.stringify(excerpt(s))} (known: BOOL, F4, F6_E2M3, F6_E3M2, U8, I8, F8_E5M2, F8_E4M3, F8_E8M0, F8_E4M3FNUZ, F8_E5M2FNUZ, I16, U16, F16, BF16, I32, U32, F32, C64, F64, I64, U64)`, name);
    }
    return s as Dtype;
  }

  /** A JSON array of usize (Vec<usize> or the (usize, usize) tuple). */
  private uintList(name: string, field: Field): U64[] {
    if (this.b[this.i] !== LBRACKET) this.fail(`"${field}" is ${this.valueExcerpt()}, not a list of non-negative integers`, name);
    this.i++;
    const out: U64[] = [];
    this.ws();
    if (this.b[this.i] === RBRACKET) {
      this.i++;
      return out;
    }
    for (;;) {
      this.ws();
      out.push(this.uint(name, field));
      if (this.endOfMember(RBRACKET)) return out;
    }
  }

  /** One usize, written as the reference requires: digits only, no leading zero, at most 2^64 - 1. */
  private uint(name: string, field: Field): U64 {
    const b = this.b;
    const start = this.i;
    let c = b[start];
    if (isDigit(c)) {
      let v = 0;
      let i = start;
      while (isDigit((c = b[i]))) {
        v = v * 10 + (c! - ZERO);
        i++;
      }
      // A fraction or exponent makes it a float to serde_json; a leading zero makes it invalid JSON.
      if (c === DOT || c === 0x65 || c === 0x45 || (b[start] === ZERO && i - start > 1)) {
        this.number();
        return this.notUint(name, field, start, 'is not an integer to the reference (it reads it as a float); write it without fraction or exponent');
      }
      this.i = i;
      if (i - start <= SAFE_DIGITS) return v;
      const big = BigInt(this.buf.toString('latin1', start, i));
      if (big > U64_MAX) return this.notUint(name, field, start, 'exceeds 2^64-1, the largest usize');
      return big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
    }
    if (c === MINUS) {
      this.number();
      return this.notUint(name, field, start, 'is negative or -0: the reference reads these as signed or float numbers, not sizes');
    }
    return this.fail(`"${field}" element ${this.valueExcerpt()} is not a non-negative integer`, name);
  }

  private notUint(name: string, field: Field, start: number, why: string): never {
    const written = this.buf.toString('latin1', start, this.i);
    return this.fail(`"${field}" element ${excerpt(written)} ${why}`, name);
  }

  /** Any JSON value (an ignored field), checked for syntax, depth, ranges and duplicate keys. */
  private skipValue(enclosing: number, tensor: string): void {
    const b = this.b;
    // One entry per open container: its duplicate-key set, or null for an array.
    const stack: (Set<string> | null)[] = [];
    for (;;) {
      this.ws();
      const c = b[this.i];
      if (c === LBRACE || c === LBRACKET) {
        if (enclosing + stack.length + 1 > MAX_JSON_DEPTH) {
          this.fail(`JSON nested deeper than ${MAX_JSON_DEPTH} levels (serde_json's recursion limit, which the reference reader has)`, tensor);
        }
        this.i++;
        this.ws();
        if (b[this.i] === (c === LBRACE ? RBRACE : RBRACKET)) this.i++;
        else {
          const keys = c === LBRACE ? new Set<string>() : null;
          stack.push(keys);
          if (keys) this.nestedKey(keys, tensor);
          continue;
        }
      } else if (c === QUOTE) this.string();
      else if (c === MINUS || isDigit(c)) this.number();
      else this.literal();
      // A value ended: close finished containers, or go on to the next element.
      for (;;) {
        const top = stack.length - 1;
        if (top < 0) return;
        const keys = stack[top]!;
        if (!this.endOfMember(keys ? RBRACE : RBRACKET)) {
          if (keys) this.nestedKey(keys, tensor);
          break;
        }
        stack.pop();
      }
    }
  }

  private nestedKey(keys: Set<string>, tensor: string): void {
    const k = this.key('a key');
    if (keys.has(k)) this.fail(`duplicate key "${excerpt(k)}" in an object inside the entry`, tensor);
    keys.add(k);
  }

  private literalIs(word: 'true' | 'false' | 'null'): boolean {
    for (let k = 0; k < word.length; k++) if (this.b[this.i + k] !== word.charCodeAt(k)) return false;
    return true;
  }

  private literal(): void {
    for (const w of ['true', 'false', 'null'] as const) {
      if (this.literalIs(w)) {
        this.i += w.length;
        return;
      }
    }
    this.syntax(this.i >= this.n ? 'unexpected end of the header: a value is missing' : 'expected a JSON value');
  }

  /** A JSON number; one that does not fit a float64 is refused, as serde_json does. */
  private number(): void {
    const b = this.b;
    const start = this.i;
    let i = start;
    if (b[i] === MINUS) i++;
    if (b[i] === ZERO) i++;
    else if (isDigit(b[i])) while (isDigit(b[i])) i++;
    else {
      this.i = i;
      this.syntax('invalid number: a digit must follow "-"');
    }
    if (isDigit(b[i])) {
      this.i = i;
      this.syntax('invalid number: a leading zero must not be followed by digits');
    }
    let plain = true;
    if (b[i] === DOT) {
      i++;
      if (!isDigit(b[i])) {
        this.i = i;
        this.syntax('invalid number: a digit must follow the decimal point');
      }
      while (isDigit(b[i])) i++;
      plain = false;
    }
    if (b[i] === 0x65 || b[i] === 0x45) {
      i++;
      if (b[i] === PLUS || b[i] === MINUS) i++;
      if (!isDigit(b[i])) {
        this.i = i;
        this.syntax('invalid number: a digit must follow the exponent mark');
      }
      while (isDigit(b[i])) i++;
      plain = false;
    }
    this.i = i;
    if (!plain || i - start > LONG_NUMBER) {
      const text = this.buf.toString('latin1', start, i);
      if (!Number.isFinite(Number(text))) {
        this.i = start;
        this.syntax(`number ${excerpt(text)} is out of the range of a 64-bit float`);
      }
    }
  }

  /** A JSON string (this.i at its opening quote); ASCII without escapes takes the fast path. */
  private string(): string {
    const b = this.b;
    const n = this.n;
    const start = this.i + 1;
    let i = start;
    for (; i < n; i++) {
      const c = b[i]!;
      if (c === QUOTE) {
        this.i = i + 1;
        return (this.buf as FastBuffer).latin1Slice(start, i);
      }
      if (c === BACKSLASH || c < 0x20 || c >= 0x80) break;
    }
    this.i = i;
    return this.stringSlow(start);
  }

  /** Escapes, control characters and non-ASCII (already validated as UTF-8 as a whole). */
  private stringSlow(start: number): string {
    const b = this.b;
    const parts: string[] = [];
    let run = start;
    for (;;) {
      if (this.i >= this.n) {
        this.i = start - 1;
        this.syntax('unterminated string');
      }
      const c = b[this.i]!;
      if (c === QUOTE) {
        parts.push(this.buf.toString('utf8', run, this.i));
        this.i++;
        return parts.join('');
      }
      if (c < 0x20) this.syntax('control character inside a string (it must be escaped)');
      if (c !== BACKSLASH) {
        this.i++;
        continue;
      }
      parts.push(this.buf.toString('utf8', run, this.i));
      parts.push(this.escape());
      run = this.i;
    }
  }

  /** One escape sequence at this.i (the backslash); surrogates must come in valid pairs. */
  private escape(): string {
    const at = this.i;
    const e = this.b[at + 1];
    this.i = at + 2;
    switch (e) {
      case QUOTE: return '"';
      case BACKSLASH: return '\\';
      case 0x2f: return '/';
      case 0x62: return '\b';
      case 0x66: return '\f';
      case 0x6e: return '\n';
      case 0x72: return '\r';
      case 0x74: return '\t';
      case 0x75: break;
      default:
        this.i = at;
        return this.syntax('invalid escape in a string');
    }
    const hi = this.hex4(at);
    if (hi >= 0xdc00 && hi <= 0xdfff) {
      this.i = at;
      this.syntax('lone surrogate \\u escape in a string (a trailing half without its leading half)');
    }
    if (hi < 0xd800 || hi > 0xdbff) return String.fromCharCode(hi);
    if (this.b[this.i] !== BACKSLASH || this.b[this.i + 1] !== 0x75) {
      this.i = at;
      this.syntax('lone surrogate \\u escape in a string (a leading half not followed by its trailing half)');
    }
    this.i += 2;
    const lo = this.hex4(at);
    if (lo < 0xdc00 || lo > 0xdfff) {
      this.i = at;
      this.syntax('lone surrogate \\u escape in a string (a leading half not followed by its trailing half)');
    }
    return String.fromCharCode(hi, lo);
  }

  private hex4(escapeAt: number): number {
    let v = 0;
    for (let k = 0; k < 4; k++) {
      const c = this.b[this.i + k];
      const d = c === undefined ? -1 : c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : c >= 0x41 && c <= 0x46 ? c - 0x37 : -1;
      if (d < 0) {
        this.i = escapeAt;
        this.syntax('\\u must be followed by 4 hex digits');
      }
      v = v * 16 + d;
    }
    this.i += 4;
    return v;
  }

  private ws(): void {
    const b = this.b;
    let i = this.i;
    while (isSpace(b[i])) i++;
    this.i = i;
  }

  /** The value starting here, as written, cut short: for "is X, not Y" messages. */
  private valueExcerpt(): string {
    const c = this.b[this.i];
    const startsValue = c === LBRACE || c === LBRACKET || c === QUOTE || c === MINUS || isDigit(c) || c === 0x74 || c === 0x66 || c === 0x6e;
    // Not even a JSON value: say so, rather than what the value should have been.
    if (!startsValue) this.syntax(this.i >= this.n ? 'unexpected end of the header: a value is missing' : 'expected a JSON value');
    return this.near(this.i);
  }

  private near(at: number): string {
    const end = Math.min(this.n, at + EXCERPT);
    const text = new TextDecoder().decode(this.b.subarray(at, end));
    return end < this.n ? `${text}...` : text;
  }

  private syntax(problem: string): never {
    const where = this.i >= this.n ? 'at the end of the header' : `at file offset ${8 + this.i}, near ${JSON.stringify(this.near(this.i))}`;
    throw new MoeInspectorError('format', `header is not valid JSON: ${problem} ${where}`, { file: this.file });
  }

  private fail(problem: string, tensor?: string): never {
    throw new MoeInspectorError('format', problem, tensor === undefined ? { file: this.file } : { file: this.file, tensor });
  }
}

/** Offset of the first byte that breaks UTF-8 (only called once isUtf8 said there is one). */
function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    const len = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    if (len === 0 || i + len > b.length) return i;
    if (len > 1 && !isUtf8(b.subarray(i, i + len))) return i;
    i += len;
  }
  return b.length;
}
