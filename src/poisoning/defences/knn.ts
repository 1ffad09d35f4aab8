/**
 * Exact k nearest neighbours of every row among the other rows (leave-one-out), by brute
 * force over blocks of rows: O(n²·d), fine for the tens of thousands of rows the in-memory
 * scan handles, with no index to build or tune.
 */
export interface Neighbours {
  readonly k: number;
  /** index[i * k + r]: the r-th nearest other row of row i (nearest first). */
  readonly index: Int32Array;
  /** Squared Euclidean distances, same layout. */
  readonly dist2: Float32Array;
}

export function nearestNeighbours(x: ArrayLike<number>, n: number, d: number, k: number): Neighbours {
  const kk = Math.max(0, Math.min(k, n - 1));
  const index = new Int32Array(n * kk).fill(-1);
  const dist2 = new Float32Array(n * kk).fill(Infinity);
  if (kk === 0) return { k: kk, index, dist2 };
  const rows = x instanceof Float64Array ? x : Float64Array.from(x);
  const norms = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += rows[i * d + j] ** 2;
    norms[i] = s;
  }
  // Worst distance kept so far per row: a candidate farther than it is dropped at once.
  const worst = new Float64Array(n).fill(Infinity);
  const BLOCK = 64;
  for (let i0 = 0; i0 < n; i0 += BLOCK) {
    const i1 = Math.min(n, i0 + BLOCK);
    for (let j0 = i0; j0 < n; j0 += BLOCK) {
      const j1 = Math.min(n, j0 + BLOCK);
      for (let i = i0; i < i1; i++) {
        const oi = i * d;
        for (let j = j0 === i0 ? i + 1 : j0; j < j1; j++) {
          const oj = j * d;
          let dot = 0;
          for (let t = 0; t < d; t++) dot += rows[oi + t] * rows[oj + t];
          const dd = Math.max(0, norms[i] + norms[j] - 2 * dot);
          if (dd < worst[i]) worst[i] = insert(index, dist2, i, kk, j, dd);
          if (dd < worst[j]) worst[j] = insert(index, dist2, j, kk, i, dd);
        }
      }
    }
  }
  return { k: kk, index, dist2 };
}

/** Insertion into row r's sorted list; returns the new worst kept distance. */
function insert(index: Int32Array, dist2: Float32Array, r: number, k: number, j: number, dd: number): number {
  const o = r * k;
  let p = k - 1;
  while (p > 0 && dist2[o + p - 1] > dd) {
    dist2[o + p] = dist2[o + p - 1];
    index[o + p] = index[o + p - 1];
    p--;
  }
  dist2[o + p] = dd;
  index[o + p] = j;
  return dist2[o + k - 1];
}
