/** The rank rule for overlay commands, typed by the user in one input box. */
import type { OverlayRanks } from '../shared/messages';

/** "0.95" -> keep 95% energy; "8,16,8" -> fixed gate,up,down ranks; "x4" -> target compression ratio 4. */
export function parseOverlayRanks(text: string): OverlayRanks | string {
  const s = text.trim().toLowerCase();
  const fixed = /^(\d+)\s*,\s*(\d+)\s*,\s*(\d+)$/.exec(s);
  if (fixed) {
    const [gate, up, down] = fixed.slice(1).map(Number) as [number, number, number];
    if (gate < 1 || up < 1 || down < 1) return 'ranks must be >= 1';
    return { kind: 'fixed', gate, up, down };
  }
  const ratio = /^x\s*(\d+(?:\.\d+)?)$/.exec(s);
  if (ratio) {
    const r = Number(ratio[1]);
    return r > 1 ? { kind: 'target-ratio', ratio: r } : 'a target ratio must be > 1 (e.g. x4)';
  }
  if (/^(0(\.\d+)?|1(\.0+)?)$/.test(s)) {
    const e = Number(s);
    return e > 0 && e < 1 ? { kind: 'energy', energy: e } : 'energy must be strictly between 0 and 1';
  }
  return 'type an energy share (0.95), three ranks gate,up,down (8,16,8) or a target ratio (x4)';
}
