import type { Progress } from '../../core/index.js';

export type ReasonKind = 'outlier' | 'likely mislabeled' | 'duplicate' | 'conflicting duplicate' | 'near duplicate';

export interface Reason {
  kind: ReasonKind;
  detail: string;
}

export interface SuspiciousRow {
  /** 0-based data row (the header is not counted). */
  row: number;
  /** For ranking: the number and strength of the reasons. */
  suspicion: number;
  reasons: Reason[];
  label?: string;
}

export interface ScanOptions {
  seed?: number;
  progress?: Progress;
  /** Neighbours for the label checks and near duplicates (default 15). */
  neighbours?: number;
  /** χ² quantile of the robust squared distance beyond which a row is an outlier (default 0.999). */
  outlierQuantile?: number;
  /** Isolation-forest score at or above which a row is an outlier too (default 0.7). */
  isolationThreshold?: number;
  /** Distances are computed on at most this many principal components (default 30). */
  maxDims?: number;
  /** A near duplicate lies within this share of the median nearest-neighbour distance (default 0.05). */
  nearDuplicateRatio?: number;
  /** Out-of-fold predictor for the label checks: k nearest neighbours or logistic regression on 5 folds. */
  labelModel?: 'auto' | 'knn' | 'logistic';
  /** How many of the most suspicious rows to keep in `suspicious` (default all flagged rows). */
  top?: number;
}

export interface ScanCounts {
  rows: number;
  flagged: number;
  outliers: number;
  mislabeled: number;
  duplicates: number;
  conflictingDuplicates: number;
  nearDuplicates: number;
}

export interface DatasetScanSummary {
  rows: number;
  /** Feature columns used (after constant ones are set aside). */
  features: number;
  counts: ScanCounts;
  /** Ranked, most suspicious first. */
  suspicious: SuspiciousRow[];
  /** How each score was computed, in words. */
  methods: string[];
  warnings: string[];
  /** True when the file was scanned in passes without holding it in memory. */
  streamed: boolean;
}

/** Per-row results, in input order. */
export interface RowScores {
  /** √(robust d² / cut-off): above 1 is an outlier. Higher = more suspicious. */
  outlier: Float64Array;
  /** Isolation-forest anomaly score in (0, 1). */
  isolation: Float64Array;
  /** 1 − out-of-fold probability of the given label (absent without labels). */
  labelIssue?: Float64Array;
  /** Share of the nearest rows with another label (kNN label consistency; absent without labels or kNN). */
  disagreement?: Float64Array;
  /** Class the out-of-fold predictions favour (index into classNames). */
  suggested?: Int32Array;
  duplicateOf: Int32Array;
  nearDuplicateOf: Int32Array;
  conflicting: Uint8Array;
}

export interface DatasetScan extends DatasetScanSummary {
  scores: RowScores;
  flagged: Uint8Array;
  /** Per-row reasons, for the rows flagged. */
  reasons: Map<number, Reason[]>;
}

/** Strength of each reason in (0, 1], summed for the ranking. */
export function reasonStrength(kind: ReasonKind, score: number): number {
  switch (kind) {
    case 'conflicting duplicate':
      return 1;
    case 'likely mislabeled':
      return Math.max(0.05, score);
    case 'outlier':
      return Math.max(0.05, 1 - 1 / Math.max(1, score) ** 2);
    case 'duplicate':
      return 0.5;
    case 'near duplicate':
      return 0.3;
  }
}

export function emptyCounts(rows: number): ScanCounts {
  return { rows, flagged: 0, outliers: 0, mislabeled: 0, duplicates: 0, conflictingDuplicates: 0, nearDuplicates: 0 };
}

export function countReasons(counts: ScanCounts, reasons: Reason[]): void {
  if (reasons.length === 0) return;
  counts.flagged++;
  for (const r of reasons) {
    if (r.kind === 'outlier') counts.outliers++;
    else if (r.kind === 'likely mislabeled') counts.mislabeled++;
    else if (r.kind === 'duplicate') counts.duplicates++;
    else if (r.kind === 'conflicting duplicate') counts.conflictingDuplicates++;
    else counts.nearDuplicates++;
  }
}

/** Keeps the `limit` most suspicious rows seen, in bounded memory (for the streaming scan). */
export class TopRows {
  private rows: SuspiciousRow[] = [];
  constructor(private readonly limit: number) {}

  offer(r: SuspiciousRow): void {
    this.rows.push(r);
    if (this.rows.length > this.limit * 2) this.trim();
  }

  result(): SuspiciousRow[] {
    this.trim();
    return this.rows;
  }

  private trim(): void {
    this.rows.sort((a, b) => b.suspicion - a.suspicion || a.row - b.row);
    this.rows.length = Math.min(this.rows.length, this.limit);
  }
}

/** The evidence about one row that the reasons are worded from. */
export interface RowEvidence {
  row: number;
  outlier: number;
  isolation: number;
  isolationThreshold: number;
  mislabeled?: { label: string; probability: number; suggested: string; agreement?: number };
  /** The first row of a group of identical rows with mixed labels (−1: not in one). */
  conflictingRoot: number;
  duplicateOf: number;
  nearDuplicate?: { of: number; distance: number };
}

export function rowReasons(e: RowEvidence): Reason[] {
  const r: Reason[] = [];
  if (e.outlier > 1 || e.isolation >= e.isolationThreshold) {
    r.push({ kind: 'outlier', detail: `robust distance ${e.outlier.toFixed(2)}× the cut-off, isolation score ${e.isolation.toFixed(2)}` });
  }
  if (e.mislabeled) {
    const m = e.mislabeled;
    const agree = m.agreement !== undefined ? `, ${Math.round(m.agreement * 100)}% of its neighbours share the label` : '';
    r.push({ kind: 'likely mislabeled', detail: `labelled '${m.label}' (probability ${m.probability.toFixed(2)})${agree}; looks like '${m.suggested}'` });
  }
  if (e.conflictingRoot >= 0) {
    r.push({ kind: 'conflicting duplicate', detail: e.conflictingRoot === e.row ? 'repeated later with another label' : `same features as row ${e.conflictingRoot}, another label` });
  } else if (e.duplicateOf >= 0) {
    r.push({ kind: 'duplicate', detail: `same features as row ${e.duplicateOf}` });
  } else if (e.nearDuplicate) {
    r.push({ kind: 'near duplicate', detail: `within ${e.nearDuplicate.distance.toPrecision(3)} of row ${e.nearDuplicate.of}` });
  }
  return r;
}

export function suspicionOf(reasons: Reason[], outlier: number, labelIssue: number): number {
  return reasons.reduce((s, reason) => s + reasonStrength(reason.kind, reason.kind === 'outlier' ? outlier : labelIssue), 0);
}
