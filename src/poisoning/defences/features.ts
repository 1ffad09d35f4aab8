import { principalAxes, project } from './pca.js';

/**
 * The space distances are measured in: the columns themselves when there are at most
 * `maxDims` (raw for the affine-invariant robust distance, standardised for neighbour
 * search), else the leading principal components (fitted on up to 2,000 rows; images are
 * not standardised, their pixels share one scale).
 */
export function distanceSpace(
  x: ArrayLike<number>,
  n: number,
  d: number,
  opts: { maxDims: number; image?: boolean; seed: number },
): { space: ArrayLike<number>; knnSpace: ArrayLike<number>; dims: number; note?: string } {
  if (d <= opts.maxDims) return { space: x, knnSpace: standardiseColumns(x, n, d), dims: d };
  const scaled = opts.image ? x : standardiseColumns(x, n, d);
  const sample = n > 2000 ? sampleRows(n, 2000, opts.seed) : undefined;
  const pca = principalAxes(scaled, d, opts.maxDims, sample);
  const space = project(scaled, d, pca.mean, pca.axes, opts.maxDims);
  return {
    space,
    knnSpace: space,
    dims: opts.maxDims,
    note: `distances on the leading ${opts.maxDims} principal components of the ${d} ${opts.image ? 'pixels' : 'standardised columns'}`,
  };
}

export function standardiseColumns(x: ArrayLike<number>, n: number, d: number): Float64Array {
  const mean = new Float64Array(d);
  const sq = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j] += x[i * d + j];
  for (let j = 0; j < d; j++) mean[j] /= n;
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) sq[j] += (x[i * d + j] - mean[j]) ** 2;
  const scale = Float64Array.from(sq, (v) => (v > 0 ? Math.sqrt(v / n) : 1));
  return Float64Array.from({ length: n * d }, (_, t) => (x[t] - mean[t % d]) / scale[t % d]);
}

function sampleRows(n: number, m: number, seed: number): Int32Array {
  // A fixed stride through a seeded permutation would do as well; a sorted sample keeps memory access in order.
  const out = new Int32Array(m);
  let s = seed >>> 0 || 1;
  const picked = new Uint8Array(n);
  let c = 0;
  while (c < m) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const r = Math.floor((s / 4294967296) * n);
    if (picked[r]) continue;
    picked[r] = 1;
    out[c++] = r;
  }
  return out.sort();
}

