import { BulwarkError } from '../core/index.js';
import { chi2Sf as chiSquareSf } from '../core/index.js';

export interface TestResult {
  statistic: number;
  pValue: number;
}

/** Above this many cells the exact two-sample KS distribution costs too much; scipy switches at max(n1, n2) > 10,000. */
const EXACT_MAX_N = 10000;

function sortedCopy(v: ArrayLike<number>): Float64Array {
  return Float64Array.from(v).sort();
}

/** sup |F1 − F2| of two ascending samples (ties handled as scipy does: right-continuous ECDFs). */
export function ksStatisticSorted(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n1 = a.length;
  const n2 = b.length;
  let i = 0;
  let j = 0;
  let d = 0;
  while (i < n1 && j < n2) {
    const v = a[i] <= b[j] ? a[i] : b[j];
    while (i < n1 && a[i] === v) i++;
    while (j < n2 && b[j] === v) j++;
    const diff = Math.abs(i / n1 - j / n2);
    if (diff > d) d = diff;
  }
  return d;
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/**
 * P(D ≥ h/lcm) for two samples of sizes m and n under the null: one minus the probability
 * that a random interleaving's path stays strictly inside |i·n − j·m| < h·g. The path is
 * walked as a Markov chain (probabilities, not counts), so nothing overflows.
 */
function exactTwoSided(m: number, n: number, h: number): number {
  if (h <= 0) return 1;
  const bound = h * gcd(m, n);
  const row = new Float64Array(n + 1);
  row[0] = 1;
  for (let j = 1; j <= n; j++) {
    row[j] = Math.abs(-j * m) < bound ? (row[j - 1] * (n - j + 1)) / (m + n - j + 1) : 0;
  }
  for (let i = 1; i <= m; i++) {
    // Only j with |i·n − j·m| < bound can be non-zero.
    const lo = Math.max(0, Math.floor((i * n - bound) / m));
    const hi = Math.min(n, Math.ceil((i * n + bound) / m));
    for (let j = 0; j < lo; j++) row[j] = 0;
    for (let j = Math.max(lo, 0); j <= n; j++) {
      if (j > hi || Math.abs(i * n - j * m) >= bound) {
        row[j] = 0;
        continue;
      }
      const rest = m + n - i - j + 1;
      const fromUp = (row[j] * (m - i + 1)) / rest; // row[j] still holds (i−1, j)
      const fromLeft = j > 0 ? (row[j - 1] * (n - j + 1)) / rest : 0;
      row[j] = fromUp + fromLeft;
    }
  }
  return Math.min(1, Math.max(0, 1 - row[n]));
}

/** Kolmogorov's limiting upper tail Q(λ) = 2 Σ (−1)^(k−1) exp(−2k²λ²). */
function kolmogorovSf(lambda: number): number {
  if (lambda <= 0) return 1;
  if (lambda < 0.2) return 1;
  let s = 0;
  for (let k = 1; k < 200; k++) {
    const term = Math.exp(-2 * k * k * lambda * lambda);
    s += (k % 2 === 1 ? 1 : -1) * term;
    if (term < 1e-17) break;
  }
  return Math.min(1, Math.max(0, 2 * s));
}

/**
 * One-sample two-sided KS tail P(D_N ≥ d): exact (Marsaglia–Tsang–Wang matrix power) while
 * the matrix is small, otherwise the limiting distribution with Stephens' finite-N correction.
 */
export function kolmogorovOneSampleSf(d: number, N: number): number {
  if (d <= 0) return 1;
  if (d >= 1) return 0;
  const k = Math.floor(N * d) + 1;
  const size = 2 * k - 1;
  if (size > 150 || N > 100000) {
    const sq = Math.sqrt(N);
    return kolmogorovSf((sq + 0.12 + 0.11 / sq) * d);
  }
  const h = k - N * d;
  const H = new Float64Array(size * size);
  for (let i = 0; i < size; i++) for (let j = 0; j < size; j++) H[i * size + j] = i - j + 1 < 0 ? 0 : 1;
  for (let i = 0; i < size; i++) {
    H[i * size] -= h ** (i + 1);
    H[(size - 1) * size + i] -= h ** (size - i);
  }
  H[(size - 1) * size] += 2 * h - 1 > 0 ? (2 * h - 1) ** size : 0;
  for (let i = 0; i < size; i++) {
    for (let j = 0; j < size; j++) {
      if (i - j + 1 > 0) for (let g = 1; g <= i - j + 1; g++) H[i * size + j] /= g;
    }
  }
  const { m: Q, log2: e } = matPow(H, size, N);
  // P(D < d) = N!/N^N · (H^N)[k−1, k−1], computed in logs to stay in range.
  let logS = Math.log(Q[(k - 1) * size + k - 1]) + e * Math.LN2;
  for (let i = 1; i <= N; i++) logS += Math.log(i / N);
  const cdf = Math.exp(logS);
  return Math.min(1, Math.max(0, 1 - cdf));
}

function matMul(a: Float64Array, b: Float64Array, s: number): Float64Array {
  const out = new Float64Array(s * s);
  for (let i = 0; i < s; i++) {
    for (let k = 0; k < s; k++) {
      const v = a[i * s + k];
      if (v === 0) continue;
      for (let j = 0; j < s; j++) out[i * s + j] += v * b[k * s + j];
    }
  }
  return out;
}

/** A^p with a separate power-of-two exponent so the entries stay in range. */
function matPow(a: Float64Array, s: number, p: number): { m: Float64Array; log2: number } {
  if (p === 1) return { m: a, log2: 0 };
  const half = matPow(a, s, Math.floor(p / 2));
  let m = matMul(half.m, half.m, s);
  let log2 = 2 * half.log2;
  if (p % 2 === 1) m = matMul(a, m, s);
  const mid = m[Math.floor(s / 2) * s + Math.floor(s / 2)];
  if (mid > 1e140 || (mid > 0 && mid < 1e-140)) {
    const shift = Math.round(Math.log2(mid));
    const f = 2 ** -shift;
    for (let i = 0; i < m.length; i++) m[i] *= f;
    log2 += shift;
  }
  return { m, log2 };
}

export type KsMethod = 'auto' | 'exact' | 'asymp';

/** The two-sided p-value of a KS statistic for sizes n1, n2, chosen as scipy.stats.ks_2samp chooses (method 'auto'). */
export function ksPValue(d: number, n1: number, n2: number, method: KsMethod = 'auto'): number {
  const mode = method === 'auto' ? (Math.max(n1, n2) <= EXACT_MAX_N ? 'exact' : 'asymp') : method;
  if (mode === 'exact') {
    const g = gcd(n1, n2);
    const lcm = (n1 / g) * n2;
    const h = Math.round(d * lcm);
    return exactTwoSided(Math.max(n1, n2), Math.min(n1, n2), h);
  }
  const [m, n] = n1 >= n2 ? [n1, n2] : [n2, n1];
  const en = (m * n) / (m + n);
  return kolmogorovOneSampleSf(d, Math.round(en));
}

/** Two-sample two-sided Kolmogorov–Smirnov test, as scipy.stats.ks_2samp(a, b). */
export function ks2Samp(a: ArrayLike<number>, b: ArrayLike<number>, opts: { method?: KsMethod } = {}): TestResult {
  if (a.length === 0 || b.length === 0) throw new BulwarkError('E_USAGE', 'the KS test needs at least one value in each sample');
  const d = ksStatisticSorted(sortedCopy(a), sortedCopy(b));
  return { statistic: d, pValue: ksPValue(d, a.length, b.length, opts.method) };
}

/**
 * The smallest KS statistic whose p-value is below `alpha` for these sample sizes, so a
 * monitor testing hundreds of features compares statistics and computes p-values only for
 * the features it reports.
 */
export function ksCriticalValue(n1: number, n2: number, alpha: number): number {
  const g = gcd(n1, n2);
  const lcm = (n1 / g) * n2;
  if (Math.max(n1, n2) <= EXACT_MAX_N) {
    let lo = 0;
    let hi = lcm;
    // p(h) falls as h grows: find the first h with p < alpha.
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      if (ksPValue(mid / lcm, n1, n2) < alpha) hi = mid;
      else lo = mid + 1;
    }
    return lo / lcm;
  }
  let lo = 0;
  let hi = 1;
  for (let it = 0; it < 60; it++) {
    const mid = (lo + hi) / 2;
    if (ksPValue(mid, n1, n2) < alpha) hi = mid;
    else lo = mid;
  }
  return hi;
}

