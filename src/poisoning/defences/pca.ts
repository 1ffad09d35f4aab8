import { meanCov } from './linalg.js';
import { orthonormalise, symmetricEigen } from './eigen.js';

/** The k leading principal axes of an [n, d] matrix: mean, axes (d × k, column k = axis k) and variances. */
export function principalAxes(x: ArrayLike<number>, d: number, k: number, rows?: ArrayLike<number>): { mean: Float64Array; axes: Float64Array; variances: Float64Array } {
  const kk = Math.min(k, d);
  if (d > 150 && kk < d / 4) return randomizedPca(x, d, kk, rows);
  const { mean, cov } = meanCov(x, d, rows);
  const { values, vectors } = symmetricEigen(cov, d);
  const axes = new Float64Array(d * kk);
  for (let i = 0; i < d; i++) for (let c = 0; c < kk; c++) axes[i * kk + c] = vectors[i * d + c];
  return { mean, axes, variances: values.slice(0, kk).map((v) => Math.max(0, v)) };
}

/**
 * Leading principal axes of wide data by randomised subspace iteration on the data matrix
 * itself (Halko, Martinsson & Tropp 2011): the d × d covariance is never formed, and zero
 * entries (most pixels of a digit) are skipped, which makes 784-pixel images cheap.
 */
function randomizedPca(x: ArrayLike<number>, d: number, k: number, rows?: ArrayLike<number>): { mean: Float64Array; axes: Float64Array; variances: Float64Array } {
  const m = rows ? rows.length : x.length / d;
  const at = (i: number): number => (rows ? rows[i] : i) * d;
  const mean = new Float64Array(d);
  for (let i = 0; i < m; i++) {
    const o = at(i);
    for (let j = 0; j < d; j++) mean[j] += x[o + j];
  }
  for (let j = 0; j < d; j++) mean[j] /= m;
  const p = Math.min(d, m, k + 10);
  // Y = Xc·Q for a d × p block Q (m × p result), using Xc = X − 1·meanᵀ.
  const times = (q: Float64Array, out: Float64Array): void => {
    const shift = new Float64Array(p);
    for (let j = 0; j < d; j++) for (let c = 0; c < p; c++) shift[c] += mean[j] * q[j * p + c];
    for (let i = 0; i < m; i++) {
      const o = at(i);
      const row = i * p;
      for (let c = 0; c < p; c++) out[row + c] = -shift[c];
      for (let j = 0; j < d; j++) {
        const v = x[o + j];
        if (v === 0) continue;
        const qj = j * p;
        for (let c = 0; c < p; c++) out[row + c] += v * q[qj + c];
      }
    }
  };
  // Z = Xcᵀ·Y for an m × p block Y (d × p result).
  const timesT = (y: Float64Array, out: Float64Array): void => {
    out.fill(0);
    const colSum = new Float64Array(p);
    for (let i = 0; i < m; i++) {
      const o = at(i);
      const row = i * p;
      for (let c = 0; c < p; c++) colSum[c] += y[row + c];
      for (let j = 0; j < d; j++) {
        const v = x[o + j];
        if (v === 0) continue;
        const zj = j * p;
        for (let c = 0; c < p; c++) out[zj + c] += v * y[row + c];
      }
    }
    for (let j = 0; j < d; j++) for (let c = 0; c < p; c++) out[j * p + c] -= mean[j] * colSum[c];
  };
  const q = new Float64Array(d * p);
  let s = 2463534242;
  for (let i = 0; i < q.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    q[i] = (s >>> 0) / 4294967296 - 0.5;
  }
  const y = new Float64Array(m * p);
  for (let it = 0; it < 4; it++) {
    times(q, y);
    orthonormalise(y, m, p);
    timesT(y, q);
    orthonormalise(q, d, p);
  }
  // Rayleigh–Ritz in the found subspace: eigenpairs of Qᵀ(XcᵀXc)Q = (XcQ)ᵀ(XcQ).
  times(q, y);
  const t = new Float64Array(p * p);
  for (let a = 0; a < p; a++) {
    for (let b = a; b < p; b++) {
      let v = 0;
      for (let i = 0; i < m; i++) v += y[i * p + a] * y[i * p + b];
      t[a * p + b] = v / m;
      t[b * p + a] = v / m;
    }
  }
  const small = symmetricEigen(t, p);
  const axes = new Float64Array(d * k);
  for (let j = 0; j < d; j++) {
    for (let c = 0; c < k; c++) {
      let v = 0;
      for (let a = 0; a < p; a++) v += q[j * p + a] * small.vectors[a * p + c];
      axes[j * k + c] = v;
    }
  }
  return { mean, axes, variances: small.values.slice(0, k).map((v) => Math.max(0, v)) };
}

/** Rows of x projected on the axes: [n, k] as Float32 (centred at `mean`). */
export function project(x: ArrayLike<number>, d: number, mean: Float64Array, axes: Float64Array, k: number): Float32Array {
  const n = x.length / d;
  const out = new Float32Array(n * k);
  const acc = new Float64Array(k);
  for (let i = 0; i < n; i++) {
    acc.fill(0);
    const o = i * d;
    for (let j = 0; j < d; j++) {
      const v = x[o + j] - mean[j];
      if (v === 0) continue;
      const a = j * k;
      for (let c = 0; c < k; c++) acc[c] += v * axes[a + c];
    }
    out.set(acc, i * k);
  }
  return out;
}

/**
 * Leading eigenvector of a symmetric positive semi-definite matrix given implicitly as
 * ZᵀZ for centred rows Z, by power iteration: never forms the d × d matrix, so it serves
 * wide representations (thousands of units) at O(n·d) per iteration.
 */
export function topSingularVector(z: Float64Array, n: number, d: number, iterations = 100, seed = 1): Float64Array {
  let v = new Float64Array(d);
  let s = seed >>> 0 || 1;
  for (let j = 0; j < d; j++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    v[j] = s / 4294967296 - 0.5;
  }
  normalise(v);
  const u = new Float64Array(n);
  for (let it = 0; it < iterations; it++) {
    for (let i = 0; i < n; i++) {
      let t = 0;
      const o = i * d;
      for (let j = 0; j < d; j++) t += z[o + j] * v[j];
      u[i] = t;
    }
    const w = new Float64Array(d);
    for (let i = 0; i < n; i++) {
      const ui = u[i];
      if (ui === 0) continue;
      const o = i * d;
      for (let j = 0; j < d; j++) w[j] += ui * z[o + j];
    }
    if (normalise(w) === 0) return v;
    let delta = 0;
    for (let j = 0; j < d; j++) delta += Math.abs(Math.abs(w[j]) - Math.abs(v[j]));
    v = w;
    if (delta < 1e-9 * d) break;
  }
  return v;
}

function normalise(v: Float64Array): number {
  let s = 0;
  for (const x of v) s += x * x;
  const norm = Math.sqrt(s);
  if (norm > 0) for (let j = 0; j < v.length; j++) v[j] /= norm;
  return norm;
}
