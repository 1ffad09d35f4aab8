export * from './errors.js';
export * from './samples.js';
export * from './dataset.js';
export * from './rng.js';
export * from './model.js';
export * from './progress.js';
export * from './finding.js';
export * from './atomic.js';
