import { BulwarkError, Rng, sampleCount, sampleSize, type Samples } from '../core/index.js';
import { memoryDetectorState, type DetectorStateStore, type DetectorStream } from './state.js';
import type { DetectorVerdict, QueryDetector, QueryObservation } from './types.js';
import { bufferToFloats, floatsToBuffer, quantileSorted } from './vec.js';

export interface SimilarityOptions {
  /** Alarm when the mean distance to the k nearest past queries falls below this (from calibrateSimilarityThreshold). */
  threshold: number;
  k?: number;
  /** Past queries kept per key (oldest dropped first). */
  history?: number;
  /** Dimension of the seeded random projection queries are compared in (0: raw inputs). Must match calibration. */
  projection?: number;
  /** Detections (a query under the threshold) that flag the key when they fall within `window` of its queries. */
  alarms?: number;
  /** Queries within which `alarms` detections flag the key. */
  window?: number;
  state?: DetectorStateStore;
}

/** Chen et al. use k = 50 neighbours. */
export const SIMILARITY_DEFAULT_K = 50;
/**
 * 500 projected rows × 64 floats = 128 KB per key; ≈ 0.05 ms per query. The same as the
 * calibration's clients: with a longer history than calibrated, benign neighbours come nearer
 * and a full 1,000-row history tripped a 0.1% threshold once every ~550 benign queries.
 */
export const SIMILARITY_DEFAULT_HISTORY = 500;
/**
 * Chen et al. compare queries through a learned similarity encoder; without one, a seeded
 * Gaussian projection to 64 dimensions keeps L2 distances within a few per cent
 * (Johnson–Lindenstrauss) at a twelfth of the cost of 784 raw pixels.
 */
export const SIMILARITY_DEFAULT_PROJECTION = 64;
const PROJECTION_SEED = 0x5eed;
/**
 * A single query under the threshold is a detection, not a verdict on the key: at a per-query
 * rate of 0.1%, 7 of 16 benign 500-query clients had one, and every long-lived key would. As
 * Chen et al. do, the key's history is cleared after each detection (one burst of alike benign
 * queries counts once; an attacker must send k more queries before it can be detected again),
 * and the key is flagged at `alarms` detections within `window` queries. Measured on digits,
 * threshold 'auto' (calibrated on the 2,000 test digits), 40 benign clients of 2,000 queries
 * (20 of unseen training digits, 20 of the test digits reordered): 3.1 detections per client at
 * fpr 0.001 (4.7 at 0.01), never 3 within 500 queries (3 within 1,000: 14 of 40 clients). Near-
 * duplicate probing is detected every k + 1 queries, so it is flagged at query 3(k + 1) = 153.
 */
export const SIMILARITY_DEFAULT_WINDOW = 500;
export const SIMILARITY_DEFAULT_ALARMS = 3;

const projections = new Map<string, Float32Array>();

/** The [dim, outDim] projection matrix, the same in every process for the same sizes. */
function projectionMatrix(dim: number, outDim: number): Float32Array {
  const id = `${dim}x${outDim}`;
  let m = projections.get(id);
  if (!m) {
    const rng = new Rng(PROJECTION_SEED);
    m = new Float32Array(dim * outDim);
    const scale = 1 / Math.sqrt(outDim);
    for (let i = 0; i < m.length; i++) m[i] = rng.normal() * scale;
    projections.set(id, m);
  }
  return m;
}

function project(x: Float32Array, outDim: number): Float32Array {
  if (outDim <= 0 || outDim >= x.length) return x;
  const m = projectionMatrix(x.length, outDim);
  const out = new Float32Array(outDim);
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (v === 0) continue; // images are mostly background
    const row = i * outDim;
    for (let j = 0; j < outDim; j++) out[j] += v * m[row + j];
  }
  return out;
}

interface SimilarityState {
  rows: Float32Array | null;
  /** Query numbers of the latest detections (at most `alarms`, oldest first). */
  detections?: number[];
  detectionCount?: number;
  dim: number;
  /** Ring of the last `history` projected queries. */
  start: number;
  count: number;
  queries: number;
  score: number;
  flagged: boolean;
  flaggedAt: number;
}

