import { BulwarkError, silentProgress, type Dataset } from '../../core/index.js';
import { findDuplicates } from './duplicates.js';
import { IsolationForest } from './iforest.js';
import { nearestNeighbours } from './knn.js';
import { knnDisagreement, knnProbabilities, labelIssuesFromProbabilities } from './label-issues.js';
import { featureColumnNames } from '../io.js';
import { distanceSpace } from './features.js';
import { fastMcd } from './mcd.js';
import { clusteredOutliers } from './clustered.js';
import { outOfFoldSoftmax } from './softmax.js';
import { chi2Quantile, median, quantile } from './stats.js';
import {
  countReasons,
  emptyCounts,
  rowReasons,
  suspicionOf,
  type DatasetScan,
  type Reason,
  type RowScores,
  type ScanOptions,
  type SuspiciousRow,
} from './scan-types.js';

/** Rows as the scan sees them: a flat matrix, optional labels, and what the columns are. */
export interface ScanInput {
  x: ArrayLike<number>;
  n: number;
  d: number;
  y?: Int32Array;
  classNames?: readonly string[];
  featureNames?: readonly string[];
  /** Pixels share one scale and are not standardised before distances. */
  image?: boolean;
}

export const KNN_MAX_ROWS = 20000;

/** A Dataset as scan input (images flattened). */
export function scanInputOf(ds: Dataset, withLabels = true): ScanInput {
  const n = ds.x.shape[0];
  const d = ds.x.data.length / Math.max(1, n);
  return {
    x: ds.x.data,
    n,
    d,
    y: withLabels ? ds.y : undefined,
    classNames: ds.classNames,
    featureNames: ds.featureNames ?? (ds.x.shape.length > 2 ? featureColumnNames(ds) : undefined),
    image: ds.x.shape.length > 2,
  };
}

/**
 * Sanitises a dataset without a model: robust Mahalanobis distances from FastMCD, an
 * isolation forest, label checks from out-of-fold predictions (kNN label consistency and
 * confident learning), and exact, near and conflicting duplicates. Every row gets scores;
 * rows past a threshold get reasons and are ranked.
 */
