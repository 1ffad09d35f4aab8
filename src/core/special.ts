/**
 * Special functions several areas need (χ² tails for outlier cut-offs and drift tests, the
 * normal distribution for Shapiro–Wilk and the privacy accountants, log-space sums): one
 * implementation, checked against SciPy in the tests.
 */

const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905,
  -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];

/** ln Γ(x), Lanczos approximation (g = 7), accurate to ~1e-15. */
export function logGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - logGamma(1 - x);
  const z = x - 1;
  let a = LANCZOS[0];
  const t = z + 7.5;
  for (let i = 1; i < 9; i++) a += LANCZOS[i] / (z + i);
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}

/** P(a, x) by its series, which converges fast below a + 1. */
function gammaPSeries(a: number, x: number, lead: number): number {
  let sum = 1 / a;
  let term = sum;
  for (let n = 1; n < 10000; n++) {
    term *= x / (a + n);
    sum += term;
    if (Math.abs(term) < Math.abs(sum) * 1e-16) break;
  }
  return sum * Math.exp(lead);
}

/** Q(a, x) by its continued fraction (modified Lentz), for x ≥ a + 1: tails far below 1e-16 keep their value. */
function gammaQFraction(a: number, x: number, lead: number): number {
  const tiny = 1e-300;
  let b = x + 1 - a;
  let c = 1 / tiny;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 10000; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-16) break;
  }
  return Math.exp(lead) * h;
}

/** Regularized lower incomplete gamma P(a, x). */
export function gammaP(a: number, x: number): number {
  if (x <= 0) return 0;
  if (!Number.isFinite(x)) return 1;
  const lead = a * Math.log(x) - x - logGamma(a);
  return x < a + 1 ? Math.min(1, gammaPSeries(a, x, lead)) : Math.max(0, 1 - gammaQFraction(a, x, lead));
}

/** Regularized upper incomplete gamma Q(a, x) = 1 − P(a, x), computed directly in its tail. */
export function gammaQ(a: number, x: number): number {
  if (x <= 0) return 1;
  if (!Number.isFinite(x)) return 0;
  const lead = a * Math.log(x) - x - logGamma(a);
  return x < a + 1 ? Math.max(0, 1 - gammaPSeries(a, x, lead)) : Math.min(1, gammaQFraction(a, x, lead));
}

/** Upper tail P(χ²_k > x). */
export function chi2Sf(x: number, k: number): number {
  return gammaQ(k / 2, x / 2);
}

export function chi2Cdf(x: number, k: number): number {
  return gammaP(k / 2, x / 2);
}

/** Bisection for the x where `below(x)` turns false, to ~1e-13 relative. */
function bisectUp(k: number, below: (x: number) => boolean): number {
  let lo = 0;
  let hi = Math.max(1, k);
  while (below(hi)) hi *= 2;
  for (let i = 0; i < 200; i++) {
    const mid = 0.5 * (lo + hi);
    if (below(mid)) lo = mid;
    else hi = mid;
    if (hi - lo <= 1e-13 * hi) break;
  }
  return 0.5 * (lo + hi);
}

/** The x with P(χ²_k > x) = p, for tails as small as 1e-300. */
export function chi2Isf(p: number, k: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`chi2Isf: p must be in (0, 1), got ${p}`);
  return bisectUp(k, (x) => chi2Sf(x, k) > p);
}

/** The p-quantile of χ² with k degrees of freedom. */
export function chi2Quantile(p: number, k: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`chi2Quantile: p must be in (0, 1), got ${p}`);
  return bisectUp(k, (x) => chi2Cdf(x, k) < p);
}

/*
 * The error function to full double precision far into the tails (the privacy accountants need
 * it: an accountant that rounds a 1e-12 tail probability to zero under-reports ε).
 */
const SQRT_PI = Math.sqrt(Math.PI);

