import { fastMcd, type RobustEstimate } from './mcd.js';
import { cholesky } from './linalg.js';
import { topSingularVector } from './pca.js';

/**
 * Rows whitened by a robust (FastMCD) fit: w = L⁻¹(x − μ) with Σ = L Lᵀ estimated from the
 * typical rows only. A minority that departs from the bulk in a shared direction keeps its
 * departure, while the bulk becomes isotropic, so a leading direction of the whitened rows
 * points at the minority rather than at the bulk's largest variance (the idea of SPECTRE,
 * Hayase et al. 2021, which repairs spectral signatures at low poison rates).
 */
export function robustWhiten(x: ArrayLike<number>, n: number, d: number, seed = 42, mcd?: RobustEstimate): { w: Float64Array; mcd: RobustEstimate } {
  const fit = mcd ?? fastMcd(x, n, d, { seed });
  const l = cholesky(fit.covariance, d);
  const w = new Float64Array(n * d);
  for (let i = 0; i < n; i++) {
    for (let a = 0; a < d; a++) {
      let s = x[i * d + a] - fit.location[a];
      if (l) for (let b = 0; b < a; b++) s -= l[a * d + b] * w[i * d + b];
      w[i * d + a] = l ? s / l[a * d + a] : s;
    }
  }
  return { w, mcd: fit };
}

/** Signed projections of whitened rows on their leading (uncentred) singular direction. */
export function leadingProjection(w: Float64Array, n: number, d: number, seed = 42, rows?: ArrayLike<number>): { direction: Float64Array; projection: Float64Array } {
  let basis = w;
  let m = n;
  if (rows) {
    m = rows.length;
    basis = new Float64Array(m * d);
    for (let i = 0; i < m; i++) basis.set(w.subarray(rows[i] * d, rows[i] * d + d), i * d);
  }
  const direction = topSingularVector(basis, m, d, 200, seed);
  const projection = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let a = 0; a < d; a++) s += w[i * d + a] * direction[a];
    projection[i] = s;
  }
  return { direction, projection };
}
