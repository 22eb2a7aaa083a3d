/**
 * Exact value tables for the 8-bit float formats, built from their definitions (fact sheet
 * section 3): every code maps to the f32 it denotes (all are exactly representable).
 */
interface MiniFloatSpec {
  readonly expBits: number;
  readonly manBits: number;
  readonly bias: number;
  /** How the format spends its special codes. */
  readonly specials: 'fn' | 'ieee' | 'fnuz';
}

function decodeCode(code: number, f: MiniFloatSpec): number {
  const total = 1 + f.expBits + f.manBits;
  const sign = (code >> (total - 1)) & 1;
  const exp = (code >> f.manBits) & ((1 << f.expBits) - 1);
  const man = code & ((1 << f.manBits) - 1);
  const maxExp = (1 << f.expBits) - 1;
  if (f.specials === 'fnuz' && code === 1 << (total - 1)) return Number.NaN; // the "negative zero" code is NaN
  if (f.specials === 'fn' && exp === maxExp && man === (1 << f.manBits) - 1) return Number.NaN; // only S.1111.111
  if (f.specials === 'ieee' && exp === maxExp) return man === 0 ? (sign ? -Infinity : Infinity) : Number.NaN;
  const mag = exp === 0 ? (man / (1 << f.manBits)) * 2 ** (1 - f.bias) : (1 + man / (1 << f.manBits)) * 2 ** (exp - f.bias);
  return sign ? -mag : mag;
}

function table(f: MiniFloatSpec): Float32Array {
  const t = new Float32Array(256);
  for (let c = 0; c < 256; c++) t[c] = decodeCode(c, f);
  return t;
}

export const F8_E4M3_TABLE = table({ expBits: 4, manBits: 3, bias: 7, specials: 'fn' });
export const F8_E5M2_TABLE = table({ expBits: 5, manBits: 2, bias: 15, specials: 'ieee' });
export const F8_E4M3FNUZ_TABLE = table({ expBits: 4, manBits: 3, bias: 8, specials: 'fnuz' });
export const F8_E5M2FNUZ_TABLE = table({ expBits: 5, manBits: 2, bias: 16, specials: 'fnuz' });

/** E8M0: an unsigned power of two 2^(b-127); 0xFF is NaN; there is no zero. */
export const F8_E8M0_TABLE = (() => {
  const t = new Float32Array(256);
  for (let b = 0; b < 256; b++) t[b] = b === 255 ? Number.NaN : 2 ** (b - 127);
  return t;
})();

/** IEEE half: 65536 entries, built from the definition (subnormals, inf, NaN). */
export const F16_TABLE = (() => {
  const t = new Float32Array(65536);
  for (let c = 0; c < 65536; c++) t[c] = decodeCode16(c);
  return t;
})();

function decodeCode16(c: number): number {
  const sign = c >> 15 ? -1 : 1;
  const exp = (c >> 10) & 0x1f;
  const man = c & 0x3ff;
  if (exp === 0x1f) return man === 0 ? sign * Infinity : Number.NaN;
  return sign * (exp === 0 ? (man / 1024) * 2 ** -14 : (1 + man / 1024) * 2 ** (exp - 15));
}
