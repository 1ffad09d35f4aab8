import { type Rng, type Samples, argmaxRows, sampleCount, sampleSize, takeSamples } from '../core/index.js';
import type { TfjsModel } from '../engines/index.js';

export type Range = readonly [number, number];

/** The smallest and largest value in the samples; [0, 1] when there are none. */
export function valueRange(x: Samples | undefined): Range {
  if (!x || x.data.length === 0) return [0, 1];
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of x.data) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return hi > lo ? [lo, hi] : [lo, lo + 1];
}

/** Uniform noise over the value range: what an attacker with no data at all can send. */
export function randomQueries(count: number, sampleShape: readonly number[], range: Range, rng: Rng): Samples {
  const size = sampleShape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(count * size);
  const span = range[1] - range[0];
  for (let i = 0; i < data.length; i++) data[i] = range[0] + span * rng.next();
  return { data, shape: [count, ...sampleShape] };
}

/**
 * Pool rows with Gaussian noise (σ = `sigma` × the value range), clipped: once an attacker has
 * sent every natural input it holds, near-copies are the cheapest new ones that stay on the data.
 */
export function noisyCopies(pool: Samples, count: number, sigma: number, range: Range, rng: Rng): Samples {
  const n = sampleCount(pool);
  const rows = Int32Array.from({ length: count }, () => rng.int(n));
  const out = takeSamples(pool, rows);
  const s = sigma * (range[1] - range[0]);
  for (let i = 0; i < out.data.length; i++) out.data[i] = clip(out.data[i] + s * rng.normal(), range);
  return out;
}

/**
 * Jacobian-based dataset augmentation (Papernot et al., "Practical Black-Box Attacks against
 * Machine Learning", AsiaCCS 2017): each point moves by λ along the sign of the surrogate's
 * gradient for the class the target gave it, towards where the surrogate's decision boundary
 * is still unsure, so the next answers carry the most information about it.
 */
export async function jacobianAugment(surrogate: TfjsModel, x: Samples, labels: Int32Array, lambda: number, range: Range): Promise<Samples> {
  const g = await surrogate.classGradient(x, labels);
  const out = new Float32Array(x.data.length);
  for (let i = 0; i < out.length; i++) out[i] = clip(x.data[i] + lambda * Math.sign(g.data[i]), range);
  return { data: out, shape: [...x.shape] };
}

/**
 * Uncertainty sampling for active learning: the `count` candidates (indices into `pool`) the
 * surrogate is least sure of, by the margin between its two highest probabilities.
 */
export async function leastConfident(surrogate: TfjsModel, pool: Samples, candidates: Int32Array, count: number): Promise<Int32Array> {
  if (count >= candidates.length) return candidates.slice();
  const p = await surrogate.predict(takeSamples(pool, candidates));
  const k = sampleSize(p);
  const margin = new Float64Array(candidates.length);
  for (let i = 0; i < candidates.length; i++) {
    let a = -Infinity;
    let b = -Infinity;
    for (let j = 0; j < k; j++) {
      const v = p.data[i * k + j];
      if (v > a) {
        b = a;
        a = v;
      } else if (v > b) b = v;
    }
    margin[i] = a - b;
  }
  const order = Array.from(candidates.keys()).sort((i, j) => margin[i] - margin[j] || i - j);
  return Int32Array.from(order.slice(0, count), (i) => candidates[i]);
}

/** The top class of each answer row; ties go to the lower class, as with any argmax. */
export function answerLabels(answers: Samples): Int32Array {
  return argmaxRows(answers);
}

function clip(v: number, range: Range): number {
  return v < range[0] ? range[0] : v > range[1] ? range[1] : v;
}
