import { BulwarkError, Rng } from '../../core/index.js';
import { symmetricEigen } from './eigen.js';
import { cholesky, cholLogDet, mahalanobis2, meanCov } from './linalg.js';
import { chi2Quantile, median, smallestK } from './stats.js';

export interface McdOptions {
  /** Share of rows the raw estimate rests on, in (0.5, 1]; default (n + d + 1) / 2n, the most robust. */
  supportFraction?: number;
  seed?: number;
  /**
   * Shrinkage ρ of the covariance towards the identity (in robustly standardised coordinates):
   * 'auto' (default) shrinks only when n ≤ d or the covariance is singular, and then says so.
   */
  shrinkage?: 'auto' | number;
  /** χ² quantile below which rows count in the reweighting step (default 0.975, as in the literature). */
  reweightQuantile?: number;
}

/** A location and scatter with the Cholesky factor that scores rows against it. */
export interface RobustEstimate {
  readonly location: Float64Array;
  readonly covariance: Float64Array;
}

export interface McdResult extends RobustEstimate {
  readonly n: number;
  readonly d: number;
  /** h: how many rows the raw estimate rests on. */
  readonly supportSize: number;
  readonly rawLocation: Float64Array;
  /** The raw MCD covariance before the consistency correction (as scikit-learn's raw_covariance_). */
  readonly rawCovariance: Float64Array;
  readonly rawSupport: Uint8Array;
  /** median(d²) / χ²_d(0.5): the factor that makes the raw covariance consistent at the normal. */
  readonly correction: number;
  /** Rows used by the reweighted estimate. */
  readonly support: Uint8Array;
  /** Squared robust distances of the fitted rows under the reweighted estimate (scikit-learn's dist_). */
  readonly distances: Float64Array;
  /** ρ actually used (0: none). */
  readonly shrinkage: number;
  readonly warnings: string[];
}

/** Thrown inside the C-steps when more than h rows lie on a hyperplane; answered by shrinking. */
class ExactFit extends Error {}

interface Fit {
  mean: Float64Array;
  cov: Float64Array;
  chol: Float64Array;
  logDet: number;
}

/**
 * FastMCD (Rousseeuw & Van Driessen 1999) with the consistency correction and reweighting
 * that scikit-learn's MinCovDet applies, so its results can be compared number for number.
 * Like FastMCD and unlike scikit-learn, trials start from random (d+1)-subsets (which keeps
 * more of them outlier-free) and large data are searched in at most 5 subsets of 300 rows.
 * Computation happens in coordinates standardised by median and MAD; the non-shrunk
 * estimator is affine equivariant, so this changes only the rounding, not the answer.
 */
