import type { ZooArchitecture } from './architectures.js';

/** Epochs that reach each model's accuracy target on digits without overfitting much. */
export const defaultEpochs: Record<ZooArchitecture, number> = { logistic: 20, mlp: 20, cnn: 12 };
