/**
 * Keeps reports readable: a 2880-long spectrum per expert x 32 experts x 3 projections is ~280k
 * numbers per layer. Above `maxFull` values we keep `keep` log-spaced positions (dense at the top,
 * where the decay is), shared by all experts so the curves stay comparable.
 */
export interface SampledSpectra {
  readonly values: number[][];
  readonly sampling: string;
  readonly index?: number[];
}

export function downsampleSpectrum(spectra: readonly Float64Array[], maxFull: number, keep: number): SampledSpectra {
  const n = spectra[0]?.length ?? 0;
  if (n <= maxFull) return { values: spectra.map((s) => Array.from(s)), sampling: 'full' };
  const index = logSpacedIndices(n, keep);
  return {
    values: spectra.map((s) => index.map((i) => s[i]!)),
    sampling: `downsampled:${index.length} (log-spaced 0-based positions in singular_value_index)`,
    index,
  };
}

/** Unique 0-based positions 0..n-1, log-spaced, always including the first and the last. */
export function logSpacedIndices(n: number, keep: number): number[] {
  const out = new Set<number>([0, n - 1]);
  for (let i = 0; i < keep; i++) out.add(Math.min(n - 1, Math.round(Math.exp((Math.log(n) * i) / (keep - 1)) - 1)));
  return [...out].sort((a, b) => a - b);
}
