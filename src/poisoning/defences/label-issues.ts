import type { Neighbours } from './knn.js';

export interface LabelIssues {
  /** 1 − the out-of-fold probability of the given label: higher = more likely mislabelled. */
  readonly score: Float64Array;
  /** Share of the k nearest rows (unweighted) whose label differs: kNN label consistency. */
  readonly disagreement?: Float64Array;
  readonly flagged: Uint8Array;
  /** The class the out-of-fold predictions favour. */
  readonly suggested: Int32Array;
  /** Confident learning's per-class thresholds: the mean self-confidence of each class. */
  readonly thresholds: Float64Array;
  /** The probability of the given label below which a row is flagged whatever the thresholds say. */
  readonly floor: number;
}

/**
 * Out-of-fold class probabilities from the labels of each row's nearest other rows, the
 * votes weighted by inverse distance (so an identical row with another label counts most).
 * Leaving the row itself out makes these out-of-fold predictions in the limit of n folds.
 */
export function knnProbabilities(nb: Neighbours, y: Int32Array, numClasses: number): Float64Array {
  const n = y.length;
  const k = nb.k;
  const p = new Float64Array(n * numClasses);
  // Inverse-distance weights need a floor: a scale-free one, from the typical neighbour distance.
  let sum = 0;
  for (let i = 0; i < n * k; i++) sum += Math.sqrt(nb.dist2[i]);
  const eps = Math.max(1e-12, (sum / Math.max(1, n * k)) * 1e-3);
  for (let i = 0; i < n; i++) {
    let total = 0;
    for (let r = 0; r < k; r++) {
      const j = nb.index[i * k + r];
      if (j < 0) continue;
      const w = 1 / (Math.sqrt(nb.dist2[i * k + r]) + eps);
      p[i * numClasses + y[j]] += w;
      total += w;
    }
    for (let c = 0; c < numClasses; c++) p[i * numClasses + c] = total > 0 ? p[i * numClasses + c] / total : 1 / numClasses;
  }
  return p;
}

export function knnDisagreement(nb: Neighbours, y: Int32Array): Float64Array {
  const k = nb.k;
  return Float64Array.from({ length: y.length }, (_, i) => {
    let differ = 0;
    for (let r = 0; r < k; r++) if (y[nb.index[i * k + r]] !== y[i]) differ++;
    return k > 0 ? differ / k : 0;
  });
}

/**
 * Label issues from out-of-fold probabilities, after confident learning (Northcutt et al.
 * 2021): class j's threshold is the mean probability of j among rows labelled j, and a row
 * is flagged when the most probable class that clears its threshold is not the given label.
 * Confident learning alone under-counts rows whose neighbourhood is mixed, so a row is also
 * flagged when its given label is less probable than `floor` (default: below chance, 1/k,
 * and at most 0.1). Rows are ranked by self-confidence, 1 − p(given label).
 */
export function labelIssuesFromProbabilities(p: Float64Array, y: Int32Array, numClasses: number, opts: { floor?: number } = {}): LabelIssues {
  const n = y.length;
  const k = numClasses;
  const floor = opts.floor ?? Math.min(0.1, 1 / k);
  const thresholds = new Float64Array(k);
  const counts = new Float64Array(k);
  for (let i = 0; i < n; i++) {
    thresholds[y[i]] += p[i * k + y[i]];
    counts[y[i]]++;
  }
  for (let c = 0; c < k; c++) thresholds[c] = counts[c] > 0 ? thresholds[c] / counts[c] : 1;
  const score = new Float64Array(n);
  const flagged = new Uint8Array(n);
  const suggested = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const v = judgeRow(p, i * k, y[i], k, thresholds, floor);
    score[i] = v.score;
    flagged[i] = v.flagged ? 1 : 0;
    suggested[i] = v.suggested;
  }
  return { score, flagged, suggested, thresholds, floor };
}

/** One row's verdict from its probabilities at p[offset … offset + k), given the thresholds. */
export function judgeRow(p: ArrayLike<number>, offset: number, label: number, k: number, thresholds: Float64Array, floor: number): { score: number; flagged: boolean; suggested: number } {
  const own = p[offset + label];
  let best = 0;
  let confident = -1;
  let confidentP = -1;
  for (let c = 0; c < k; c++) {
    const v = p[offset + c];
    if (v > p[offset + best]) best = c;
    if (v >= thresholds[c] && v > confidentP) {
      confident = c;
      confidentP = v;
    }
  }
  return { score: 1 - own, flagged: (confident >= 0 && confident !== label) || own < floor, suggested: best };
}
