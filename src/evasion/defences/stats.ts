/**
 * The few distribution functions randomized smoothing needs, in double precision: the
 * normal CDF and quantile, the regularised incomplete beta function and its inverse (for
 * Clopper–Pearson bounds), and the two-sided binomial test at p = ½. Checked against
 * SciPy in the tests. Written here rather than imported: no small, maintained npm package
 * offers an inverse incomplete beta accurate in the far tails these bounds live in.
 */
import { gammaP, gammaQ, logGamma } from '../../core/index.js';

const EPS = 1e-16;
const TINY = 1e-300;

/** Standard normal CDF Φ(x), accurate in both tails. */
export function normCdf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x === Infinity) return 1;
  if (x === -Infinity) return 0;
  return x >= 0 ? 0.5 + 0.5 * gammaP(0.5, (x * x) / 2) : 0.5 * gammaQ(0.5, (x * x) / 2);
}

/** Standard normal quantile Φ⁻¹(p). */
export function normPpf(p: number): number {
  if (!(p >= 0 && p <= 1)) return NaN;
  if (p === 0) return -Infinity;
  if (p === 1) return Infinity;
  // Bisection to a bracket, then Newton steps on the accurate CDF.
  let lo = -40;
  let hi = 40;
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    if (normCdf(mid) < p) lo = mid;
    else hi = mid;
  }
  let x = (lo + hi) / 2;
  for (let i = 0; i < 4; i++) {
    const pdf = Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);
    if (pdf < 1e-300) break;
    const step = (normCdf(x) - p) / pdf;
    x -= step;
    if (Math.abs(step) < 1e-15 * Math.max(1, Math.abs(x))) break;
  }
  return x;
}

function betaContinuedFraction(a: number, b: number, x: number): number {
  const qab = a + b;
  const qap = a + 1;
  const qam = a - 1;
  let c = 1;
  let d = 1 - (qab * x) / qap;
  if (Math.abs(d) < TINY) d = TINY;
  d = 1 / d;
  let h = d;
  for (let m = 1; m < 100000; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((qam + m2) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < TINY) d = TINY;
    c = 1 + aa / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (qab + m) * x) / ((a + m2) * (qap + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < TINY) d = TINY;
    c = 1 + aa / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < EPS) break;
  }
  return h;
}

/** Regularised incomplete beta I_x(a, b), a, b > 0. */
export function betaInc(a: number, b: number, x: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const lnFront = logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log1p(-x);
  if (x < (a + 1) / (a + b + 2)) return (Math.exp(lnFront) * betaContinuedFraction(a, b, x)) / a;
  return 1 - (Math.exp(lnFront) * betaContinuedFraction(b, a, 1 - x)) / b;
}

/** Quantile of Beta(a, b): the x with I_x(a, b) = p (bisection to double precision). */
export function betaPpf(p: number, a: number, b: number): number {
  if (!(p >= 0 && p <= 1) || !(a > 0) || !(b > 0)) return NaN;
  if (p === 0) return 0;
  if (p === 1) return 1;
  let lo = 0;
  let hi = 1;
  for (let i = 0; i < 200 && hi - lo > 1e-17; i++) {
    const mid = (lo + hi) / 2;
    if (mid === lo || mid === hi) break;
    if (betaInc(a, b, mid) < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/**
 * One-sided Clopper–Pearson lower bound on a binomial proportion: with probability at
 * least 1 − alpha the true proportion is at least this, having seen k successes in n.
 */
export function clopperPearsonLower(k: number, n: number, alpha: number): number {
  checkCounts(k, n, alpha);
  return k === 0 ? 0 : betaPpf(alpha, k, n - k + 1);
}

/** One-sided Clopper–Pearson upper bound (confidence 1 − alpha). */
export function clopperPearsonUpper(k: number, n: number, alpha: number): number {
  checkCounts(k, n, alpha);
  return k === n ? 1 : betaPpf(1 - alpha, k + 1, n - k);
}

/** P(X ≤ k) for X ~ Binomial(n, p). */
export function binomCdf(k: number, n: number, p: number): number {
  if (k < 0) return 0;
  if (k >= n) return 1;
  return betaInc(n - k, k + 1, 1 - p);
}

/** Two-sided exact binomial test of H0: p = ½ (SciPy's `binomtest(k, n, 0.5).pvalue`). */
export function binomTestHalf(k: number, n: number): number {
  checkCounts(k, n, 0.5);
  if (n === 0 || 2 * k === n) return 1;
  const m = Math.min(k, n - k);
  return Math.min(1, 2 * binomCdf(m, n, 0.5));
}

function checkCounts(k: number, n: number, alpha: number): void {
  if (!Number.isInteger(k) || !Number.isInteger(n) || k < 0 || n < 0 || k > n) throw new RangeError(`need integer counts 0 ≤ k ≤ n, got k=${k}, n=${n}`);
  if (!(alpha > 0 && alpha < 1)) throw new RangeError(`alpha must be in (0, 1), got ${alpha}`);
}
