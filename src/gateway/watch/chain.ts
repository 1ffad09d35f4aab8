import type { Redis } from 'ioredis';
import type { Samples } from '../../core/index.js';
import type { DetectorVerdict, QueryDetector, QueryObservation } from '../../monitor/index.js';
import type { ResponseAction } from './alerts.js';
import { memoryCounters, redisCounters } from './counters.js';
import { oodRateDetector, volumeDetector, type OodRateDetector } from './detectors.js';
import { DriftWatch, type DriftRows } from './drift.js';
import type { MonitoringPolicy } from './policy.js';
import type { AlertEvent } from './responder.js';

type Monitor = typeof import('../../monitor/index.js');

/** A per-key rule: a detector and the responses to its first alarm for a key. */
export interface WatchRule {
  rule: string;
  detector: QueryDetector;
  respond: ResponseAction[];
}

/** Rows answered by one request, flattened: what crosses to the detection thread. */
export interface ChainItem {
  key: string;
  model: string;
  version: string;
  /** [rows, …inputShape] flattened; `rows` rows. */
  x: Float32Array;
  probabilities: Float32Array;
  rows: number;
  /** The model's input shape (without the batch). */
  shape: number[];
}

export interface ChainResult {
  /** Verdicts that are flagged, by rule. */
  flags: { rule: string; verdict: DetectorVerdict }[];
  /** Model-wide drift alerts raised by these rows. */
  drift: AlertEvent[];
  /** Model versions seen whose drift reference needs their predictions (see prepare). */
  needs: { model: string; version: string }[];
  /** Rules that failed on this batch, with why. */
  errors: { rule: string; detector: string; message: string }[];
  rows: number;
  /** Rows over the OOD threshold so far (this process). */
  oodTotals?: { rows: number; outOfDistribution: number };
  seconds: number;
}

export interface ChainConfig {
  monitoring: MonitoringPolicy;
  train?: Samples;
  heldOut?: Samples;
  numClasses: number;
}

/**
 * Every detector the policy asks for, fed one batch at a time. Plain computation, no server:
 * the same chain runs in the server's thread or in a detection thread of its own.
 */
export class DetectionChain {
  readonly rules: WatchRule[] = [];
  ood?: OodRateDetector;
  drift?: DriftWatch;
  similarityThreshold?: number;

  private constructor(private readonly cfg: ChainConfig) {}

  static async create(cfg: ChainConfig, store: { redis?: Redis; prefix: string }): Promise<DetectionChain> {
    const chain = new DetectionChain(cfg);
    const m = cfg.monitoring;
    const counters = store.redis ? redisCounters(store.redis, store.prefix) : memoryCounters();
    if (m.extraction.some((e) => e.detector !== 'volume') || m.ood || m.drift) {
      // Loaded only when the policy needs it: a gateway without these detectors never pays for them.
      const mon: Monitor = await import('../../monitor/index.js');
      const state = store.redis ? mon.redisDetectorState(store.redis, `${store.prefix}:state`) : mon.memoryDetectorState();
      const def = <T>(k: string, v: T | undefined) => (v !== undefined ? { [k]: v } : {});
      for (const e of m.extraction) {
        if (e.detector === 'prada') {
          chain.rules.push({ rule: 'extraction', respond: e.respond, detector: mon.pradaDetector({ numClasses: cfg.numClasses, ...def('delta', e.delta), ...def('minQueries', e.minQueries), state }) });
        } else if (e.detector === 'similarity') {
          const shape = { ...def('k', e.k), ...def('history', e.history) };
          const threshold = e.threshold === 'auto' ? mon.calibrateSimilarityThreshold(cfg.heldOut!, { ...shape, ...def('fpr', e.fpr) }) : e.threshold;
          chain.similarityThreshold = threshold;
          chain.rules.push({ rule: 'extraction', respond: e.respond, detector: mon.similarityDetector({ threshold, ...shape, ...def('alarms', e.alarms), ...def('window', e.window), state }) });
        }
      }
      if (m.ood && cfg.train && cfg.heldOut) {
        chain.ood = oodRateDetector({ ood: mon.fitOodDetector(cfg.train, cfg.heldOut, { fpr: m.ood.fpr }), maxRate: m.ood.maxRate, minQueries: m.ood.minQueries, counters });
        chain.rules.push({ rule: 'ood', respond: m.ood.respond, detector: chain.ood });
      }
      if (m.drift && cfg.heldOut) chain.drift = new DriftWatch(mon, cfg.heldOut, m.drift);
    }
    for (const e of m.extraction) {
      if (e.detector === 'volume') chain.rules.push({ rule: 'extraction', respond: e.respond, detector: volumeDetector({ rows: e.rows, perSeconds: e.perSeconds, counters }) });
    }
    return chain;
  }

