export { spectralSignatures, type SpectralOptions } from './spectral.js';
export { activationClustering } from './activation-clustering.js';
export { StripDetector, type StripOptions, type StripResult } from './strip.js';
export { neuralCleanse, type NeuralCleanseOptions, type NeuralCleanseResult, type ReversedTrigger } from './neural-cleanse.js';
export { persistence, superimpose, defaultLayer, representationsOf, type RowDetection, type RowDetectorOptions } from './common.js';
export type { ClassVerdict } from './clusters.js';
export { scanBackdoor, BACKDOOR_METHODS, type BackdoorScanOptions, type BackdoorScan, type BackdoorMethod } from './scan-backdoor.js';
