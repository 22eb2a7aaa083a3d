/**
 * The null distribution of neuron matching, and the thresholds derived from it (README,
 * "Provenance: neuron matching").
 *
 * A neuron here is a unit vector of dimension D (three unit parts of length H: gate row, up row,
 * down column, each normalised, scaled by 1/sqrt(3); D = 3H, or 2H without a gate). Two independent
 * isotropic neurons have cosine c = mean of three independent part cosines, each with mean 0 and
 * variance 1/H, so c has mean 0 and variance exactly 1/D and is close to N(0, 1/D) for D in the
 * hundreds. A neuron's best match among I independent candidates is the maximum of I such
 * cosines: P(max <= t) = Phi(t sqrt(D))^I. The threshold that a neuron's best null match exceeds
 * with probability alpha is therefore
 *     tau(D, I, alpha) = Phi^{-1}((1 - alpha)^{1/I}) / sqrt(D)
 * (the extreme-value correction: for large I this grows like sqrt(2 ln I / D)). A matched cosine
 * above tau is "shared": expected false shared share alpha per neuron.
 * An expert pair shares neurons when its count of shared neurons exceeds what Binomial(I, alpha)
 * reaches with probability ~3e-7 (five standard deviations, at least 3 neurons).
 */

/** Standard normal quantile (Acklam's rational approximation, refined by one Halley step against erfc below). */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`normalQuantile: p must be in (0, 1), got ${p}`);
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const lo = 0.02425;
  let x: number;
  if (p < lo) {
    const q = Math.sqrt(-2 * Math.log(p));
    x = (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  } else if (p <= 1 - lo) {
    const q = p - 0.5;
    const r = q * q;
    x = ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) / (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1);
  } else {
    const q = Math.sqrt(-2 * Math.log(1 - p));
    x = -(((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  }
  const e = 0.5 * erfc(-x / Math.SQRT2) - p;
  const u = e * Math.sqrt(2 * Math.PI) * Math.exp((x * x) / 2);
  return x - u / (1 + (x * u) / 2);
}

/** Complementary error function (Numerical Recipes' erfcc Chebyshev fit, relative error < 1.2e-7 everywhere). */
export function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? r : 2 - r;
}

/** Default per-neuron false-match probability. */
export const DEFAULT_ALPHA = 1e-3;

/** tau(D, I, alpha): the cosine a neuron's best match among I independent random candidates exceeds with probability alpha. */
export function matchThreshold(dim: number, candidates: number, alpha = DEFAULT_ALPHA): number {
  const perCandidate = Math.pow(1 - alpha, 1 / Math.max(1, candidates)); // P(one null cosine <= tau)
  // 1 - (1-alpha)^(1/I) underflows the subtraction for tiny alpha/I: use -expm1(log1p(-alpha)/I).
  const tail = -Math.expm1(Math.log1p(-alpha) / Math.max(1, candidates));
  const z = tail < 1e-10 ? -normalQuantile(tail) : normalQuantile(perCandidate);
  return z / Math.sqrt(dim);
}

/** Smallest shared-neuron count of an expert pair that the null (Binomial(I, alpha)) reaches with probability < ~3e-7. */
export function minSharedCount(neurons: number, alpha = DEFAULT_ALPHA): number {
  const mean = neurons * alpha;
  return Math.max(3, Math.ceil(mean + 5 * Math.sqrt(mean * (1 - alpha)) + 1));
}