/** Mean of the k smallest distances from `q` to the rows held (NaN while fewer than k rows). */
function meanKnn(s: SimilarityState, q: Float32Array, k: number, topK: Float64Array): number {
  if (!s.rows || s.count < k) return NaN;
  const d = s.dim;
  let filled = 0;
  // topK holds the k smallest squared distances so far, ascending.
  for (let r = 0; r < s.count; r++) {
    const off = r * d;
    const bound = filled < k ? Infinity : topK[k - 1];
    let acc = 0;
    for (let i = 0; i < d; i++) {
      const t = s.rows[off + i] - q[i];
      acc += t * t;
    }
    if (acc >= bound) continue;
    let at = filled < k ? filled++ : k - 1;
    while (at > 0 && topK[at - 1] > acc) {
      topK[at] = topK[at - 1];
      at--;
    }
    topK[at] = acc;
  }
  let sum = 0;
  for (let i = 0; i < k; i++) sum += Math.sqrt(topK[i]);
  return sum / k;
}

function pushRow(s: SimilarityState, q: Float32Array, history: number): void {
  if (!s.rows) {
    s.dim = q.length;
    s.rows = new Float32Array(history * q.length);
  }
  if (q.length !== s.dim) return;
  const slot = (s.start + s.count) % history;
  s.rows.set(q, slot * s.dim);
  if (s.count < history) s.count++;
  else s.start = (s.start + 1) % history;
}

/**
 * Stateful query-similarity detection (Chen, Carlini & Wagner, 2020): black-box attacks
 * (boundary, score-based, extraction by perturbation) send many near-duplicate queries, so
 * the mean distance from a query to its k nearest predecessors from the same key collapses.
 */
