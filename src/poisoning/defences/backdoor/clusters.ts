import { Rng } from '../../../core/index.js';

/**
 * Two-means clustering (Lloyd's algorithm from k-means++ starts, best of several restarts)
 * of m points in `dims` dimensions; labels are 0/1.
 */
export function twoMeans(points: Float64Array, m: number, dims: number, seed = 42, restarts = 5): { labels: Uint8Array; inertia: number } {
  const rng = new Rng(seed);
  let best: { labels: Uint8Array; inertia: number } | null = null;
  const dist2 = (i: number, c: Float64Array): number => {
    let s = 0;
    for (let t = 0; t < dims; t++) s += (points[i * dims + t] - c[t]) ** 2;
    return s;
  };
  for (let r = 0; r < restarts && m >= 2; r++) {
    const c0 = new Float64Array(dims);
    const first = rng.int(m);
    c0.set(points.subarray(first * dims, first * dims + dims));
    // k-means++: the second centre drawn in proportion to squared distance from the first.
    const w = Float64Array.from({ length: m }, (_, i) => dist2(i, c0));
    let total = w.reduce((a, b) => a + b, 0);
    let pick = m - 1;
    let u = rng.next() * total;
    for (let i = 0; i < m; i++) {
      u -= w[i];
      if (u <= 0) {
        pick = i;
        break;
      }
    }
    const centres = [c0, Float64Array.from(points.subarray(pick * dims, pick * dims + dims))];
    const labels = new Uint8Array(m);
    for (let it = 0; it < 100; it++) {
      let changed = it === 0;
      for (let i = 0; i < m; i++) {
        const l = dist2(i, centres[0]) <= dist2(i, centres[1]) ? 0 : 1;
        if (l !== labels[i]) changed = true;
        labels[i] = l;
      }
      const sums = [new Float64Array(dims), new Float64Array(dims)];
      const counts = [0, 0];
      for (let i = 0; i < m; i++) {
        counts[labels[i]]++;
        for (let t = 0; t < dims; t++) sums[labels[i]][t] += points[i * dims + t];
      }
      for (let c = 0; c < 2; c++) if (counts[c] > 0) for (let t = 0; t < dims; t++) centres[c][t] = sums[c][t] / counts[c];
      if (!changed) break;
    }
    total = 0;
    for (let i = 0; i < m; i++) total += dist2(i, centres[labels[i]]);
    if (!best || total < best.inertia) best = { labels, inertia: total };
  }
  return best ?? { labels: new Uint8Array(m), inertia: 0 };
}

/** Mean silhouette coefficient of a two-cluster labelling (on at most `maxPoints` points, seeded). */
export function silhouette(points: Float64Array, m: number, dims: number, labels: Uint8Array, maxPoints = 1000, seed = 42): number {
  const idx = m > maxPoints ? new Rng(seed).permutation(m).slice(0, maxPoints) : Int32Array.from({ length: m }, (_, i) => i);
  const k = idx.length;
  let total = 0;
  let counted = 0;
  for (let a = 0; a < k; a++) {
    const i = idx[a];
    const sum = [0, 0];
    const cnt = [0, 0];
    for (let b = 0; b < k; b++) {
      if (a === b) continue;
      const j = idx[b];
      let s = 0;
      for (let t = 0; t < dims; t++) s += (points[i * dims + t] - points[j * dims + t]) ** 2;
      sum[labels[j]] += Math.sqrt(s);
      cnt[labels[j]]++;
    }
    const own = labels[i];
    if (cnt[own] === 0 || cnt[1 - own] === 0) continue;
    const ai = sum[own] / cnt[own];
    const bi = sum[1 - own] / cnt[1 - own];
    total += (bi - ai) / Math.max(ai, bi);
    counted++;
  }
  return counted > 0 ? total / counted : 0;
}

/** How a class was split and whether the split looks like a planted backdoor. */
export interface ClassVerdict {
  classIndex: number;
  className: string;
  rows: number;
  /** Rows in the suspect group. */
  suspectRows: number;
  /** The suspect group's share of the class (Chen et al.'s relative size). */
  share: number;
  /** Share of superimposed copies of the suspect group's rows that keep the class. */
  suspectPersistence: number;
  /** Same for the rest of the class. */
  otherPersistence: number;
  silhouette?: number;
  infected: boolean;
}

/**
 * Which of two groups of a class is the suspect, and is it poison? Group sizes cannot decide
 * (when a tenth of the data is poisoned all-to-one, the target class is half poison), so
 * behaviour does: a row carrying a trigger keeps its class when other classes' inputs are
 * superimposed on it, as STRIP observes, while a clean row drifts away. The group that
 * persists more is the suspect; the class is infected when nearly all its copies persist
 * (`minPersistence`), at least `minGap` more than the rest, over at least 5 rows and 1% of the class.
 */
export function judgeSplit(groups: Uint8Array, persistence: Float64Array, minGap: number, minPersistence = 0.85): { suspect: 0 | 1; share: number; persistence: [number, number]; infected: boolean } {
  const sum = [0, 0];
  const cnt = [0, 0];
  for (let i = 0; i < groups.length; i++) {
    sum[groups[i]] += persistence[i];
    cnt[groups[i]]++;
  }
  if (cnt[0] === 0 || cnt[1] === 0) return { suspect: 1, share: 0, persistence: [0, 0], infected: false };
  const mean = [sum[0] / cnt[0], sum[1] / cnt[1]];
  const suspect: 0 | 1 = mean[1] > mean[0] ? 1 : 0;
  // A handful of odd rows can persist too (bold strokes survive an overlay); a trigger makes
  // nearly every copy persist, over enough rows to have taught the model.
  const bigEnough = cnt[suspect] >= Math.max(5, 0.01 * groups.length);
  const infected = bigEnough && mean[suspect] >= minPersistence && mean[suspect] - mean[1 - suspect] >= minGap;
  return { suspect, share: cnt[suspect] / groups.length, persistence: [mean[suspect], mean[1 - suspect]], infected };
}

/** How clearly a split's suspect group persists more than the rest; any infected verdict outranks any clean one. */
export function splitStrength(v: { persistence: [number, number]; infected: boolean }): number {
  return v.persistence[0] - v.persistence[1] + (v.infected ? 1 : 0);
}
