import { BulwarkError, Rng, sampleCount, sampleSize, type Samples } from '../core/index.js';
import { categoryCounts, chiSquareCounts, histogramShares, ksCriticalValue, ksPValue, ksStatisticSorted, psiFromShares, PSI_BINS } from './stats.js';

/** Serialisable summary of the reference data and its predictions (plain arrays and numbers). */
export interface DriftReference {
  version: 1;
  /** Rows the reference was built from (the test choice follows it, as in Evidently). */
  rows: number;
  /** Rows kept per feature (a seeded sample when the data had more). */
  sampleRows: number;
  features: number;
  /** Indices of categorical features. */
  categorical: number[];
  /** Feature-major: feature f's kept values, ascending, at [f·sampleRows, (f+1)·sampleRows). */
  values: Float32Array;
  numClasses: number;
  /** Predicted-class counts over all reference rows. */
  predictionCounts: number[];
  /** Max probability of each kept row, ascending. */
  confidence: Float32Array;
}

export interface DriftWindowReport {
  window: number;
  rows: number;
  /** Dataset drift: share of drifted features ≥ shareThreshold, or the prediction/confidence distribution drifted. */
  drifted: boolean;
  shareDrifted: number;
  /** The drifted features, most drifted first, at most 20. */
  features: { index: number; test: 'ks' | 'psi' | 'chi2'; statistic: number; pValue?: number; drifted: boolean }[];
  prediction: { test: 'chi2' | 'psi'; statistic: number; pValue?: number; drifted: boolean };
  confidence: { referenceMean: number; mean: number; test: 'ks'; statistic: number; pValue: number; drifted: boolean };
}

export interface DriftMonitorOptions {
  /** Rows per (tumbling) window. */
  windowSize?: number;
  /** p-value below which a KS or chi-square test on a feature says drift (Evidently: 0.05). */
  pThreshold?: number;
  /** PSI at or above which a feature or the prediction distribution has drifted (Evidently: 0.1). */
  psiThreshold?: number;
  /** Share of drifted features that makes the dataset drifted (Evidently: 0.5). */
  shareThreshold?: number;
  /**
   * p-value for the model-output tests (prediction chi-square, confidence KS). Each runs once
   * per window and alone decides dataset drift, so it is stricter than the per-feature level
   * that the share rule protects: at 0.001 a steady stream false-alarms about once in 1,000 windows.
   */
  outputPThreshold?: number;
}

export const DRIFT_DEFAULTS = { windowSize: 500, pThreshold: 0.05, psiThreshold: 0.1, shareThreshold: 0.5, outputPThreshold: 0.001 } as const;
/** Evidently uses p-value tests up to 1,000 reference rows and distances (PSI here) above. */
export const SMALL_REFERENCE_ROWS = 1000;
/** Reference rows kept per feature: 784 features × 5,000 rows = 15.7 MB. */
export const DRIFT_MAX_REFERENCE_ROWS = 5000;
const REPORTED_FEATURES = 20;

export function driftReference(features: Samples, probabilities: Samples, opts: { categorical?: number[]; seed?: number; maxRows?: number } = {}): DriftReference {
  const n = sampleCount(features);
  const p = sampleSize(features);
  const k = sampleSize(probabilities);
  if (sampleCount(probabilities) !== n) {
    throw new BulwarkError('E_DATA_SHAPE', `the drift reference has ${n} feature rows but ${sampleCount(probabilities)} probability rows`);
  }
  if (n < 2) throw new BulwarkError('E_DATA_SHAPE', `the drift reference needs at least 2 rows, got ${n}`);
  const categorical = [...new Set(opts.categorical ?? [])].sort((a, b) => a - b);
  for (const c of categorical) {
    if (!Number.isInteger(c) || c < 0 || c >= p) throw new BulwarkError('E_USAGE', `categorical feature ${c} is out of range (0..${p - 1})`);
  }
  const maxRows = opts.maxRows ?? DRIFT_MAX_REFERENCE_ROWS;
  const kept = n > maxRows ? new Rng(opts.seed ?? 42).permutation(n).slice(0, maxRows) : Int32Array.from({ length: n }, (_, i) => i);
  const m = kept.length;
  const values = new Float32Array(p * m);
  for (let f = 0; f < p; f++) {
    const col = values.subarray(f * m, (f + 1) * m);
    for (let i = 0; i < m; i++) col[i] = features.data[kept[i] * p + f];
    col.sort();
  }
  const predictionCounts = new Array<number>(k).fill(0);
  for (let i = 0; i < n; i++) predictionCounts[argmaxRow(probabilities.data, i, k).cls]++;
  const confidence = new Float32Array(m);
  for (let i = 0; i < m; i++) confidence[i] = argmaxRow(probabilities.data, kept[i], k).max;
  confidence.sort();
  return { version: 1, rows: n, sampleRows: m, features: p, categorical, values, numClasses: k, predictionCounts, confidence };
}