export function fastMcd(x: ArrayLike<number>, n: number, d: number, opts: McdOptions = {}): McdResult {
  if (!Number.isInteger(n) || !Number.isInteger(d) || n < 1 || d < 1 || x.length !== n * d) {
    throw new BulwarkError('E_DATA_SHAPE', `MCD needs an [n, d] matrix; got ${x.length} values for n=${n}, d=${d}`);
  }
  if (n < 3) throw new BulwarkError('E_DATA_SHAPE', `MCD needs at least 3 rows to tell typical from atypical; got ${n}`);
  const fraction = opts.supportFraction;
  if (fraction !== undefined && !(fraction > 0.5 && fraction <= 1)) {
    throw new BulwarkError('E_USAGE', `supportFraction must be in (0.5, 1], got ${fraction}`);
  }
  const rq = opts.reweightQuantile ?? 0.975;
  if (!(rq > 0 && rq < 1)) throw new BulwarkError('E_USAGE', `reweightQuantile must be in (0, 1), got ${rq}`);
  const h = Math.min(n, fraction !== undefined ? Math.max(1, Math.floor(fraction * n)) : Math.ceil(0.5 * (n + d + 1)));
  const warnings: string[] = [];
  const { z, centre, scale } = standardise(x, n, d);
  const rng = new Rng(opts.seed ?? 42);

  let rho = typeof opts.shrinkage === 'number' ? opts.shrinkage : 0;
  if (typeof opts.shrinkage === 'number' && !(rho >= 0 && rho < 1)) throw new BulwarkError('E_USAGE', `shrinkage must be in [0, 1), got ${rho}`);
  if (opts.shrinkage === undefined || opts.shrinkage === 'auto') {
    const why = n <= d ? `there are fewer rows (${n}) than columns (${d})` : singularWhy(z, n, d);
    if (why) {
      rho = chooseShrinkage(z, n, d);
      warnings.push(`${why}: the covariance was shrunk towards the identity (ρ = ${rho.toFixed(3)}), so distances are approximate`);
    }
  }

  let raw: { fit: Fit; support: Int32Array };
  if (d === 1 && rho === 0) {
    raw = univariate(z, n, h);
  } else {
    try {
      raw = search(z, n, d, h, rho, rng);
    } catch (e) {
      if (!(e instanceof ExactFit) || rho > 0) throw e;
      rho = chooseShrinkage(z, n, d);
      warnings.push(`more than ${h} of the ${n} rows lie on a hyperplane (an exact fit: the covariance is singular): it was shrunk towards the identity (ρ = ${rho.toFixed(3)}), so distances are approximate`);
      raw = search(z, n, d, h, rho, rng);
    }
  }

  const rawDist = mahalanobis2(z, d, raw.fit.mean, raw.fit.chol);
  const med = median(rawDist);
  const correction = med > 0 ? med / chi2Quantile(0.5, d) : 1;
  for (let i = 0; i < n; i++) rawDist[i] /= correction;
  const cutoff = chi2Quantile(rq, d);
  const keep: number[] = [];
  for (let i = 0; i < n; i++) if (rawDist[i] < cutoff) keep.push(i);
  // Reweighting needs more kept rows than dimensions; otherwise the raw estimate stands.
  let final: Fit = raw.fit;
  let finalCorrection = correction;
  if (keep.length > d) {
    const f = fitRows(z, d, Int32Array.from(keep), rho);
    if (f) {
      final = f;
      finalCorrection = 1;
    } else {
      rho = Math.max(rho, chooseShrinkage(z, n, d));
      const g = fitRows(z, d, Int32Array.from(keep), rho);
      if (g) {
        final = g;
        finalCorrection = 1;
        warnings.push(`the reweighted covariance is singular: it was shrunk towards the identity (ρ = ${rho.toFixed(3)})`);
      }
    }
  }
  let distances: Float64Array;
  if (finalCorrection === 1) {
    distances = mahalanobis2(z, d, final.mean, final.chol);
  } else {
    distances = rawDist;
    warnings.push(`only ${keep.length} rows passed the reweighting cut-off: the consistency-corrected raw estimate is used`);
  }

  const support = new Uint8Array(n);
  if (finalCorrection === 1) for (const i of keep) support[i] = 1;
  else for (const i of raw.support) support[i] = 1;
  const rawSupport = new Uint8Array(n);
  for (const i of raw.support) rawSupport[i] = 1;
  const finalCov = final.cov.slice();
  if (finalCorrection !== 1) for (let i = 0; i < finalCov.length; i++) finalCov[i] *= finalCorrection;
  return {
    n,
    d,
    supportSize: h,
    rawLocation: unstandardiseLocation(raw.fit.mean, centre, scale),
    rawCovariance: unstandardiseCovariance(raw.fit.cov, scale),
    rawSupport,
    correction,
    location: unstandardiseLocation(final.mean, centre, scale),
    covariance: unstandardiseCovariance(finalCov, scale),
    support,
    distances,
    shrinkage: rho,
    warnings,
  };
}

/** Squared Mahalanobis distances of rows under an estimate (e.g. new rows against a fitted MCD). */
export function robustDistances(est: RobustEstimate, x: ArrayLike<number>, d: number): Float64Array {
  const chol = cholesky(est.covariance, d);
  if (!chol) throw new BulwarkError('E_DATA_VALUE', 'the robust covariance is singular; fit with shrinkage');
  return mahalanobis2(x, d, est.location, chol);
}