  /** Gives drift a model version's predictions on the reference rows (`cfg.heldOut`). */
  prepare(model: string, version: string, probabilities: Samples): void {
    this.drift?.prepare(model, version, probabilities);
  }

  async observe(items: readonly ChainItem[]): Promise<ChainResult> {
    const t0 = performance.now();
    const obs: QueryObservation[] = [];
    for (const item of items) {
      const d = item.x.length / item.rows;
      const c = item.probabilities.length / item.rows;
      for (let i = 0; i < item.rows; i++) obs.push({ key: item.key, x: item.x.subarray(i * d, (i + 1) * d), probabilities: item.probabilities.subarray(i * c, (i + 1) * c) });
    }
    const result: ChainResult = { flags: [], drift: [], needs: [], errors: [], rows: obs.length, seconds: 0 };
    for (const r of this.rules) {
      try {
        for (const v of await r.detector.observe(obs)) if (v.flagged) result.flags.push({ rule: r.rule, verdict: v });
      } catch (e) {
        result.errors.push({ rule: r.rule, detector: r.detector.name, message: (e as Error).message });
      }
    }
    if (this.drift) {
      try {
        const rows: DriftRows[] = items.map((i) => ({
          model: i.model,
          version: i.version,
          x: { data: i.x, shape: [i.rows, ...i.shape] },
          probabilities: { data: i.probabilities, shape: [i.rows, i.probabilities.length / i.rows] },
        }));
        result.drift = this.drift.observe(rows);
      } catch (e) {
        result.errors.push({ rule: 'drift', detector: 'drift', message: (e as Error).message });
      }
    }
    if (this.drift) result.needs = [...this.drift.missing.values()];
    if (this.ood) result.oodTotals = this.ood.totals();
    result.seconds = (performance.now() - t0) / 1000;
    return result;
  }

  async reset(key: string): Promise<void> {
    for (const r of this.rules) await r.detector.reset(key);
  }

  /** What /admin/monitor shows of the detectors themselves. */
  status(): ChainStatus {
    const totals = this.ood?.totals();
    return {
      rules: this.rules.map((r) => ({ rule: r.rule, detector: r.detector.name, respond: r.respond, ...(r.detector.name === 'similarity' && this.similarityThreshold !== undefined ? { threshold: this.similarityThreshold } : {}) })),
      ...(totals && this.cfg.monitoring.ood
        ? { ood: { ...totals, rate: totals.rows > 0 ? totals.outOfDistribution / totals.rows : 0, fpr: this.cfg.monitoring.ood.fpr, maxRate: this.cfg.monitoring.ood.maxRate } }
        : {}),
      ...(this.drift ? { drift: this.drift.status(), driftShares: this.drift.shares() } : {}),
    };
  }
}

export interface ChainStatus {
  rules: { rule: string; detector: string; respond: ResponseAction[]; threshold?: number }[];
  ood?: { rows: number; outOfDistribution: number; rate: number; fpr: number; maxRate: number };
  drift?: Record<string, unknown>[];
  driftShares?: { model: string; version: string; share: number; windows: number; drifted: number }[];
}
