/**
 * The dense linear algebra the detectors need, on small d × d matrices (row-major
 * Float64Array). Rows of data stay Float32 (as Samples hold them); sums are taken in
 * float64 so that a million rows do not lose the low bits of a covariance.
 */

/** Mean and biased (÷n) covariance of the given rows of an [n, d] matrix; all rows when `rows` is absent. */
export function meanCov(x: ArrayLike<number>, d: number, rows?: ArrayLike<number>, count?: number): { mean: Float64Array; cov: Float64Array } {
  const n = rows ? rows.length : (count ?? x.length / d);
  const mean = new Float64Array(d);
  const cov = new Float64Array(d * d);
  if (n === 0) return { mean, cov };
  for (let i = 0; i < n; i++) {
    const o = (rows ? rows[i] : i) * d;
    for (let j = 0; j < d; j++) mean[j] += x[o + j];
  }
  for (let j = 0; j < d; j++) mean[j] /= n;
  const z = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    const o = (rows ? rows[i] : i) * d;
    for (let j = 0; j < d; j++) z[j] = x[o + j] - mean[j];
    for (let a = 0; a < d; a++) {
      const za = z[a];
      if (za === 0) continue;
      const base = a * d;
      for (let b = a; b < d; b++) cov[base + b] += za * z[b];
    }
  }
  for (let a = 0; a < d; a++) {
    for (let b = a; b < d; b++) {
      const v = cov[a * d + b] / n;
      cov[a * d + b] = v;
      cov[b * d + a] = v;
    }
  }
  return { mean, cov };
}

/**
 * Lower Cholesky factor of a symmetric positive-definite matrix, or null when the matrix is
 * not (numerically) positive definite — which is how the callers detect a singular covariance.
 */
export function cholesky(a: Float64Array, d: number): Float64Array | null {
  const l = new Float64Array(d * d);
  let maxDiag = 0;
  for (let i = 0; i < d; i++) maxDiag = Math.max(maxDiag, a[i * d + i]);
  const tiny = Math.max(maxDiag, 1e-300) * 1e-12;
  for (let i = 0; i < d; i++) {
    for (let j = 0; j <= i; j++) {
      let s = a[i * d + j];
      for (let k = 0; k < j; k++) s -= l[i * d + k] * l[j * d + k];
      if (i === j) {
        if (!(s > tiny)) return null;
        l[i * d + i] = Math.sqrt(s);
      } else {
        l[i * d + j] = s / l[j * d + j];
      }
    }
  }
  return l;
}

/** log det of the matrix whose Cholesky factor is `l`. */
export function cholLogDet(l: Float64Array, d: number): number {
  let s = 0;
  for (let i = 0; i < d; i++) s += Math.log(l[i * d + i]);
  return 2 * s;
}

/**
 * Squared Mahalanobis distance of every row of x to `mean` under the covariance factored as
 * L Lᵀ: ‖L⁻¹(x − mean)‖², by forward substitution (d²/2 multiply-adds per row).
 */
export function mahalanobis2(x: ArrayLike<number>, d: number, mean: Float64Array, l: Float64Array, out?: Float64Array): Float64Array {
  const n = x.length / d;
  const dist = out ?? new Float64Array(n);
  const z = new Float64Array(d);
  for (let i = 0; i < n; i++) dist[i] = mahalanobisRow(x, i * d, d, mean, l, z);
  return dist;
}

export function mahalanobisRow(x: ArrayLike<number>, offset: number, d: number, mean: Float64Array, l: Float64Array, z: Float64Array): number {
  let q = 0;
  for (let j = 0; j < d; j++) {
    let s = x[offset + j] - mean[j];
    const row = j * d;
    for (let k = 0; k < j; k++) s -= l[row + k] * z[k];
    const v = s / l[row + j];
    z[j] = v;
    q += v * v;
  }
  return q;
}
