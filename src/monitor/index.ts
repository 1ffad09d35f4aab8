export type { QueryObservation, DetectorVerdict, QueryDetector } from './types.js';
export {
  memoryDetectorState,
  redisDetectorState,
  DEFAULT_MAX_KEYS,
  DEFAULT_REDIS_MAX_EVENTS,
  DEFAULT_REDIS_TTL_SECONDS,
  type DetectorStateStore,
  type DetectorStream,
} from './state.js';
export { pradaDetector, PRADA_DEFAULT_DELTA, PRADA_DEFAULT_MIN_QUERIES, PRADA_DEFAULT_MAX_GROWING_SET, type PradaOptions } from './prada.js';
export {
  similarityDetector,
  calibrateSimilarityThreshold,
  SIMILARITY_DEFAULT_K,
  SIMILARITY_DEFAULT_HISTORY,
  SIMILARITY_DEFAULT_PROJECTION,
  SIMILARITY_DEFAULT_ALARMS,
  SIMILARITY_DEFAULT_WINDOW,
  type SimilarityOptions,
} from './similarity.js';
export { fitOodDetector, OOD_DEFAULT_MAX_ROWS, type OodDetector } from './ood.js';
export {
  driftReference,
  DriftMonitor,
  DRIFT_DEFAULTS,
  type DriftReference,
  type DriftWindowReport,
  type DriftMonitorOptions,
} from './drift.js';
export { driftReferenceToJson, driftReferenceFromJson } from './drift-json.js';
export { shapiroWilk, type ShapiroWilkResult } from './shapiro.js';
export { ks2Samp, ksPValue, ksCriticalValue, psi, chiSquareContingency, chiSquareCounts, type TestResult, type KsMethod } from './stats.js';
