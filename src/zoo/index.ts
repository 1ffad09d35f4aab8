export { createZooModel, featureStats, isZooArchitecture, ZOO_ARCHITECTURES, type ZooArchitecture, type ZooOptions } from './architectures.js';
export { defaultEpochs } from './defaults.js';
