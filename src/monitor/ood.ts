import { BulwarkError, Rng, sampleCount, sampleSize, type Samples } from '../core/index.js';
import { quantileSorted } from './vec.js';

/** Mahalanobis out-of-distribution score on input features (or on activations), threshold from held-out data at `fpr` (default 0.01). */
export interface OodDetector {
  readonly threshold: number;
  /** Ledoit–Wolf shrinkage used for the covariance (0 = sample covariance). */
  readonly shrinkage: number;
  /** Squared Mahalanobis distance of each row to the reference; above `threshold` = out of distribution. */
  score(x: Samples): Float64Array;
  /** score(x) > threshold, row by row. */
  flag(x: Samples): boolean[];
}

/** The covariance costs rows·d²/2: 2,000 rows of 784 features take about a second. */
export const OOD_DEFAULT_MAX_ROWS = 2000;

/**
 * Fits the mean and a Ledoit–Wolf shrunk covariance (plus a tiny ridge, so constant columns
 * such as image borders still give an invertible matrix) on `reference`, then sets the
 * threshold at the (1 − fpr) quantile of the scores of `calibration`, held-out in-distribution rows.
 */
export function fitOodDetector(reference: Samples, calibration: Samples, opts: { fpr?: number; maxRows?: number; seed?: number } = {}): OodDetector {
  const fpr = opts.fpr ?? 0.01;
  if (!(fpr > 0 && fpr < 1)) throw new BulwarkError('E_USAGE', `fpr must be in (0, 1), got ${fpr}`);
  const p = sampleSize(reference);
  if (sampleSize(calibration) !== p) {
    throw new BulwarkError('E_DATA_SHAPE', `calibration rows have ${sampleSize(calibration)} features but the reference has ${p}`);
  }
  let n = sampleCount(reference);
  if (n < 2) throw new BulwarkError('E_DATA_SHAPE', `the OOD reference needs at least 2 rows, got ${n}`);
  if (sampleCount(calibration) < 1) throw new BulwarkError('E_DATA_SHAPE', 'the OOD calibration set is empty');
  const maxRows = opts.maxRows ?? OOD_DEFAULT_MAX_ROWS;
  let rows: Int32Array;
  if (n > maxRows) {
    rows = new Rng(opts.seed ?? 42).permutation(n).slice(0, maxRows);
    n = maxRows;
  } else {
    rows = Int32Array.from({ length: n }, (_, i) => i);
  }

  const mean = new Float64Array(p);
  for (const r of rows) for (let j = 0; j < p; j++) mean[j] += reference.data[r * p + j];
  for (let j = 0; j < p; j++) mean[j] /= n;

  // Centered rows, and the sample covariance (upper triangle accumulated, then mirrored).
  const xc = new Float64Array(n * p);
  rows.forEach((r, i) => {
    for (let j = 0; j < p; j++) xc[i * p + j] = reference.data[r * p + j] - mean[j];
  });
  const cov = new Float64Array(p * p);
  for (let i = 0; i < n; i++) {
    const off = i * p;
    for (let a = 0; a < p; a++) {
      const va = xc[off + a];
      if (va === 0) continue;
      const rowA = a * p;
      for (let b = a; b < p; b++) cov[rowA + b] += va * xc[off + b];
    }
  }
  for (let a = 0; a < p; a++) {
    for (let b = a; b < p; b++) {
      cov[a * p + b] /= n;
      cov[b * p + a] = cov[a * p + b];
    }
  }

  // Ledoit–Wolf shrinkage towards mu·I, as sklearn.covariance.ledoit_wolf computes it.
  let trace = 0;
  for (let a = 0; a < p; a++) trace += cov[a * p + a];
  const mu = trace / p;
  let frob = 0;
  for (let i = 0; i < cov.length; i++) frob += cov[i] * cov[i];
  let beta_ = 0;
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < p; j++) s += xc[i * p + j] ** 2;
    beta_ += s * s;
  }
  const delta = (frob - 2 * mu * trace + p * mu * mu) / p;
  let beta = (beta_ / n - frob) / (p * n);
  beta = Math.min(beta, delta);
  const shrinkage = delta > 0 ? beta / delta : 0;
  const ridge = 1e-6 * (mu > 0 ? mu : 1);
  for (let i = 0; i < cov.length; i++) cov[i] *= 1 - shrinkage;
  for (let a = 0; a < p; a++) cov[a * p + a] += shrinkage * mu + ridge;

  const chol = cholesky(cov, p);
  const score = (x: Samples): Float64Array => {
    if (sampleSize(x) !== p) throw new BulwarkError('E_DATA_SHAPE', `rows have ${sampleSize(x)} features but the OOD detector was fitted on ${p}`);
    const m = sampleCount(x);
    const out = new Float64Array(m);
    const y = new Float64Array(p);
    for (let r = 0; r < m; r++) {
      // Forward substitution L·y = x − mean; the squared distance is |y|².
      let s = 0;
      for (let i = 0; i < p; i++) {
        let v = x.data[r * p + i] - mean[i];
        const li = i * p;
        for (let j = 0; j < i; j++) v -= chol[li + j] * y[j];
        y[i] = v / chol[li + i];
        s += y[i] * y[i];
      }
      out[r] = s;
    }
    return out;
  };
  const calib = Array.from(score(calibration)).sort((a, b) => a - b);
  const threshold = quantileSorted(calib, 1 - fpr);
  return {
    threshold,
    shrinkage,
    score,
    flag: (x) => Array.from(score(x), (s) => s > threshold),
  };
}

/** Lower Cholesky factor of a symmetric positive-definite matrix (row-major). */
function cholesky(a: Float64Array, p: number): Float64Array {
  const l = new Float64Array(p * p);
  for (let i = 0; i < p; i++) {
    for (let j = 0; j <= i; j++) {
      let s = a[i * p + j];
      const li = i * p;
      const lj = j * p;
      for (let k = 0; k < j; k++) s -= l[li + k] * l[lj + k];
      if (i === j) {
        if (!(s > 0)) throw new BulwarkError('E_DATA_VALUE', 'the OOD covariance is not positive definite even after shrinkage; check the reference for NaN or infinite values');
        l[li + i] = Math.sqrt(s);
      } else {
        l[li + j] = s / l[lj + j];
      }
    }
  }
  return l;
}