/** erf by its Taylor series: accurate to a few ulps below SPLIT. */
function erfSeries(x: number): number {
  const x2 = x * x;
  let term = x;
  let sum = x;
  for (let n = 1; n < 200; n++) {
    term *= -x2 / n;
    const add = term / (2 * n + 1);
    sum += add;
    if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
  }
  return (2 / SQRT_PI) * sum;
}

/**
 * exp(x²)·erfc(x) from SPLIT up, by the continued fraction
 * erfc(x) = e^{-x²}/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …)))), evaluated with Lentz's method.
 */
function erfcxFraction(x: number): number {
  const tiny = 1e-300;
  let f = x;
  let c = x;
  let d = 0;
  for (let n = 1; n < 500; n++) {
    const a = n / 2;
    d = x + a * d;
    d = Math.abs(d) < tiny ? tiny : d;
    c = x + a / c;
    c = Math.abs(c) < tiny ? tiny : c;
    d = 1 / d;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return 1 / (SQRT_PI * f);
}

const SPLIT = 1.5;

/** The scaled complementary error function exp(x²)·erfc(x), for x ≥ 0 (no overflow). */
export function erfcx(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x < 0) return 2 * Math.exp(x * x) - erfcx(-x);
  if (x < SPLIT) return Math.exp(x * x) * (1 - erfSeries(x));
  if (x > 1e8) return 1 / (SQRT_PI * x);
  return erfcxFraction(x);
}

export function erfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x < 0) return 2 - erfc(-x);
  if (x < SPLIT) return 1 - erfSeries(x);
  if (x > 27.3) return 0;
  return Math.exp(-x * x) * erfcxFraction(x);
}

/** log(erfc(x)), finite for every finite x. */
export function logErfc(x: number): number {
  if (x < SPLIT) return Math.log(erfc(x));
  return -x * x + Math.log(erfcx(x));
}

export function normalCdf(z: number): number {
  return 0.5 * erfc(-z / Math.SQRT2);
}

export function normalSf(z: number): number {
  return 0.5 * erfc(z / Math.SQRT2);
}

/** log Φ(x), accurate far into the lower tail (scipy's log_ndtr). */
export function logNormalCdf(x: number): number {
  return Math.log(0.5) + logErfc(-x / Math.SQRT2);
}

/** log(e^a + e^b) without overflow. */
export function logAdd(a: number, b: number): number {
  const lo = Math.min(a, b);
  const hi = Math.max(a, b);
  if (lo === -Infinity) return hi;
  return Math.log1p(Math.exp(lo - hi)) + hi;
}

/** log(e^a − e^b) for a ≥ b. */
export function logSub(a: number, b: number): number {
  if (a < b) throw new RangeError('logSub: the result would be negative');
  if (b === -Infinity) return a;
  if (a === b) return -Infinity;
  const d = a - b;
  // expm1 overflows beyond ~709, where e^a − e^b is e^a to double precision anyway.
  return d > 700 ? a : Math.log(Math.expm1(d)) + b;
}

const A = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
const B = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
const C = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
const D = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];

/**
 * Normal quantile: Acklam's rational approximation (relative error < 1.2e-9), polished by one
 * Halley step to full precision unless `fast` (the Shapiro–Wilk coefficients need only 1e-9).
 */
export function normalQuantile(p: number, fast = false): number {
  if (p <= 0) return -Infinity;
  if (p >= 1) return Infinity;
  let x: number;
  if (p < 0.02425) {
    const q = Math.sqrt(-2 * Math.log(p));
    x = (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5]) / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1);
  } else if (p <= 1 - 0.02425) {
    const q = p - 0.5;
    const r = q * q;
    x = ((((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q) / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1);
  } else {
    const q = Math.sqrt(-2 * Math.log(1 - p));
    x = -(((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5]) / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1);
  }
  if (fast) return x;
  const e = p < 0.5 ? normalCdf(x) - p : -(normalSf(x) - (1 - p));
  const u = e * Math.sqrt(2 * Math.PI) * Math.exp((x * x) / 2);
  return x - u / (1 + (x * u) / 2);
}
