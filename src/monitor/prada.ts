import { BulwarkError } from '../core/index.js';
import { shapiroWilk } from './shapiro.js';
import { memoryDetectorState, type DetectorStateStore, type DetectorStream } from './state.js';
import type { DetectorVerdict, QueryDetector, QueryObservation } from './types.js';
import { RowPool, argmax, bufferToFloats, floatsToBuffer } from './vec.js';

export interface PradaOptions {
  numClasses: number;
  /** Alarm when the Shapiro–Wilk W of the key's distances falls below this. */
  delta?: number;
  /** Distances collected before the first test. */
  minQueries?: number;
  /** Rows kept per class in a key's growing set; later candidates are not added (bounds memory and per-query cost). */
  maxGrowingSet?: number;
  /** Most recent distances tested (Shapiro–Wilk is defined up to 5000). */
  maxDistances?: number;
  state?: DetectorStateStore;
}

/**
 * Defaults measured on digits against bench/extraction.js's MLP (20 epochs on the 8,000 training
 * digits): 300 benign clients, each sending the 2,000 test digits in
 * a random order of its own, and 6 Jacobian-augmentation clients (src/extraction's 'jacobian':
 * 150 natural seeds, λ = 0.1, MLP surrogate). A benign key's W is lowest in its first ~150
 * queries, when D holds few distances; its minimum from the first test on was
 *   minQueries 100: lowest 0.928 (1st percentile 0.940) — δ 0.93 flags 1 in 300, δ 0.95 7 in 300;
 *   minQueries 200: lowest 0.955 (1st percentile 0.962, median 0.983) — no order under 0.95.
 * The Jacobian clients' W is ≈ 0.99 over their natural seeds, 0.886–0.905 at query 200, 0.79–0.81
 * at 300 and 0.71–0.73 from 400 on. With minQueries 200 and δ 0.9 every one of them is flagged at
 * the first test (query 210: ten class seeds add no distance), while the lowest benign W stays
 * 0.055 above δ. (δ 0.95 would catch them no sooner, leaving benign keys a 0.005 margin.)
 * A client with only ten seeds and a logistic surrogate (test/monitor/jacobian.ts, 1 per class)
 * kept W ≈ 0.95 against this MLP: PRADA does not see every Jacobian client.
 */
export const PRADA_DEFAULT_DELTA = 0.9;
export const PRADA_DEFAULT_MIN_QUERIES = 200;
/** Per class: 10 classes × 300 rows × 784 floats ≈ 9.4 MB per key at most, ≤ 0.25 ms per query. */
export const PRADA_DEFAULT_MAX_GROWING_SET = 300;
export const PRADA_DEFAULT_MAX_DISTANCES = 5000;

interface ClassSet {
  pool: RowPool | null;
  /** Count, sum and sum of squares of D_Gc: the seed's 0, then the distances that admitted later members. */
  n: number;
  sum: number;
  sumSq: number;
  threshold: number;
}

interface PradaState {
  queries: number;
  classes: ClassSet[];
  /** Distances in arrival order (ring) and ascending (for the test). */
  ring: Float64Array;
  ringStart: number;
  ringCount: number;
  sorted: Float64Array;
  w: number;
  flagged: boolean;
  flaggedAt: number;
}

interface PradaEvent {
  cls: number;
  x: Float32Array;
}

/**
 * PRADA (Juuti et al., 2019): for each key and predicted class, a growing set of the key's
 * queries; each new query's minimum L2 distance to its class's set goes into the key's
 * distance set D, and the query joins the set when that distance exceeds the class's
 * threshold T_Gc = max(T_Gc, mean − std of D_Gc, the seed's 0 and the distances that admitted
 * members). Benign queries give roughly normal distances; synthetic extraction queries (small
 * steps around seeds) do not, and the Shapiro–Wilk W over D (within mean ± 3 std) drops below δ.
 */
