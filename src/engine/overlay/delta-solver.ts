/**
 * What the overlay needs from a singular value solver, and nothing more. The engine's
 * implementation (numerics-solver.ts) runs on ONNX Runtime; tests hold it to an exact float64 one.
 */
import type { ExpertMatrix } from '../layouts/types';

export interface DeltaFactors {
  /** U_r diag(S_r): [out, r] row-major (the singular values folded in, as the overlay stores it). */
  readonly us: Float32Array;
  /** V_r^T: [r, in] row-major. */
  readonly vt: Float32Array;
  /** The r leading singular values, descending. */
  readonly s: Float64Array;
}

export interface DeltaSolver {
  /** Singular values of the delta, descending (trailing values below the solver's resolution may be 0). */
  spectrum(delta: ExpertMatrix): Promise<Float64Array>;
  /** The best rank-r approximation's factors (Eckart-Young): top r singular triplets. */
  factors(delta: ExpertMatrix, rank: number): Promise<DeltaFactors>;
}
