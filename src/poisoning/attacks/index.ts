import type { Dataset } from '../../core/index.js';
import { featureCollision, type CleanLabelOptions } from './clean-label.js';
import { poisonDataset, type DirtyPoisonOptions, type PoisonResult } from './poison.js';

export * from './triggers.js';
export * from './poison.js';
export * from './evaluate.js';
export { featureCollision, type CleanLabelOptions } from './clean-label.js';

export type PoisonOptions = DirtyPoisonOptions | CleanLabelOptions;

/**
 * One verb for every poisoning attack: label flips (uniform, targeted), BadNets patches,
 * blended triggers, and clean-label feature collisions (which need a white-box model).
 * Returns a poisoned copy and the rows that were changed.
 */
export async function poison(ds: Dataset, opts: PoisonOptions): Promise<PoisonResult> {
  return opts.kind === 'clean-label' ? featureCollision(ds, opts) : poisonDataset(ds, opts);
}
