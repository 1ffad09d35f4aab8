import type { DetectorVerdict, OodDetector, QueryDetector, QueryObservation } from '../../monitor/index.js';
import type { Counters } from './counters.js';

function byKey(batch: readonly QueryObservation[]): Map<string, QueryObservation[]> {
  const m = new Map<string, QueryObservation[]>();
  for (const o of batch) {
    const list = m.get(o.key);
    if (list) list.push(o);
    else m.set(o.key, [o]);
  }
  return m;
}

/**
 * Query volume: flags a key once it sends more than `rows` rows within one window of
 * `perSeconds`. Extraction needs many queries; this is the cheapest signal of them, and it
 * catches a key spreading its queries under the rate limit but far above normal use.
 */
export function volumeDetector(opts: { rows: number; perSeconds: number; counters: Counters }): QueryDetector {
  const { rows, perSeconds, counters } = opts;
  const windowOf = () => Math.floor(Date.now() / (perSeconds * 1000));
  const verdict = (key: string, inWindow: number, total: number, flagged: boolean): DetectorVerdict => ({
    detector: 'volume',
    key,
    flagged,
    score: inWindow,
    threshold: rows,
    queries: total,
    detail: flagged
      ? `key ${key} sent ${inWindow} rows within ${perSeconds} s, over the ${rows} allowed before an alert`
      : `key ${key}: ${inWindow} of ${rows} rows in the current ${perSeconds} s window`,
  });
  return {
    name: 'volume',
    async observe(batch) {
      const out: DetectorVerdict[] = [];
      const w = windowOf();
      for (const [key, obs] of byKey(batch)) {
        const win = await counters.add(`volume:${key}:${w}`, { rows: obs.length }, perSeconds * 2);
        const inWindow = win.rows ?? 0;
        const over = inWindow > rows;
        const state = await counters.add(`volume:${key}`, { total: obs.length, ...(over ? { flagged: 1 } : {}) });
        out.push(verdict(key, inWindow, state.total ?? 0, (state.flagged ?? 0) > 0));
      }
      return out;
    },
    async status(key) {
      const state = await counters.get(`volume:${key}`);
      if (!state.total) return null;
      const win = await counters.get(`volume:${key}:${windowOf()}`);
      return verdict(key, win.rows ?? 0, state.total, (state.flagged ?? 0) > 0);
    },
    async reset(key) {
      const w = windowOf();
      await counters.delete([`volume:${key}`, `volume:${key}:${w}`, `volume:${key}:${w - 1}`]);
    },
  };
}

/** The rows of a batch as one Samples, for a detector that scores several at once. */
function stack(obs: readonly QueryObservation[]): { data: Float32Array; shape: number[] } {
  const d = obs[0].x.length;
  const data = new Float32Array(obs.length * d);
  obs.forEach((o, i) => data.set(o.x, i * d));
  return { data, shape: [obs.length, d] };
}

export interface OodRateDetector extends QueryDetector {
  /** Rows scored and rows over the threshold, all keys together, since the start (this process). */
  totals(): { rows: number; outOfDistribution: number };
}

/**
 * Out-of-distribution inputs per key: each row gets the Mahalanobis score of `ood`; a key is
 * flagged once at least `minQueries` of its rows were seen and the share over the threshold
 * reaches `maxRate`. The counts halve past 20 × minQueries, so old traffic fades.
 */
export function oodRateDetector(opts: { ood: OodDetector; maxRate: number; minQueries: number; counters: Counters }): OodRateDetector {
  const { ood, maxRate, minQueries, counters } = opts;
  const totals = { rows: 0, outOfDistribution: 0 };
  const verdict = (key: string, s: Record<string, number>): DetectorVerdict => {
    const rows = s.rows ?? 0;
    const rate = rows > 0 ? (s.over ?? 0) / rows : 0;
    const flagged = (s.flagged ?? 0) > 0;
    return {
      detector: 'ood',
      key,
      flagged,
      score: rate,
      threshold: maxRate,
      queries: s.total ?? 0,
      detail: `key ${key}: ${(rate * 100).toFixed(1)}% of its recent ${Math.round(rows)} rows are out of distribution (Mahalanobis score over ${ood.threshold.toPrecision(4)}); ${flagged ? 'flagged' : 'alert'} at ${(maxRate * 100).toFixed(0)}%`,
    };
  };
  return {
    name: 'ood',
    totals: () => ({ ...totals }),
    async observe(batch) {
      if (batch.length === 0) return [];
      const scores = ood.score(stack(batch));
      const out: DetectorVerdict[] = [];
      let i = 0;
      const over = new Map<string, number>();
      for (const o of batch) {
        if (scores[i++] > ood.threshold) {
          over.set(o.key, (over.get(o.key) ?? 0) + 1);
          totals.outOfDistribution++;
        }
      }
      totals.rows += batch.length;
      for (const [key, obs] of byKey(batch)) {
        let s = await counters.add(`ood:${key}`, { rows: obs.length, over: over.get(key) ?? 0, total: obs.length });
        if ((s.rows ?? 0) > 20 * minQueries) s = await counters.add(`ood:${key}`, { rows: -(s.rows ?? 0) / 2, over: -(s.over ?? 0) / 2 });
        if ((s.flagged ?? 0) === 0 && (s.total ?? 0) >= minQueries && (s.over ?? 0) / Math.max(1, s.rows ?? 0) >= maxRate) s = await counters.add(`ood:${key}`, { flagged: 1 });
        out.push(verdict(key, s));
      }
      return out;
    },
    async status(key) {
      const s = await counters.get(`ood:${key}`);
      return s.total ? verdict(key, s) : null;
    },
    async reset(key) {
      await counters.delete([`ood:${key}`]);
    },
  };
}