export function scanDataset(input: ScanInput, opts: ScanOptions = {}): DatasetScan {
  const { n, x } = input;
  const progress = opts.progress ?? silentProgress;
  const seed = opts.seed ?? 42;
  const k = opts.neighbours ?? 15;
  const q = opts.outlierQuantile ?? 0.999;
  const isoThreshold = opts.isolationThreshold ?? 0.7;
  const maxDims = opts.maxDims ?? 30;
  const nearRatio = opts.nearDuplicateRatio ?? 0.05;
  if (!Number.isInteger(k) || k < 1) throw new BulwarkError('E_USAGE', `neighbours must be a positive integer, got ${k}`);
  if (!(q > 0 && q < 1)) throw new BulwarkError('E_USAGE', `outlierQuantile must be in (0, 1), got ${q}`);
  if (!Number.isInteger(maxDims) || maxDims < 1) throw new BulwarkError('E_USAGE', `maxDims must be a positive integer, got ${maxDims}`);
  if (n < 5) throw new BulwarkError('E_DATA_SHAPE', `a scan needs at least 5 rows to tell typical from atypical; the data has ${n}`);
  const warnings: string[] = [];
  const methods: string[] = [];

  // Constant columns carry no information and make every covariance singular: set aside.
  const { kept, constant } = varyingColumns(x, n, input.d);
  if (constant.length > 0) {
    const names = constant.map((j) => (input.featureNames ? `'${input.featureNames[j]}'` : `${j}`));
    const shown = names.length > 10 ? `${names.slice(0, 10).join(', ')} and ${names.length - 10} more` : names.join(', ');
    warnings.push(`${constant.length} constant column${constant.length === 1 ? '' : 's'} (${shown}) ${constant.length === 1 ? 'was' : 'were'} left out of the distances`);
  }
  if (kept.length === 0) throw new BulwarkError('E_DATA_VALUE', 'every feature column is constant: there is nothing to tell rows apart by');
  const d = kept.length;
  const base = kept.length === input.d ? x : selectColumns(x, n, input.d, kept);

  // Distances live in a space of at most maxDims dimensions: the columns themselves
  // (standardised for the neighbour search), or the leading principal components.
  progress.start('scan: features', 1);
  const { space, dims, knnSpace, note } = distanceSpace(base, n, d, { maxDims, image: input.image, seed });
  if (note) methods.push(note);
  progress.advance(1);
  progress.done();

  progress.start('scan: robust covariance (FastMCD)', 1);
  const mcd = fastMcd(space, n, dims, { seed });
  warnings.push(...mcd.warnings);
  const cutoff = outlierCutoff(mcd.distances, dims, q);
  const group = clusteredOutliers(space, n, dims, mcd, { seed });
  const outlier = Float64Array.from(group.combined, (v) => Math.sqrt(Math.max(0, v) / cutoff.value));
  methods.push(`outlier_score: robust Mahalanobis distance from FastMCD (h = ${mcd.supportSize} of ${n} rows, reweighted${mcd.shrinkage > 0 ? `, shrinkage ρ = ${mcd.shrinkage.toFixed(3)}` : ''}) over the cut-off d² = ${cutoff.value.toPrecision(4)} (${cutoff.why})`);
  if (group.detected) {
    methods.push(`outlier_score also counts a shared direction of the outlying rows (their whitened mean offset, χ²${dims} = ${group.statistic.toFixed(1)}, p = ${group.pValue.toExponential(1)}): a row's one-sided position along it, as a χ²${dims} distance of the same tail probability, where larger`);
  }
  progress.advance(1);
  progress.done();

  progress.start('scan: isolation forest', 1);
  const forest = IsolationForest.fit(space, n, dims, { seed });
  const isolation = forest.score(space, n);
  methods.push(`isolation_score: isolation forest, 100 trees of ${forest.sampleSize} rows; an outlier at ≥ ${isoThreshold}`);
  progress.advance(1);
  progress.done();

  const numClasses = input.y ? Math.max(input.classNames?.length ?? 0, maxLabel(input.y) + 1) : 0;
  const presentClasses = input.y ? new Set(input.y).size : 0;
  const useKnn = opts.labelModel === 'knn' || ((opts.labelModel ?? 'auto') === 'auto' && n <= KNN_MAX_ROWS);
  let nb: ReturnType<typeof nearestNeighbours> | null = null;
  if (useKnn || n <= KNN_MAX_ROWS) {
    progress.start(`scan: ${Math.min(k, n - 1)} nearest neighbours`, 1);
    nb = nearestNeighbours(knnSpace, n, dims, k);
    progress.advance(1);
    progress.done();
  }

  const scores: RowScores = {
    outlier,
    isolation,
    duplicateOf: new Int32Array(n),
    nearDuplicateOf: new Int32Array(n),
    conflicting: new Uint8Array(n),
  };
  let labelFlags: Uint8Array | null = null;
  if (input.y && presentClasses < 2) {
    warnings.push(`every row has the same label ('${input.classNames?.[input.y[0]] ?? input.y[0]}'): the label checks need at least two classes and were skipped`);
    scores.labelIssue = new Float64Array(n);
  } else if (input.y) {
    progress.start('scan: label checks', 1);
    let p: Float64Array;
    if (useKnn && nb) {
      p = knnProbabilities(nb, input.y, numClasses);
      scores.disagreement = knnDisagreement(nb, input.y);
      methods.push(`label_issue_score: 1 − leave-one-out probability of the given label from its ${nb.k} nearest rows (inverse-distance votes); flagged by confident learning's per-class thresholds or below ${Math.min(0.1, 1 / numClasses).toFixed(2)}`);
    } else {
      p = outOfFoldSoftmax(base, n, d, input.y, numClasses, { folds: 5, seed, epochs: 10 }).probabilities;
      methods.push('label_issue_score: 1 − out-of-fold probability of the given label from logistic regression on 5 folds; flagged by confident learning');
    }
    const issues = labelIssuesFromProbabilities(p, input.y, numClasses);
    scores.labelIssue = issues.score;
    scores.suggested = issues.suggested;
    labelFlags = issues.flagged;
    progress.advance(1);
    progress.done();
  }

  // Near duplicates: each row's nearest neighbour, confirmed in the full feature space.
  let near: { candidate: Int32Array; radius: number } | undefined;
  if (nb && nb.k > 0) {
    const candidate = Int32Array.from({ length: n }, (_, i) => nb!.index[i * nb!.k]);
    const nnDist = Float64Array.from({ length: n }, (_, i) => fullDistance(base, d, i, candidate[i]));
    const radius = nearRatio * median(nnDist.filter((v) => v > 0));
    if (radius > 0) near = { candidate, radius };
    methods.push(`near duplicates: nearest row within ${nearRatio} × the median nearest-row distance (${(radius || 0).toPrecision(3)})`);
  }
  const dup = findDuplicates(base, n, d, input.y, near);
  scores.duplicateOf = dup.duplicateOf;
  scores.nearDuplicateOf = dup.nearDuplicateOf;
  scores.conflicting = dup.conflicting;

  const flagged = new Uint8Array(n);
  const reasons = new Map<number, Reason[]>();
  const counts = emptyCounts(n);
  const suspicious: SuspiciousRow[] = [];
  const className = (c: number): string => input.classNames?.[c] ?? String(c);
  for (let i = 0; i < n; i++) {
    const mislabeled =
      labelFlags?.[i] && input.y && scores.labelIssue && scores.suggested
        ? { label: className(input.y[i]), probability: 1 - scores.labelIssue[i], suggested: className(scores.suggested[i]), agreement: scores.disagreement ? 1 - scores.disagreement[i] : undefined }
        : undefined;
    const r = rowReasons({
      row: i,
      outlier: outlier[i],
      isolation: isolation[i],
      isolationThreshold: isoThreshold,
      mislabeled,
      conflictingRoot: dup.conflicting[i] ? (dup.duplicateOf[i] >= 0 ? dup.duplicateOf[i] : i) : -1,
      duplicateOf: dup.duplicateOf[i],
      nearDuplicate: dup.nearDuplicateOf[i] >= 0 ? { of: dup.nearDuplicateOf[i], distance: fullDistance(base, d, i, dup.nearDuplicateOf[i]) } : undefined,
    });
    if (r.length === 0) continue;
    flagged[i] = 1;
    reasons.set(i, r);
    countReasons(counts, r);
    suspicious.push({ row: i, suspicion: suspicionOf(r, outlier[i], scores.labelIssue?.[i] ?? 0), reasons: r, label: input.y ? className(input.y[i]) : undefined });
  }
  suspicious.sort((a, b) => b.suspicion - a.suspicion || a.row - b.row);
  if (opts.top !== undefined) suspicious.length = Math.min(suspicious.length, opts.top);
  return { rows: n, features: d, counts, suspicious, methods, warnings, streamed: false, scores, flagged, reasons };
}

