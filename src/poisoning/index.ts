/**
 * Training-data threats: attacks that plant poison (to test defences) and the defences
 * that find it, in a dataset without a model and in a trained model.
 */
export * from './attacks/index.js';
export * from './defences/index.js';
export { writeDatasetFile, featureColumnNames, AtomicTextWriter } from './io.js';
