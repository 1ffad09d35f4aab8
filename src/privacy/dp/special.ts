/**
 * Special functions the accountants need to full double precision, far into the tails:
 * an accountant that rounds a 1e-12 tail probability to zero under-reports ε.
 */

const SQRT_PI = Math.sqrt(Math.PI);
const SQRT2 = Math.SQRT2;

/** erf by its Taylor series: accurate to a few ulps for |x| < 2.5. */
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
 * exp(x²)·erfc(x) for x ≥ 2.5, by the continued fraction
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

/** Standard normal CDF Φ(x). */
export function normalCdf(x: number): number {
  return 0.5 * erfc(-x / SQRT2);
}

/** Standard normal survival function 1 − Φ(x), accurate where Φ(x) rounds to 1. */
export function normalSf(x: number): number {
  return 0.5 * erfc(x / SQRT2);
}

/** log Φ(x), accurate far into the lower tail (scipy's log_ndtr). */
export function logNormalCdf(x: number): number {
  return Math.log(0.5) + logErfc(-x / SQRT2);
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

/** Inverse of Φ by Newton's method from a rational first guess (for calibration, not hot loops). */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) return p === 0 ? -Infinity : p === 1 ? Infinity : NaN;
  // Acklam-style start, refined: Newton on Φ(x) − p converges in a few steps from here.
  const t = Math.sqrt(-2 * Math.log(Math.min(p, 1 - p)));
  let x = t - (2.515517 + 0.802853 * t + 0.010328 * t * t) / (1 + 1.432788 * t + 0.189269 * t * t + 0.001308 * t * t * t);
  if (p < 0.5) x = -x;
  for (let i = 0; i < 50; i++) {
    // Φ(x) − p, computed from the nearer tail so no digits cancel.
    const err = p < 0.5 ? normalCdf(x) - p : 1 - p - normalSf(x);
    const pdf = Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);
    if (pdf === 0) break;
    const step = err / pdf;
    x -= step;
    if (Math.abs(step) < 1e-14 * Math.max(1, Math.abs(x))) break;
  }
  return x;
}
