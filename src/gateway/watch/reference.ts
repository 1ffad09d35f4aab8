import { BulwarkError, type Samples } from '../../core/index.js';
import { loadDatasetSpec, loadDigitsSplit } from '../../data/index.js';
import type { ModelVersion } from '../registry.js';
import { needsReference, type MonitoringPolicy } from './policy.js';
import type { WatchReference } from './plugin.js';

/** Rows of the training split kept as the reference: enough for stable tests and a covariance, bounded for start-up time. */
export const MAX_REFERENCE_ROWS = 5000;

function head(x: Samples, n: number): Samples {
  if (x.shape[0] <= n) return x;
  const d = x.data.length / x.shape[0];
  return { data: x.data.slice(0, n * d), shape: [n, ...x.shape.slice(1)] };
}

/**
 * The training data the drift and OOD detectors compare traffic with: the dataset the model's
 * bulwark.json names when Bulwark ships it (digits), else the `--reference` file. Undefined
 * when the policy needs none; a usage error when it needs one and none can be found.
 */
export async function loadWatchReference(m: MonitoringPolicy, model: ModelVersion, opts: { reference?: string; label?: string; seed?: number }): Promise<WatchReference | undefined> {
  const why = needsReference(m);
  if (why.length === 0) return undefined;
  let split: { train: { x: Samples }; test: { x: Samples } };
  let source: string;
  if (opts.reference) {
    split = await loadDatasetSpec(opts.reference, { ...(opts.label ? { label: opts.label } : {}), seed: opts.seed ?? 42 });
    source = opts.reference;
  } else if (model.card?.dataset === 'digits') {
    split = await loadDigitsSplit();
    source = 'digits (named by the model card)';
  } else {
    const named = model.card?.dataset ? `its bulwark.json names dataset '${model.card.dataset}', which Bulwark does not ship` : 'it has no bulwark.json naming its dataset';
    throw new BulwarkError(
      'E_USAGE',
      `${why.join(' and ')} compare traffic with the model's training data, but none was found for ${model.source} (${named}); give it with --reference FILE (a .csv, .jsonl or .npy dataset, with --reference-label COL for CSV/JSONL)`,
    );
  }
  const d = model.model.info.inputShape.reduce((a, b) => a * b, 1);
  const rowSize = split.train.x.data.length / Math.max(1, split.train.x.shape[0]);
  if (rowSize !== d) {
    throw new BulwarkError('E_DATA_SHAPE', `reference ${source} has ${rowSize} features per row but model ${model.name} takes ${d} (input shape [${model.model.info.inputShape.join(', ')}]); give the model's own training data with --reference`);
  }
  const shape = [...model.model.info.inputShape];
  const reshape = (x: Samples): Samples => ({ data: x.data, shape: [x.shape[0], ...shape] });
  return { train: reshape(head(split.train.x, MAX_REFERENCE_ROWS)), heldOut: reshape(split.test.x), source };
}
