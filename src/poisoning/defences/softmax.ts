import { Rng } from '../../core/index.js';

/**
 * Multinomial logistic regression in plain TypeScript, for out-of-fold label checks on data
 * too large for nearest neighbours (O(n·d·classes) per epoch, no tensors, no backend to
 * start). Inputs are standardised with the statistics given, so one set serves all folds.
 */
export interface SoftmaxModel {
  readonly d: number;
  readonly classes: number;
  /** (d + 1) × classes, the last row the bias. */
  readonly w: Float64Array;
  readonly mean: Float64Array;
  readonly scale: Float64Array;
}

export interface SoftmaxOptions {
  epochs?: number;
  learningRate?: number;
  l2?: number;
  batchSize?: number;
  seed?: number;
}

export function columnStats(x: ArrayLike<number>, n: number, d: number): { mean: Float64Array; scale: Float64Array } {
  const mean = new Float64Array(d);
  const sq = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j] += x[i * d + j];
  for (let j = 0; j < d; j++) mean[j] /= Math.max(1, n);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) sq[j] += (x[i * d + j] - mean[j]) ** 2;
  return { mean, scale: Float64Array.from(sq, (v) => (v > 0 ? Math.sqrt(v / n) : 1)) };
}

/** Fits on `rows` of x (Adam on mini-batches of the cross-entropy with a little L2). */
export function fitSoftmax(
  x: ArrayLike<number>,
  d: number,
  rows: Int32Array,
  y: ArrayLike<number>,
  classes: number,
  stats: { mean: Float64Array; scale: Float64Array },
  opts: SoftmaxOptions = {},
): SoftmaxModel {
  const epochs = opts.epochs ?? 10;
  const lr = opts.learningRate ?? 0.05;
  const l2 = opts.l2 ?? 1e-4;
  const batch = opts.batchSize ?? 256;
  const rng = new Rng(opts.seed ?? 42);
  const size = (d + 1) * classes;
  const w = new Float64Array(size);
  const g = new Float64Array(size);
  const m1 = new Float64Array(size);
  const m2 = new Float64Array(size);
  const z = new Float64Array(d + 1);
  const p = new Float64Array(classes);
  const order = Int32Array.from(rows);
  let step = 0;
  for (let epoch = 0; epoch < epochs; epoch++) {
    rng.shuffle(order);
    for (let s = 0; s < order.length; s += batch) {
      const e = Math.min(order.length, s + batch);
      g.fill(0);
      for (let t = s; t < e; t++) {
        const r = order[t];
        for (let j = 0; j < d; j++) z[j] = (x[r * d + j] - stats.mean[j]) / stats.scale[j];
        z[d] = 1;
        probabilities(w, z, d, classes, p);
        p[y[r]] -= 1;
        for (let j = 0; j <= d; j++) {
          const zj = z[j];
          if (zj === 0) continue;
          const o = j * classes;
          for (let c = 0; c < classes; c++) g[o + c] += zj * p[c];
        }
      }
      step++;
      const inv = 1 / (e - s);
      const b1 = 1 - 0.9 ** step;
      const b2 = 1 - 0.999 ** step;
      for (let i = 0; i < size; i++) {
        const gi = g[i] * inv + (i < d * classes ? l2 * w[i] : 0);
        m1[i] = 0.9 * m1[i] + 0.1 * gi;
        m2[i] = 0.999 * m2[i] + 0.001 * gi * gi;
        w[i] -= (lr * (m1[i] / b1)) / (Math.sqrt(m2[i] / b2) + 1e-8);
      }
    }
  }
  return { d, classes, w, mean: stats.mean, scale: stats.scale };
}

/** Class probabilities of the row at x[offset …] into `out`. */
export function predictSoftmax(m: SoftmaxModel, x: ArrayLike<number>, offset: number, out: Float64Array, scratch?: Float64Array): void {
  const z = scratch ?? new Float64Array(m.d + 1);
  for (let j = 0; j < m.d; j++) z[j] = (x[offset + j] - m.mean[j]) / m.scale[j];
  z[m.d] = 1;
  probabilities(m.w, z, m.d, m.classes, out);
}

function probabilities(w: Float64Array, z: Float64Array, d: number, classes: number, out: Float64Array): void {
  out.fill(0);
  for (let j = 0; j <= d; j++) {
    const zj = z[j];
    if (zj === 0) continue;
    const o = j * classes;
    for (let c = 0; c < classes; c++) out[c] += zj * w[o + c];
  }
  let max = -Infinity;
  for (let c = 0; c < classes; c++) max = Math.max(max, out[c]);
  let sum = 0;
  for (let c = 0; c < classes; c++) {
    out[c] = Math.exp(out[c] - max);
    sum += out[c];
  }
  for (let c = 0; c < classes; c++) out[c] /= sum;
}

/** Which fold each row belongs to: a seeded, balanced assignment. */
export function foldOf(n: number, folds: number, seed: number): Uint8Array {
  const perm = new Rng(seed).permutation(n);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[perm[i]] = i % folds;
  return out;
}

/** Out-of-fold probabilities: each row is predicted by the model that did not see it. */
export function outOfFoldSoftmax(
  x: ArrayLike<number>,
  n: number,
  d: number,
  y: ArrayLike<number>,
  classes: number,
  opts: SoftmaxOptions & { folds?: number } = {},
): { probabilities: Float64Array; models: SoftmaxModel[]; fold: Uint8Array } {
  const folds = opts.folds ?? 5;
  const fold = foldOf(n, folds, opts.seed ?? 42);
  const stats = columnStats(x, n, d);
  const out = new Float64Array(n * classes);
  const models: SoftmaxModel[] = [];
  const p = new Float64Array(classes);
  for (let f = 0; f < folds; f++) {
    const train: number[] = [];
    for (let i = 0; i < n; i++) if (fold[i] !== f) train.push(i);
    const model = fitSoftmax(x, d, Int32Array.from(train), y, classes, stats, { ...opts, seed: (opts.seed ?? 42) + f });
    models.push(model);
    for (let i = 0; i < n; i++) {
      if (fold[i] !== f) continue;
      predictSoftmax(model, x, i * d, p);
      out.set(p, i * classes);
    }
  }
  return { probabilities: out, models, fold };
}