/** Evidently replaces empty bins' shares by this before taking logs. */
export const PSI_EMPTY_SHARE = 0.0001;
/** Evidently's number of equal-width bins for numeric PSI. */
export const PSI_BINS = 30;

/** PSI of two share vectors (same bins), empty shares replaced by PSI_EMPTY_SHARE. */
export function psiFromShares(reference: ArrayLike<number>, current: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < reference.length; i++) {
    const r = reference[i] === 0 ? PSI_EMPTY_SHARE : reference[i];
    const c = current[i] === 0 ? PSI_EMPTY_SHARE : current[i];
    s += (r - c) * Math.log(r / c);
  }
  return s;
}

/**
 * Population stability index of a numeric feature as Evidently computes it: `bins`
 * equal-width bins over the range of both samples together, shares with empty bins set to 0.0001.
 */
export function psi(reference: ArrayLike<number>, current: ArrayLike<number>, bins = PSI_BINS): number {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of [reference, current]) {
    for (let i = 0; i < v.length; i++) {
      if (v[i] < lo) lo = v[i];
      if (v[i] > hi) hi = v[i];
    }
  }
  if (!(hi > lo)) return 0;
  const ref = histogramShares(reference, lo, hi, bins);
  const cur = histogramShares(current, lo, hi, bins);
  return psiFromShares(ref, cur);
}

