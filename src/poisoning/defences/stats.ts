/** Small statistics the detectors share: order statistics, ROC AUC (χ² tails come from core). */

export { chi2Isf, chi2Quantile, chi2Sf } from '../../core/special.js';

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