/**
 * The squared distance beyond which a row is an outlier: the χ² quantile, which is right for
 * normal data, or — when the bulk of the distances is spread wider than χ² allows (real data
 * are rarely normal, and then χ² would flag a third of the rows) — Tukey's far-out fence
 * Q3 + 3·IQR of the distances themselves. For normal data the two nearly coincide.
 */
export function outlierCutoff(dist2: ArrayLike<number>, dims: number, q: number): { value: number; why: string } {
  const chi = chi2Quantile(q, dims);
  const q1 = quantile(dist2, 0.25);
  const q3 = quantile(dist2, 0.75);
  const fence = q3 + 3 * (q3 - q1);
  return fence > chi ? { value: fence, why: 'the far-out fence Q3 + 3·IQR of the distances, wider than χ²' } : { value: chi, why: `the χ²${dims} ${q} quantile` };
}

function maxLabel(y: Int32Array): number {
  let m = 0;
  for (const v of y) if (v > m) m = v;
  return m;
}

function varyingColumns(x: ArrayLike<number>, n: number, d: number): { kept: number[]; constant: number[] } {
  const kept: number[] = [];
  const constant: number[] = [];
  for (let j = 0; j < d; j++) {
    const first = x[j];
    let varies = false;
    for (let i = 1; i < n && !varies; i++) varies = x[i * d + j] !== first;
    (varies ? kept : constant).push(j);
  }
  return { kept, constant };
}

function selectColumns(x: ArrayLike<number>, n: number, d: number, cols: number[]): Float64Array {
  const out = new Float64Array(n * cols.length);
  for (let i = 0; i < n; i++) for (let c = 0; c < cols.length; c++) out[i * cols.length + c] = x[i * d + cols[c]];
  return out;
}

function fullDistance(x: ArrayLike<number>, d: number, a: number, b: number): number {
  if (b < 0) return Infinity;
  let s = 0;
  for (let t = 0; t < d; t++) s += (x[a * d + t] - x[b * d + t]) ** 2;
  return Math.sqrt(s);
}