/** numpy.histogram shares over `bins` equal bins of [lo, hi] (last bin closed). */
export function histogramShares(v: ArrayLike<number>, lo: number, hi: number, bins: number): Float64Array {
  const out = new Float64Array(bins);
  const width = (hi - lo) / bins;
  for (let i = 0; i < v.length; i++) {
    let b = Math.floor((v[i] - lo) / width);
    if (b >= bins) b = bins - 1;
    if (b < 0) b = 0;
    out[b]++;
  }
  for (let b = 0; b < bins; b++) out[b] /= v.length;
  return out;
}

/**
 * Chi-square goodness of fit of current category counts against the reference's shares
 * scaled to the current total, as Evidently's chi-square drift test (scipy.stats.chisquare).
 * A category the reference never saw makes the statistic infinite (p = 0).
 */
export function chiSquareCounts(referenceCounts: ArrayLike<number>, currentCounts: ArrayLike<number>): TestResult {
  if (referenceCounts.length !== currentCounts.length) {
    throw new BulwarkError('E_DATA_SHAPE', `chi-square needs the same categories on both sides (${referenceCounts.length} vs ${currentCounts.length})`);
  }
  let refTotal = 0;
  let curTotal = 0;
  for (let i = 0; i < referenceCounts.length; i++) {
    refTotal += referenceCounts[i];
    curTotal += currentCounts[i];
  }
  if (refTotal === 0 || curTotal === 0) throw new BulwarkError('E_USAGE', 'chi-square needs counts on both sides');
  let stat = 0;
  let k = 0;
  for (let i = 0; i < referenceCounts.length; i++) {
    if (referenceCounts[i] === 0 && currentCounts[i] === 0) continue;
    k++;
    const expected = (referenceCounts[i] * curTotal) / refTotal;
    if (expected === 0) return { statistic: Infinity, pValue: 0 };
    stat += (currentCounts[i] - expected) ** 2 / expected;
  }
  return { statistic: stat, pValue: k > 1 ? chiSquareSf(stat, k - 1) : 1 };
}

/** Counts of each value in `v` over the sorted union of categories of both samples. */
export function categoryCounts(reference: ArrayLike<number>, current: ArrayLike<number>): { reference: Float64Array; current: Float64Array; categories: number[] } {
  const cats = [...new Set([...Array.from(reference), ...Array.from(current)])].sort((a, b) => a - b);
  const index = new Map(cats.map((c, i) => [c, i]));
  const r = new Float64Array(cats.length);
  const c = new Float64Array(cats.length);
  for (let i = 0; i < reference.length; i++) r[index.get(reference[i])!]++;
  for (let i = 0; i < current.length; i++) c[index.get(current[i])!]++;
  return { reference: r, current: c, categories: cats };
}

/** Two-sample chi-square on categorical values (Evidently's "chisquare" test). */
export function chiSquareContingency(reference: ArrayLike<number>, current: ArrayLike<number>): TestResult {
  const counts = categoryCounts(reference, current);
  return chiSquareCounts(counts.reference, counts.current);
}