/** The search: candidate h-subsets refined by C-steps, nested on large data as FastMCD does. */
function search(z: Float64Array, n: number, d: number, h: number, rho: number, rng: Rng): { fit: Fit; support: Int32Array } {
  let candidates: Fit[];
  if (n <= 500) {
    candidates = best(trials(z, n, d, h, 30, rho, rng), 10);
  } else {
    // At most 1,500 rows take part in the search, in k ≤ 5 disjoint subsets of about 300;
    // their union is the merged set on which the pooled candidates compete.
    const k = Math.min(5, Math.floor(n / 300));
    const perm = rng.permutation(n);
    const subN = Math.min(300, Math.floor(n / k));
    const subH = Math.ceil(subN * (h / n));
    const pooled: Fit[] = [];
    for (let s = 0; s < k; s++) {
      const sub = rowsOf(z, d, perm.subarray(s * subN, (s + 1) * subN));
      pooled.push(...best(trials(sub, subN, d, subH, Math.max(10, Math.floor(500 / k)), rho, rng), 10));
    }
    const mergedN = k * subN;
    const merged = rowsOf(z, d, perm.subarray(0, mergedN));
    const mergedH = Math.ceil(mergedN * (h / n));
    const refined = pooled.map((c) => cSteps(merged, mergedN, d, mergedH, c, 2, rho).fit);
    candidates = best(refined, n > 1500 ? 10 : 1);
  }
  // On all rows, two C-steps rank the candidates; only the best is iterated to convergence
  // (each full step costs O(n·d²), and the runners-up almost never overtake).
  let winner: { fit: Fit; support: Int32Array } | null = null;
  for (const c of candidates) {
    const r = cSteps(z, n, d, h, c, candidates.length > 1 ? 2 : 30, rho);
    if (!winner || r.fit.logDet < winner.fit.logDet) winner = r;
  }
  return candidates.length > 1 ? cSteps(z, n, d, h, winner!.fit, 30, rho) : winner!;
}

/** Random starts: a (d+1)-subset, grown until its covariance is non-singular, then 2 C-steps. */
function trials(z: Float64Array, n: number, d: number, h: number, count: number, rho: number, rng: Rng): Fit[] {
  const out: Fit[] = [];
  const perm = new Int32Array(n);
  for (let t = 0; t < count; t++) {
    for (let i = 0; i < n; i++) perm[i] = i;
    let size = Math.min(n, d + 1);
    // Partial Fisher–Yates: only the first rows drawn are needed.
    const draw = (upto: number): void => {
      for (let i = upto - 1; i < upto; i++) {
        const j = i + rng.int(n - i);
        const tmp = perm[i];
        perm[i] = perm[j];
        perm[j] = tmp;
      }
    };
    for (let i = 1; i <= size; i++) draw(i);
    let fit = fitRows(z, d, perm.subarray(0, size), rho);
    while (!fit && size < n) {
      size++;
      draw(size);
      fit = fitRows(z, d, perm.subarray(0, size), rho);
    }
    if (!fit) throw new ExactFit();
    out.push(cSteps(z, n, d, h, fit, 2, rho).fit);
  }
  return out;
}

function best(fits: Fit[], k: number): Fit[] {
  return [...fits].sort((a, b) => a.logDet - b.logDet).slice(0, k);
}

/**
 * C-steps: the h rows closest under the current estimate give the next estimate, whose
 * determinant is never larger (Rousseeuw & Van Driessen's theorem); stop when it stalls.
 */
function cSteps(z: Float64Array, n: number, d: number, h: number, start: Fit, maxIter: number, rho: number): { fit: Fit; support: Int32Array } {
  let cur = start;
  let support: Int32Array | null = null;
  const dist = new Float64Array(n);
  const scratch = new Int32Array(n);
  for (let it = 0; it < maxIter; it++) {
    mahalanobis2(z, d, cur.mean, cur.chol, dist);
    const rows = smallestK(dist, h, scratch);
    const next = fitRows(z, d, rows, rho);
    if (!next) throw new ExactFit();
    // The starting fit comes from other rows (a small subset, or another sample), so its
    // determinant is not comparable: the first step is always taken.
    if (support && !(next.logDet < cur.logDet)) break;
    // Converged when the log determinant moves less than scikit-learn's np.allclose allows.
    const stalled = support !== null && cur.logDet - next.logDet <= 1e-8 + 1e-6 * Math.abs(cur.logDet);
    cur = next;
    support = rows;
    if (stalled) break;
  }
  return { fit: cur, support: support! };
}

function fitRows(z: Float64Array, d: number, rows: ArrayLike<number>, rho: number): Fit | null {
  const { mean, cov } = meanCov(z, d, rows);
  if (rho > 0) {
    for (let i = 0; i < d * d; i++) cov[i] *= 1 - rho;
    for (let i = 0; i < d; i++) cov[i * d + i] += rho;
  }
  const chol = cholesky(cov, d);
  if (!chol) return null;
  return { mean, cov, chol, logDet: cholLogDet(chol, d) };
}

