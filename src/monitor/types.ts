/** One answered inference row, as a detector sees it. */
export interface QueryObservation {
  /** Who asked: the API key id (or 'ip:ADDR' when there is no key). */
  key: string;
  /** The input row, flattened (length = product of the model's input shape). */
  x: Float32Array;
  /** The model's own probabilities for that row, before any output policy. */
  probabilities: Float32Array;
}

export interface DetectorVerdict {
  /** 'prada' | 'similarity' | … */
  detector: string;
  key: string;
  /** True once the alarm is raised for this key; stays true until reset(key). */
  flagged: boolean;
  /** The detector's statistic (PRADA: the Shapiro–Wilk W; similarity: mean distance to the k nearest past queries). */
  score: number;
  threshold: number;
  /** Observations seen for this key so far. */
  queries: number;
  /** One plain sentence for alerts and the audit log. */
  detail: string;
}

/** A detector that watches each key's stream of queries. State is per key, in memory or in Redis. */
export interface QueryDetector {
  readonly name: string;
  /** Feeds a batch (rows may belong to several keys); returns one verdict per distinct key in the batch, after the batch. */
  observe(batch: readonly QueryObservation[]): Promise<DetectorVerdict[]>;
  status(key: string): Promise<DetectorVerdict | null>;
  reset(key: string): Promise<void>;
}