function argmaxRow(data: Float32Array, row: number, k: number): { cls: number; max: number } {
  let cls = 0;
  let max = -Infinity;
  for (let j = 0; j < k; j++) {
    const v = data[row * k + j];
    if (v > max) {
      max = v;
      cls = j;
    }
  }
  return { cls, max };
}

/**
 * Watches a stream of inputs and predictions in tumbling windows against a training
 * reference, with Evidently's defaults: per feature a KS test (p < 0.05) for small references
 * or PSI (≥ 0.1) for large ones, chi-square for categorical features, dataset drift when at
 * least half the features drifted; plus the predicted-class distribution and the confidence
 * (max probability) distribution.
 */
export class DriftMonitor {
  private readonly o: Required<DriftMonitorOptions>;
  private readonly buffer: Float32Array;
  private readonly probs: Float32Array;
  private filled = 0;
  private readonly reports: DriftWindowReport[] = [];
  private readonly ksCritical = new Map<string, number>();
  private readonly isCategorical: Uint8Array;
  private static readonly MAX_HISTORY = 1000;

  constructor(
    private readonly ref: DriftReference,
    opts: DriftMonitorOptions = {},
  ) {
    this.o = { ...DRIFT_DEFAULTS, ...opts };
    const { windowSize, pThreshold, psiThreshold, shareThreshold, outputPThreshold } = this.o;
    if (!Number.isInteger(windowSize) || windowSize < 10) throw new BulwarkError('E_USAGE', `windowSize must be an integer ≥ 10, got ${windowSize}`);
    for (const [name, v] of Object.entries({ pThreshold, shareThreshold, outputPThreshold })) {
      if (!(v > 0 && v <= 1)) throw new BulwarkError('E_USAGE', `${name} must be in (0, 1], got ${v}`);
    }
    if (!(psiThreshold > 0)) throw new BulwarkError('E_USAGE', `psiThreshold must be positive, got ${psiThreshold}`);
    this.buffer = new Float32Array(windowSize * ref.features);
    this.probs = new Float32Array(windowSize * ref.numClasses);
    this.isCategorical = new Uint8Array(ref.features);
    for (const c of ref.categorical) this.isCategorical[c] = 1;
  }

  /** Adds rows; returns the reports of windows completed by them (usually none). */
  observe(x: Samples, probabilities: Samples): DriftWindowReport[] {
    const p = this.ref.features;
    const k = this.ref.numClasses;
    const n = sampleCount(x);
    if (sampleSize(x) !== p) throw new BulwarkError('E_DATA_SHAPE', `rows have ${sampleSize(x)} features but the drift reference has ${p}`);
    if (sampleSize(probabilities) !== k || sampleCount(probabilities) !== n) {
      throw new BulwarkError('E_DATA_SHAPE', `expected ${n} probability rows of ${k} classes, got [${probabilities.shape.join(', ')}]`);
    }
    const done: DriftWindowReport[] = [];
    for (let r = 0; r < n; r++) {
      this.buffer.set(x.data.subarray(r * p, (r + 1) * p), this.filled * p);
      this.probs.set(probabilities.data.subarray(r * k, (r + 1) * k), this.filled * k);
      this.filled++;
      if (this.filled === this.o.windowSize) {
        const report = this.evaluate();
        this.filled = 0;
        this.reports.push(report);
        if (this.reports.length > DriftMonitor.MAX_HISTORY) this.reports.shift();
        done.push(report);
      }
    }
    return done;
  }

  latest(): DriftWindowReport | null {
    return this.reports.at(-1) ?? null;
  }

  history(): DriftWindowReport[] {
    return [...this.reports];
  }

  private critical(n1: number, n2: number, alpha: number): number {
    const id = `${n1}:${n2}:${alpha}`;
    let c = this.ksCritical.get(id);
    if (c === undefined) {
      c = ksCriticalValue(n1, n2, alpha);
      this.ksCritical.set(id, c);
    }
    return c;
  }

