import { BulwarkError, argmaxRows, sampleSize, takeSamples, type Model, type Samples } from '../../core/index.js';

/** Image layout of one sample: [h, w, c] images, [h, w] greyscale, or a flat row as [1, d, 1]. */
export interface Geometry {
  h: number;
  w: number;
  c: number;
}

export function geometryOf(shape: readonly number[]): Geometry {
  if (shape.length === 3) return { h: shape[0], w: shape[1], c: shape[2] };
  if (shape.length === 2) return { h: shape[0], w: shape[1], c: 1 };
  return { h: 1, w: shape.reduce((a, b) => a * b, 1), c: 1 };
}

export function budgetOption(name: string, budget: number): number {
  if (!Number.isInteger(budget) || budget < 1) {
    throw new BulwarkError('E_USAGE', `${name}: the query budget must be a positive integer (queries per sample), not ${budget}`);
  }
  return budget;
}

export function pickRows(x: Samples, rows: number[]): Samples {
  return takeSamples(x, rows);
}

/**
 * Asks the model for the given rows, in batches, and charges one query to each row's
 * sample (`owners[a]` is the sample row a belongs to).
 */
export async function predictScores(
  model: Model,
  x: Samples,
  owners: ArrayLike<number>,
  batchSize: number,
  queries: Int32Array,
): Promise<{ probs: Samples; labels: Int32Array }> {
  const n = x.shape[0];
  const d = sampleSize(x);
  const k = model.info.numClasses;
  const probs = new Float32Array(n * k);
  for (let s = 0; s < n; s += batchSize) {
    const e = Math.min(n, s + batchSize);
    const p = await model.predict({ data: x.data.subarray(s * d, e * d), shape: [e - s, ...x.shape.slice(1)] });
    if (p.data.length !== (e - s) * k) {
      throw new BulwarkError('E_REMOTE', `model '${model.info.name}' answered ${p.data.length} values for ${e - s} samples of ${k} classes`);
    }
    probs.set(p.data, s * k);
  }
  for (let a = 0; a < owners.length; a++) queries[owners[a]]++;
  const out = { data: probs, shape: [n, k] };
  return { probs: out, labels: argmaxRows(out) };
}

/**
 * Margin to drive below zero: log p(true) − max other log p (untargeted), or
 * max other log p − log p(target) (targeted). Log-probabilities differ from logits by a
 * per-row constant, so this is the paper's logit margin.
 */
export function scoreMargin(probs: Samples, row: number, y: number, target: number): number {
  const k = probs.shape[1];
  const base = row * k;
  const cls = target >= 0 ? target : y;
  let other = -Infinity;
  for (let j = 0; j < k; j++) if (j !== cls) other = Math.max(other, Math.log(Math.max(probs.data[base + j], 1e-30)));
  const own = Math.log(Math.max(probs.data[base + cls], 1e-30));
  return target >= 0 ? other - own : own - other;
}
