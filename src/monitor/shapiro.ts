import { BulwarkError } from '../core/index.js';
import { normalQuantile, normalSf } from '../core/index.js';

export interface ShapiroWilkResult {
  /** The W statistic: near 1 for normal data, smaller the less normal. */
  statistic: number;
  pValue: number;
}

const C1 = [0, 0.221157, -0.147981, -2.07119, 4.434685, -2.706056];
const C2 = [0, 0.042981, -0.293762, -1.752461, 5.682633, -3.582633];
const C3 = [0.544, -0.39978, 0.025054, -6.714e-4];
const C4 = [1.3822, -0.77857, 0.062767, -0.0020322];
const C5 = [-1.5861, -0.31082, -0.083751, 0.0038915];
const C6 = [-0.4803, -0.082676, 0.0030302];
const G = [-2.273, 0.459];

function poly(c: readonly number[], x: number): number {
  let r = 0;
  for (let i = c.length - 1; i >= 0; i--) r = r * x + c[i];
  return r;
}

const coefficientCache = new Map<number, Float64Array>();

/**
 * The first half of Royston's approximate Shapiro–Wilk coefficients (positive, a[0] for the
 * extremes). They depend on n only, so a stream that tests at the same n again reuses them.
 */
export function shapiroCoefficients(n: number): Float64Array {
  const cached = coefficientCache.get(n);
  if (cached) return cached;
  const half = Math.floor(n / 2);
  const a = new Float64Array(half);
  if (n === 3) {
    a[0] = Math.SQRT1_2;
  } else {
    const an25 = n + 0.25;
    let summ2 = 0;
    for (let i = 0; i < half; i++) {
      a[i] = normalQuantile((i + 1 - 0.375) / an25, true);
      summ2 += a[i] * a[i];
    }
    summ2 *= 2;
    const ssumm2 = Math.sqrt(summ2);
    const rsn = 1 / Math.sqrt(n);
    const a1 = poly(C1, rsn) - a[0] / ssumm2;
    let first: number;
    let fac: number;
    if (n > 5) {
      first = 2;
      const a2 = -a[1] / ssumm2 + poly(C2, rsn);
      fac = Math.sqrt((summ2 - 2 * a[0] * a[0] - 2 * a[1] * a[1]) / (1 - 2 * a1 * a1 - 2 * a2 * a2));
      a[1] = a2;
    } else {
      first = 1;
      fac = Math.sqrt((summ2 - 2 * a[0] * a[0]) / (1 - 2 * a1 * a1));
    }
    a[0] = a1;
    for (let i = first; i < half; i++) a[i] = -a[i] / fac;
  }
  if (coefficientCache.size > 64) coefficientCache.clear();
  coefficientCache.set(n, a);
  return a;
}

/**
 * Shapiro–Wilk test of normality by Royston's (1995) algorithm AS R94, valid for 3 ≤ n ≤ 5000,
 * the method behind scipy.stats.shapiro. `sorted` says the values are already ascending.
 * Data with zero range give W = 1 and p = 1, as scipy does.
 */
export function shapiroWilk(values: ArrayLike<number>, opts: { sorted?: boolean } = {}): ShapiroWilkResult {
  const n = values.length;
  if (n < 3 || n > 5000) {
    throw new BulwarkError('E_USAGE', `the Shapiro–Wilk test needs between 3 and 5000 values, got ${n}`);
  }
  let x: Float64Array;
  if (opts.sorted) {
    x = values instanceof Float64Array ? values : Float64Array.from(values);
  } else {
    x = Float64Array.from(values).sort();
  }
  const range = x[n - 1] - x[0];
  if (!(range > 0)) return { statistic: 1, pValue: 1 };
  const a = shapiroCoefficients(n);
  let mean = 0;
  for (let i = 0; i < n; i++) mean += x[i];
  mean /= n;
  let ss = 0;
  for (let i = 0; i < n; i++) ss += ((x[i] - mean) / range) ** 2;
  let b = 0;
  for (let i = 0; i < a.length; i++) b += (a[i] * (x[n - 1 - i] - x[i])) / range;
  const w = Math.min(1, (b * b) / ss);
  return { statistic: w, pValue: shapiroPValue(w, n) };
}

function shapiroPValue(w: number, n: number): number {
  if (n === 3) {
    const pw = (6 / Math.PI) * (Math.asin(Math.sqrt(w)) - Math.PI / 3);
    return Math.max(0, Math.min(1, pw));
  }
  const w1 = Math.log(1 - w);
  if (!Number.isFinite(w1)) return 1;
  let y: number;
  let m: number;
  let s: number;
  if (n <= 11) {
    const gamma = poly(G, n);
    if (w1 >= gamma) return 1e-99;
    y = -Math.log(gamma - w1);
    m = poly(C3, n);
    s = Math.exp(poly(C4, n));
  } else {
    const xx = Math.log(n);
    m = poly(C5, xx);
    s = Math.exp(poly(C6, xx));
    y = w1;
  }
  return normalSf((y - m) / s);
}
