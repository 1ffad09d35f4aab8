/** Small statistics the detectors share: χ² quantiles, order statistics, ROC AUC. */

/** ln Γ(x), Lanczos approximation (g = 7), accurate to ~1e-15 for x > 0. */
function lnGamma(x: number): number {
  const c = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - lnGamma(1 - x);
  x -= 1;
  let a = c[0];
  const t = x + 7.5;
  for (let i = 1; i < 9; i++) a += c[i] / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Regularised lower incomplete gamma P(a, x) (series below a + 1, continued fraction above). */
export function gammaP(a: number, x: number): number {
  if (x <= 0) return 0;
  const lnPre = a * Math.log(x) - x - lnGamma(a);
  if (x < a + 1) {
    let sum = 1 / a;
    let term = sum;
    for (let n = 1; n < 1000; n++) {
      term *= x / (a + n);
      sum += term;
      if (Math.abs(term) < Math.abs(sum) * 1e-16) break;
    }
    return Math.min(1, sum * Math.exp(lnPre));
  }
  // Lentz's continued fraction for Q(a, x).
  let b = x + 1 - a;
  let c = 1 / 1e-300;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 1000; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < 1e-300) d = 1e-300;
    c = b + an / c;
    if (Math.abs(c) < 1e-300) c = 1e-300;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-16) break;
  }
  return Math.max(0, 1 - Math.exp(lnPre) * h);
}

/** Regularised upper incomplete gamma Q(a, x) = 1 − P(a, x), computed directly so that tails far below 1e-16 keep their value. */
export function gammaQ(a: number, x: number): number {
  if (x <= 0) return 1;
  if (x < a + 1) return Math.max(0, 1 - gammaP(a, x));
  const lnPre = a * Math.log(x) - x - lnGamma(a);
  let b = x + 1 - a;
  let c = 1 / 1e-300;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 1000; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < 1e-300) d = 1e-300;
    c = b + an / c;
    if (Math.abs(c) < 1e-300) c = 1e-300;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-16) break;
  }
  return Math.min(1, Math.exp(lnPre) * h);
}

/** Upper tail P(χ²_k > x). */
export function chi2Sf(x: number, k: number): number {
  return gammaQ(k / 2, x / 2);
}

/** The x with P(χ²_k > x) = p, for tails as small as 1e-300 (bisection). */
export function chi2Isf(p: number, k: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`chi2Isf: p must be in (0, 1), got ${p}`);
  let lo = 0;
  let hi = Math.max(1, k);
  while (chi2Sf(hi, k) > p) hi *= 2;
  for (let i = 0; i < 200; i++) {
    const mid = 0.5 * (lo + hi);
    if (chi2Sf(mid, k) > p) lo = mid;
    else hi = mid;
    if (hi - lo <= 1e-13 * hi) break;
  }
  return 0.5 * (lo + hi);
}

export function chi2Cdf(x: number, k: number): number {
  return gammaP(k / 2, x / 2);
}

/** The p-quantile of χ² with k degrees of freedom (bisection on the CDF; exact to ~1e-12 relative). */
export function chi2Quantile(p: number, k: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`chi2Quantile: p must be in (0, 1), got ${p}`);
  let lo = 0;
  let hi = Math.max(1, k);
  while (chi2Cdf(hi, k) < p) hi *= 2;
  for (let i = 0; i < 200; i++) {
    const mid = 0.5 * (lo + hi);
    if (chi2Cdf(mid, k) < p) lo = mid;
    else hi = mid;
    if (hi - lo <= 1e-13 * hi) break;
  }
  return 0.5 * (lo + hi);
}

/** The q-quantile with linear interpolation between order statistics (NumPy's default). */
export function quantile(values: ArrayLike<number>, q: number): number {
  const n = values.length;
  if (n === 0) return NaN;
  const sorted = Float64Array.from(values).sort();
  const pos = q * (n - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(n - 1, lo + 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

export function median(values: ArrayLike<number>): number {
  return quantile(values, 0.5);
}

/** Median absolute deviation scaled by 1.4826, so it estimates σ for normal data. */
export function mad(values: ArrayLike<number>): { median: number; scale: number } {
  const m = median(values);
  const dev = Float64Array.from(values, (v) => Math.abs(v - m));
  return { median: m, scale: 1.4826 * median(dev) };
}

/** Indices of the k smallest values (in no particular order), by quickselect: O(n). */
export function smallestK(values: Float64Array, k: number, scratch?: Int32Array): Int32Array {
  const n = values.length;
  const idx = scratch && scratch.length === n ? scratch : new Int32Array(n);
  for (let i = 0; i < n; i++) idx[i] = i;
  if (k >= n) return idx.slice(0, n);
  let lo = 0;
  let hi = n - 1;
  while (lo < hi) {
    const pivot = values[idx[(lo + hi) >>> 1]];
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (values[idx[i]] < pivot) i++;
      while (values[idx[j]] > pivot) j--;
      if (i <= j) {
        const t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
        i++;
        j--;
      }
    }
    if (k - 1 <= j) hi = j;
    else if (k - 1 >= i) lo = i;
    else break;
  }
  return idx.slice(0, k);
}

/**
 * Area under the ROC curve of `scores` (higher = more positive) against `positive`, with
 * ties counted half (the Mann–Whitney statistic). NaN when either class is empty.
 */
export function rocAuc(scores: ArrayLike<number>, positive: ArrayLike<boolean | number>): number {
  const n = scores.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a] - scores[b]);
  let pos = 0;
  let rankSum = 0;
  for (let i = 0; i < n; ) {
    let j = i;
    while (j + 1 < n && scores[order[j + 1]] === scores[order[i]]) j++;
    const avgRank = (i + j) / 2 + 1;
    for (let t = i; t <= j; t++) {
      if (positive[order[t]]) {
        pos++;
        rankSum += avgRank;
      }
    }
    i = j + 1;
  }
  const neg = n - pos;
  if (pos === 0 || neg === 0) return NaN;
  return (rankSum - (pos * (pos + 1)) / 2) / (pos * neg);
}

/** True-positive and false-positive rates, precision and recall of a flag set against the truth. */
export function detectionRates(flagged: ArrayLike<boolean | number>, positive: ArrayLike<boolean | number>): { tpr: number; fpr: number; precision: number; recall: number; tp: number; fp: number; positives: number; negatives: number } {
  let tp = 0;
  let fp = 0;
  let positives = 0;
  for (let i = 0; i < positive.length; i++) {
    if (positive[i]) positives++;
    if (flagged[i]) {
      if (positive[i]) tp++;
      else fp++;
    }
  }
  const negatives = positive.length - positives;
  const tpr = positives > 0 ? tp / positives : NaN;
  return { tpr, fpr: negatives > 0 ? fp / negatives : NaN, precision: tp + fp > 0 ? tp / (tp + fp) : NaN, recall: tpr, tp, fp, positives, negatives };
}
