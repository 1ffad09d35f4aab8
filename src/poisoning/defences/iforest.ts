import { BulwarkError, Rng } from '../../core/index.js';

export interface IsolationForestOptions {
  /** Trees (default 100). */
  trees?: number;
  /** Rows drawn for each tree (default 256, as Liu et al. recommend). */
  sampleSize?: number;
  seed?: number;
}

/**
 * An isolation forest (Liu, Ting & Zhou 2008): random axis-aligned splits isolate an
 * unusual row in fewer steps than a typical one. Trees are grown from small samples, so a
 * forest fitted on a sample can score a stream of any length, one row at a time.
 */
export class IsolationForest {
  // All trees in flat arrays (node ids are global), so scoring touches few objects.
  private feature = new Int32Array(0);
  private threshold = new Float64Array(0);
  private left = new Int32Array(0);
  private right = new Int32Array(0);
  /** For a leaf: its depth plus c(leaf size), the path length it stands for. */
  private leafLength = new Float64Array(0);
  private readonly roots: number[] = [];
  private readonly norm: number;

  private constructor(readonly d: number, readonly sampleSize: number) {
    this.norm = averagePathLength(sampleSize);
  }

  static fit(x: ArrayLike<number>, n: number, d: number, opts: IsolationForestOptions = {}): IsolationForest {
    const trees = opts.trees ?? 100;
    if (!Number.isInteger(trees) || trees < 1) throw new BulwarkError('E_USAGE', `trees must be a positive integer, got ${trees}`);
    if (n < 2) throw new BulwarkError('E_DATA_SHAPE', `an isolation forest needs at least 2 rows, got ${n}`);
    const psi = Math.min(n, opts.sampleSize ?? 256);
    const rng = new Rng(opts.seed ?? 42);
    const forest = new IsolationForest(d, psi);
    const maxDepth = Math.ceil(Math.log2(Math.max(2, psi)));
    const nodes: Node[] = [];
    for (let t = 0; t < trees; t++) {
      const sample = rng.permutation(n).slice(0, psi);
      forest.roots.push(nodes.length);
      forest.grow(x, sample, maxDepth, rng, nodes);
    }
    forest.feature = Int32Array.from(nodes, (v) => v.feature);
    forest.threshold = Float64Array.from(nodes, (v) => v.threshold);
    forest.left = Int32Array.from(nodes, (v) => v.left);
    forest.right = Int32Array.from(nodes, (v) => v.right);
    forest.leafLength = Float64Array.from(nodes, (v) => v.leafLength);
    return forest;
  }

  private grow(x: ArrayLike<number>, sample: Int32Array, maxDepth: number, rng: Rng, nodes: Node[]): void {
    const d = this.d;
    const lo = new Float64Array(d);
    const hi = new Float64Array(d);
    const build = (rows: Int32Array, depth: number): number => {
      const id = nodes.length;
      const node: Node = { feature: -1, threshold: 0, left: -1, right: -1, leafLength: depth + averagePathLength(rows.length) };
      nodes.push(node);
      if (depth >= maxDepth || rows.length <= 1) return id;
      // A split on a feature that is constant within the node would isolate nothing.
      lo.fill(Infinity);
      hi.fill(-Infinity);
      for (const r of rows) {
        for (let j = 0; j < d; j++) {
          const v = x[r * d + j];
          if (v < lo[j]) lo[j] = v;
          if (v > hi[j]) hi[j] = v;
        }
      }
      const candidates: number[] = [];
      for (let j = 0; j < d; j++) if (hi[j] > lo[j]) candidates.push(j);
      if (candidates.length === 0) return id;
      const f = candidates[rng.int(candidates.length)];
      const cut = lo[f] + rng.next() * (hi[f] - lo[f]);
      node.feature = f;
      node.threshold = cut;
      node.left = build(rows.filter((r) => x[r * d + f] < cut), depth + 1);
      node.right = build(rows.filter((r) => x[r * d + f] >= cut), depth + 1);
      return id;
    };
    build(sample, 0);
  }

  /** Anomaly score in (0, 1) of the row at `offset`: near 1 anomalous, 0.5 or below ordinary. */
  scoreRow(x: ArrayLike<number>, offset: number): number {
    const { feature, threshold, left, right, leafLength, roots } = this;
    let total = 0;
    for (let t = 0; t < roots.length; t++) {
      let node = roots[t];
      while (feature[node] >= 0) node = x[offset + feature[node]] < threshold[node] ? left[node] : right[node];
      // A leaf holding several rows stands for a subtree that was not grown.
      total += leafLength[node];
    }
    return 2 ** (-(total / roots.length) / this.norm);
  }

  score(x: ArrayLike<number>, n: number): Float64Array {
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = this.scoreRow(x, i * this.d);
    return out;
  }
}

interface Node {
  feature: number;
  threshold: number;
  left: number;
  right: number;
  leafLength: number;
}

/** c(n): the average path length of an unsuccessful search in a binary search tree of n keys. */
function averagePathLength(n: number): number {
  if (n <= 1) return 0;
  if (n === 2) return 1;
  return 2 * (Math.log(n - 1) + 0.5772156649015329) - (2 * (n - 1)) / n;
}