export function similarityDetector(opts: SimilarityOptions): QueryDetector {
  const threshold = opts.threshold;
  if (!(threshold > 0) || !Number.isFinite(threshold)) {
    throw new BulwarkError('E_USAGE', `similarityDetector needs a positive threshold (from calibrateSimilarityThreshold), got ${threshold}`);
  }
  const k = opts.k ?? SIMILARITY_DEFAULT_K;
  const history = opts.history ?? SIMILARITY_DEFAULT_HISTORY;
  const proj = opts.projection ?? SIMILARITY_DEFAULT_PROJECTION;
  if (!Number.isInteger(k) || k < 1 || !Number.isInteger(history) || history < k) {
    throw new BulwarkError('E_USAGE', `similarityDetector needs an integer k ≥ 1 and history ≥ k, got k = ${k}, history = ${history}`);
  }
  const alarms = opts.alarms ?? SIMILARITY_DEFAULT_ALARMS;
  const window = opts.window ?? SIMILARITY_DEFAULT_WINDOW;
  if (!Number.isInteger(alarms) || alarms < 1 || !Number.isInteger(window) || window < alarms) {
    throw new BulwarkError('E_USAGE', `similarityDetector needs an integer alarms ≥ 1 and window ≥ alarms, got alarms = ${alarms}, window = ${window}`);
  }
  const store = opts.state ?? memoryDetectorState();
  const topK = new Float64Array(k);

  const stream: DetectorStream<SimilarityState, Float32Array> = {
    id: `similarity:${threshold}:${k}:${history}:${proj}:${alarms}:${window}`,
    init: () => ({ rows: null, dim: 0, start: 0, count: 0, queries: 0, score: NaN, flagged: false, flaggedAt: 0, detections: [], detectionCount: 0 }),
    apply: (s, q) => {
      s.queries++;
      // Refilling after a detection: the detection's score stays on show until then, not after.
      if (s.count < k) s.score = NaN;
      const score = meanKnn(s, q, k, topK);
      if (!Number.isNaN(score)) {
        s.score = score;
        if (score < threshold) {
          const d = (s.detections ??= []);
          d.push(s.queries);
          if (d.length > alarms) d.shift();
          s.detectionCount = (s.detectionCount ?? 0) + 1;
          if (!s.flagged && d.length === alarms && s.queries - d[0] < window) {
            s.flagged = true;
            s.flaggedAt = s.queries;
          }
          // Chen et al.: after a detection the buffer starts afresh.
          s.start = 0;
          s.count = 0;
        }
      }
      pushRow(s, q, history);
    },
    encode: (q) => floatsToBuffer(q),
    decode: (b) => bufferToFloats(b, 0).values,
  };

  const verdict = (key: string, s: SimilarityState): DetectorVerdict => {
    // Between a detection and k new queries there is no score: 0 once flagged, well clear of the threshold before.
    const score = Number.isNaN(s.score) ? (s.flagged ? 0 : threshold * 10) : s.score;
    return {
      detector: 'similarity',
      key,
      flagged: s.flagged,
      score,
      threshold,
      queries: s.queries,
      detail: s.flagged
        ? `key ${key} sent near-duplicate queries (mean distance to its ${k} nearest earlier queries fell below ${threshold.toPrecision(3)} ${alarms} times within ${window} queries) after ${s.flaggedAt} queries, as black-box attacks do`
        : Number.isNaN(s.score)
          ? `key ${key}: ${s.count} of ${k} earlier queries collected before similarity is measured`
          : `key ${key}: queries are not unusually similar (mean ${k}-nearest distance ${s.score.toPrecision(3)} ≥ ${threshold.toPrecision(3)})`,
    };
  };

  return {
    name: 'similarity',
    async observe(batch: readonly QueryObservation[]): Promise<DetectorVerdict[]> {
      const byKey = new Map<string, Float32Array[]>();
      for (const o of batch) {
        let list = byKey.get(o.key);
        if (!list) byKey.set(o.key, (list = []));
        list.push(project(o.x, proj));
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

/**
 * The threshold at which benign traffic trips the detector on a share `fpr` of its queries:
 * `benign` is dealt in random order to simulated clients of `queriesPerClient` queries each,
 * and every query scored (once its client has k earlier ones) as the detector would.
 */
export function calibrateSimilarityThreshold(
  benign: Samples,
  opts: { k?: number; fpr?: number; queriesPerClient?: number; seed?: number; history?: number; projection?: number } = {},
): number {
  const k = opts.k ?? SIMILARITY_DEFAULT_K;
  const fpr = opts.fpr ?? 0.001;
  const history = opts.history ?? SIMILARITY_DEFAULT_HISTORY;
  const proj = opts.projection ?? SIMILARITY_DEFAULT_PROJECTION;
  const n = sampleCount(benign);
  const perClient = Math.min(n, opts.queriesPerClient ?? history);
  if (!(fpr > 0 && fpr < 1)) throw new BulwarkError('E_USAGE', `fpr must be in (0, 1), got ${fpr}`);
  if (perClient <= k) {
    throw new BulwarkError('E_USAGE', `calibration needs more than k = ${k} benign queries per client; got ${perClient} (${n} rows)`);
  }
  const size = sampleSize(benign);
  const order = new Rng(opts.seed ?? 42).permutation(n);
  const scores: number[] = [];
  const topK = new Float64Array(k);
  for (let c = 0; c + perClient <= n; c += perClient) {
    const s: SimilarityState = { rows: null, dim: 0, start: 0, count: 0, queries: 0, score: NaN, flagged: false, flaggedAt: 0 };
    for (let i = c; i < c + perClient; i++) {
      const r = order[i];
      const q = project(benign.data.subarray(r * size, (r + 1) * size), proj);
      const score = meanKnn(s, q, k, topK);
      if (!Number.isNaN(score)) scores.push(score);
      pushRow(s, q, history);
    }
  }
  if (scores.length === 0) throw new BulwarkError('E_USAGE', 'calibration produced no scores; pass more benign rows');
  scores.sort((a, b) => a - b);
  return quantileSorted(scores, fpr);
}
