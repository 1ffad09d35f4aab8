import { meanCov } from './linalg.js';

/**
 * Mean and covariance of a stream of rows in O(d²) memory, however many rows pass. Rows are
 * taken in chunks; each chunk's moments are computed exactly (two passes over the chunk)
 * and merged into the running total with the pairwise update of Chan, Golub & LeVeque
 * (1979), which keeps full precision where a running sum of squares would cancel.
 */
export class CovarianceAccumulator {
  count = 0;
  readonly mean: Float64Array;
  /** Sum of outer products of deviations from the mean (the co-moment, not yet divided). */
  readonly comoment: Float64Array;

  constructor(readonly d: number) {
    this.mean = new Float64Array(d);
    this.comoment = new Float64Array(d * d);
  }

  /** Adds `count` rows of an [count, d] matrix (or the given rows of a larger one). */
  addRows(x: ArrayLike<number>, count: number, rows?: ArrayLike<number>): void {
    const m = rows ? rows.length : count;
    if (m === 0) return;
    const { mean, cov } = meanCov(x, this.d, rows, count);
    for (let i = 0; i < cov.length; i++) cov[i] *= m;
    this.mergeMoments(m, mean, cov);
  }

  merge(other: CovarianceAccumulator): void {
    this.mergeMoments(other.count, other.mean, other.comoment);
  }

  private mergeMoments(m: number, mean: Float64Array, comoment: Float64Array): void {
    if (m === 0) return;
    const d = this.d;
    const n = this.count;
    const total = n + m;
    const delta = Float64Array.from(mean, (v, j) => v - this.mean[j]);
    const f = (n * m) / total;
    for (let a = 0; a < d; a++) {
      for (let b = 0; b < d; b++) this.comoment[a * d + b] += comoment[a * d + b] + f * delta[a] * delta[b];
    }
    for (let j = 0; j < d; j++) this.mean[j] += (delta[j] * m) / total;
    this.count = total;
  }

  /** The covariance divided by n (biased, as scikit-learn's empirical_covariance) or n − 1. */
  covariance(unbiased = false): Float64Array {
    const div = unbiased ? this.count - 1 : this.count;
    return Float64Array.from(this.comoment, (v) => (div > 0 ? v / div : NaN));
  }
}