export function pradaDetector(opts: PradaOptions): QueryDetector {
  const k = opts.numClasses;
  if (!Number.isInteger(k) || k < 2) throw new BulwarkError('E_USAGE', `pradaDetector needs numClasses ≥ 2, got ${k}`);
  const delta = opts.delta ?? PRADA_DEFAULT_DELTA;
  if (!(delta > 0 && delta < 1)) throw new BulwarkError('E_USAGE', `PRADA delta must be in (0, 1), got ${delta}`);
  const minQueries = Math.max(3, opts.minQueries ?? PRADA_DEFAULT_MIN_QUERIES);
  const maxSet = opts.maxGrowingSet ?? PRADA_DEFAULT_MAX_GROWING_SET;
  const maxD = Math.min(5000, opts.maxDistances ?? PRADA_DEFAULT_MAX_DISTANCES);
  if (minQueries > maxD) throw new BulwarkError('E_USAGE', `PRADA minQueries (${minQueries}) must not exceed maxDistances (${maxD})`);
  const store = opts.state ?? memoryDetectorState();

  const stream: DetectorStream<PradaState, PradaEvent> = {
    id: `prada:${k}:${delta}:${minQueries}:${maxSet}:${maxD}`,
    init: () => ({
      queries: 0,
      classes: Array.from({ length: k }, () => ({ pool: null, n: 0, sum: 0, sumSq: 0, threshold: 0 })),
      ring: new Float64Array(maxD),
      ringStart: 0,
      ringCount: 0,
      sorted: new Float64Array(maxD),
      w: 1,
      flagged: false,
      flaggedAt: 0,
    }),
    apply: (s, e) => applyQuery(s, e, { minQueries, maxSet, maxD, delta }),
    encode: (e) => floatsToBuffer(e.x, [e.cls]),
    decode: (b) => {
      const { header, values } = bufferToFloats(b, 1);
      return { cls: header[0], x: values };
    },
  };

  const verdict = (key: string, s: PradaState): DetectorVerdict => ({
    detector: 'prada',
    key,
    flagged: s.flagged,
    score: s.w,
    threshold: delta,
    queries: s.queries,
    detail: s.flagged
      ? `key ${key} looks like a model-extraction client: its query distances stopped looking normal (Shapiro–Wilk W ${s.w.toFixed(3)} < ${delta}) after ${s.flaggedAt} queries`
      : s.ringCount < minQueries
        ? `key ${key}: ${s.ringCount} of ${minQueries} query distances collected before PRADA tests them`
        : `key ${key}: query distances look normal (Shapiro–Wilk W ${s.w.toFixed(3)} ≥ ${delta}) over ${s.queries} queries`,
  });

  return {
    name: 'prada',
    async observe(batch: readonly QueryObservation[]): Promise<DetectorVerdict[]> {
      const byKey = new Map<string, PradaEvent[]>();
      for (const o of batch) {
        if (o.probabilities.length !== k) {
          throw new BulwarkError('E_DATA_SHAPE', `PRADA was set up for ${k} classes but key ${o.key} sent a row with ${o.probabilities.length} probabilities`);
        }
        let list = byKey.get(o.key);
        if (!list) byKey.set(o.key, (list = []));
        list.push({ cls: argmax(o.probabilities), x: o.x });
      }
      const out: DetectorVerdict[] = [];
      for (const [key, events] of byKey) out.push(verdict(key, await store.append(stream, key, events)));
      return out;
    },
    async status(key: string): Promise<DetectorVerdict | null> {
      const s = await store.read(stream, key);
      return s ? verdict(key, s) : null;
    },
    reset: (key: string) => store.clear(stream, key),
  };
}

function applyQuery(s: PradaState, e: PradaEvent, o: { minQueries: number; maxSet: number; maxD: number; delta: number }): void {
  s.queries++;
  const c = s.classes[e.cls];
  if (!c) return;
  if (!c.pool) {
    // A class's first query only seeds its growing set: there is nothing to measure it against.
    c.pool = new RowPool(e.x.length);
    c.pool.push(e.x);
    c.n = 1; // the seed enters D_Gc as distance 0, which keeps T_Gc at 0 until a second member spreads the set
    return;
  }
  if (c.pool.dim !== e.x.length) return;
  const d = c.pool.minDistance(e.x);
  // Juuti et al. 2019, Alg. 1: admit x when d_min > T_Gc, add d_min to D_Gc (seeded with 0), T_Gc ← max(T_Gc, mean(D_Gc) − std(D_Gc)).
  if (d > c.threshold && c.pool.count < o.maxSet) {
    c.pool.push(e.x);
    c.n++;
    c.sum += d;
    c.sumSq += d * d;
    const mean = c.sum / c.n;
    const std = Math.sqrt(Math.max(0, c.sumSq / c.n - mean * mean));
    c.threshold = Math.max(c.threshold, mean - std);
  }
  pushDistance(s, d, o.maxD);
  if (s.ringCount >= o.minQueries) {
    const kept = withinThreeSigma(s.sorted, s.ringCount);
    if (kept.length >= 3) s.w = shapiroWilk(kept, { sorted: true }).statistic;
    if (!s.flagged && s.w < o.delta) {
      s.flagged = true;
      s.flaggedAt = s.queries;
    }
  }
}

/**
 * D′ of Alg. 1: the distances within mean ± 3 std of D. A handful of far-off queries (a
 * benign client's odd image) would otherwise dominate W; the ascending copy makes D′ one slice.
 */
function withinThreeSigma(sorted: Float64Array, n: number): Float64Array {
  let sum = 0;
  let sumSq = 0;
  for (let i = 0; i < n; i++) {
    sum += sorted[i];
    sumSq += sorted[i] * sorted[i];
  }
  const mean = sum / n;
  const std = Math.sqrt(Math.max(0, sumSq / n - mean * mean));
  if (std === 0) return sorted.subarray(0, n);
  const lo = lowerBound(sorted, n, mean - 3 * std);
  let hi = lowerBound(sorted, n, mean + 3 * std);
  while (hi < n && sorted[hi] <= mean + 3 * std) hi++;
  return sorted.subarray(lo, hi);
}

/** Adds a distance to the ring and the ascending copy, dropping the oldest when full. */
function pushDistance(s: PradaState, d: number, maxD: number): void {
  if (s.ringCount === maxD) {
    const old = s.ring[s.ringStart];
    s.ringStart = (s.ringStart + 1) % maxD;
    s.ringCount--;
    const at = lowerBound(s.sorted, s.ringCount + 1, old);
    s.sorted.copyWithin(at, at + 1, s.ringCount + 1);
  }
  s.ring[(s.ringStart + s.ringCount) % maxD] = d;
  const at = lowerBound(s.sorted, s.ringCount, d);
  s.sorted.copyWithin(at + 1, at, s.ringCount);
  s.sorted[at] = d;
  s.ringCount++;
}

function lowerBound(a: Float64Array, n: number, v: number): number {
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