/** One column: the shortest half, as scikit-learn computes the univariate MCD. */
function univariate(z: Float64Array, n: number, h: number): { fit: Fit; support: Int32Array } {
  const sorted = Float64Array.from(z).sort();
  let bestDiff = Infinity;
  for (let i = 0; i + h < n; i++) bestDiff = Math.min(bestDiff, sorted[i + h] - sorted[i]);
  let loc = 0;
  let count = 0;
  if (h < n) {
    for (let i = 0; i + h < n; i++) {
      if (sorted[i + h] - sorted[i] === bestDiff) {
        loc += 0.5 * (sorted[i + h] + sorted[i]);
        count++;
      }
    }
    loc /= count;
  } else {
    loc = sorted.reduce((a, b) => a + b, 0) / n;
  }
  const dev = Float64Array.from(z, (v) => Math.abs(v - loc));
  const support = smallestK(dev, h);
  let m = 0;
  for (const i of support) m += z[i];
  m /= h;
  let v = 0;
  for (const i of support) v += (z[i] - m) ** 2;
  v /= h;
  if (!(v > 0)) throw new BulwarkError('E_DATA_VALUE', `more than half of the values are identical (${loc}); the column has no spread to measure outliers against`);
  const fit = { mean: Float64Array.of(loc), cov: Float64Array.of(v), chol: Float64Array.of(Math.sqrt(v)), logDet: Math.log(v) };
  return { fit, support };
}

function rowsOf(z: Float64Array, d: number, rows: ArrayLike<number>): Float64Array {
  const out = new Float64Array(rows.length * d);
  for (let i = 0; i < rows.length; i++) out.set(z.subarray(rows[i] * d, rows[i] * d + d), i * d);
  return out;
}

function standardise(x: ArrayLike<number>, n: number, d: number): { z: Float64Array; centre: Float64Array; scale: Float64Array } {
  const centre = new Float64Array(d);
  const scale = new Float64Array(d);
  const col = new Float64Array(n);
  for (let j = 0; j < d; j++) {
    for (let i = 0; i < n; i++) col[i] = x[i * d + j];
    const m = median(col);
    for (let i = 0; i < n; i++) col[i] = Math.abs(col[i] - m);
    let s = 1.4826 * median(col);
    if (!(s > 0)) {
      let mean = 0;
      for (let i = 0; i < n; i++) mean += x[i * d + j];
      mean /= n;
      let v = 0;
      for (let i = 0; i < n; i++) v += (x[i * d + j] - mean) ** 2;
      s = Math.sqrt(v / n);
    }
    centre[j] = m;
    scale[j] = s > 0 ? s : 1;
  }
  const z = new Float64Array(n * d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) z[i * d + j] = (x[i * d + j] - centre[j]) / scale[j];
  return { z, centre, scale };
}

function unstandardiseLocation(m: Float64Array, centre: Float64Array, scale: Float64Array): Float64Array {
  return Float64Array.from(m, (v, j) => centre[j] + scale[j] * v);
}

function unstandardiseCovariance(c: Float64Array, scale: Float64Array): Float64Array {
  const d = scale.length;
  return Float64Array.from(c, (v, k) => v * scale[Math.floor(k / d)] * scale[k % d]);
}

/** Why the data's covariance is singular, or null when it is not. */
function singularWhy(z: Float64Array, n: number, d: number): string | null {
  const { cov } = meanCov(z, d, undefined, n);
  if (cholesky(cov, d)) return null;
  return 'the covariance of the data is singular (a constant column, or columns that are linear combinations of others, such as one-hot encodings)';
}

/**
 * ρ for the shrunk covariance ρI + (1−ρ)S: the smallest that brings the condition number of
 * the data's covariance down to 50, the rule of the minimum regularised covariance
 * determinant estimator (Boudt et al. 2020); at least 0.01 when shrinking at all.
 */
function chooseShrinkage(z: Float64Array, n: number, d: number): number {
  const { cov } = meanCov(z, d, undefined, n);
  const { values } = symmetricEigen(cov, d);
  const max = Math.max(values[0], 1e-12);
  const min = Math.max(values[d - 1], 0);
  const kappa = 50;
  if (max <= kappa * min) return 0.01;
  const rho = (max - kappa * min) / (max - kappa * min + kappa - 1);
  return Math.min(0.99, Math.max(0.01, rho));
}