  private evaluate(): DriftWindowReport {
    const { windowSize: w, pThreshold, psiThreshold, shareThreshold, outputPThreshold } = this.o;
    const ref = this.ref;
    const p = ref.features;
    const m = ref.sampleRows;
    const small = ref.rows <= SMALL_REFERENCE_ROWS;
    const col = new Float32Array(w);
    const drifted: { index: number; test: 'ks' | 'psi' | 'chi2'; statistic: number; pValue?: number; drifted: boolean; rank: number }[] = [];
    let driftedCount = 0;
    const dCrit = small ? this.critical(m, w, pThreshold) : 0;
    for (let f = 0; f < p; f++) {
      for (let i = 0; i < w; i++) col[i] = this.buffer[i * p + f];
      const refCol = ref.values.subarray(f * m, (f + 1) * m);
      if (this.isCategorical[f]) {
        const counts = categoryCounts(refCol, col);
        const t = chiSquareCounts(counts.reference, counts.current);
        if (t.pValue < pThreshold) {
          driftedCount++;
          drifted.push({ index: f, test: 'chi2', statistic: t.statistic, pValue: t.pValue, drifted: true, rank: -Math.log(Math.max(t.pValue, 1e-300)) });
        }
      } else if (small) {
        col.sort();
        const d = ksStatisticSorted(refCol, col);
        if (d >= dCrit) {
          driftedCount++;
          drifted.push({ index: f, test: 'ks', statistic: d, drifted: true, rank: d });
        }
      } else {
        const value = numericPsi(refCol, col);
        if (value >= psiThreshold) {
          driftedCount++;
          drifted.push({ index: f, test: 'psi', statistic: value, drifted: true, rank: value });
        }
      }
    }
    drifted.sort((a, b) => b.rank - a.rank);
    const features = drifted.slice(0, REPORTED_FEATURES).map(({ rank: _rank, ...rest }) => {
      if (rest.test === 'ks') rest.pValue = ksPValue(rest.statistic, m, w);
      return rest;
    });
    const shareDrifted = p > 0 ? driftedCount / p : 0;

    const k = ref.numClasses;
    const predCounts = new Array<number>(k).fill(0);
    const conf = new Float32Array(w);
    for (let i = 0; i < w; i++) {
      const a = argmaxRow(this.probs, i, k);
      predCounts[a.cls]++;
      conf[i] = a.max;
    }
    let prediction: DriftWindowReport['prediction'];
    if (small) {
      const t = chiSquareCounts(ref.predictionCounts, predCounts);
      prediction = { test: 'chi2', statistic: t.statistic, pValue: t.pValue, drifted: t.pValue < outputPThreshold };
    } else {
      const total = ref.predictionCounts.reduce((a, b) => a + b, 0);
      const value = psiFromShares(
        ref.predictionCounts.map((c) => c / total),
        predCounts.map((c) => c / w),
      );
      prediction = { test: 'psi', statistic: value, drifted: value >= psiThreshold };
    }
    conf.sort();
    const dConf = ksStatisticSorted(ref.confidence, conf);
    const pConf = ksPValue(dConf, ref.confidence.length, w);
    const confidence: DriftWindowReport['confidence'] = {
      referenceMean: mean(ref.confidence),
      mean: mean(conf),
      test: 'ks',
      statistic: dConf,
      pValue: pConf,
      drifted: pConf < outputPThreshold,
    };
    return {
      window: (this.reports.at(-1)?.window ?? 0) + 1,
      rows: w,
      drifted: shareDrifted >= shareThreshold || prediction.drifted || confidence.drifted,
      shareDrifted,
      features,
      prediction,
      confidence,
    };
  }
}

/** Evidently's numeric PSI: equal-width bins over both samples' range, empty shares set to 0.0001. */
function numericPsi(refSorted: Float32Array, cur: Float32Array): number {
  let lo = refSorted[0];
  let hi = refSorted[refSorted.length - 1];
  for (let i = 0; i < cur.length; i++) {
    if (cur[i] < lo) lo = cur[i];
    if (cur[i] > hi) hi = cur[i];
  }
  if (!(hi > lo)) return 0;
  return psiFromShares(histogramShares(refSorted, lo, hi, PSI_BINS), histogramShares(cur, lo, hi, PSI_BINS));
}

function mean(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i];
  return v.length > 0 ? s / v.length : NaN;
}
