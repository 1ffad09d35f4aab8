import { BulwarkError, Rng, requireCapability, sampleSize, takeLabels, takeSamples, type Dataset, type FitOptions, type FitResult, type Model, type Samples } from '../../core/index.js';
import { fgsm, pgd } from '../attacks/gradient.js';
import { requireGradients, type ClipRange, type Norm } from '../attacks/common.js';

export const ADVERSARIAL_TRAINING_ATTACKS = ['pgd', 'fgsm'] as const;
export type AdversarialTrainingAttack = (typeof ADVERSARIAL_TRAINING_ATTACKS)[number];

export interface AdversarialTrainingOptions {
  /** Size of the perturbations trained on. */
  eps: number;
  /** Default 'pgd' (Madry et al.); 'fgsm' is cheaper and weaker. */
  attack?: AdversarialTrainingAttack;
  /** Default 'linf'. */
  norm?: Norm;
  /** PGD steps per batch. Default 10. */
  steps?: number;
  /** PGD step size. Default 2.5 · eps / steps. */
  stepSize?: number;
  /** Share of each batch replaced by adversarial examples (1: Madry's pure adversarial training). Default 1. */
  ratio?: number;
  /** Valid input range. Default [0, 1]. */
  clip?: ClipRange;
  seed?: number;
}

type TransformBatch = NonNullable<FitOptions['transformBatch']>;

/**
 * The `transformBatch` hook of `fit` that makes training adversarial: each batch is attacked
 * against the current weights (PGD from a random start, no early stop, so every example is
 * as strong as the budget allows) and a share `ratio` of it is replaced by the result.
 */
export function adversarialTransform(model: Model, opts: AdversarialTrainingOptions): TransformBatch {
  const attack = opts.attack ?? 'pgd';
  if (!ADVERSARIAL_TRAINING_ATTACKS.includes(attack)) {
    throw new BulwarkError('E_USAGE', `adversarial training: attack must be one of ${ADVERSARIAL_TRAINING_ATTACKS.join(', ')}, not '${String(attack)}'`);
  }
  requireGradients(model, `adversarial training (${attack.toUpperCase()})`);
  const ratio = opts.ratio ?? 1;
  if (!(ratio > 0 && ratio <= 1)) throw new BulwarkError('E_USAGE', `adversarial training: ratio must be in (0, 1], not ${ratio}`);
  if (!(typeof opts.eps === 'number' && opts.eps > 0 && Number.isFinite(opts.eps))) {
    throw new BulwarkError('E_USAGE', `adversarial training: eps must be a positive number, not ${String(opts.eps)}`);
  }
  const rng = new Rng(opts.seed ?? 42);
  return async (x: Samples, y: Int32Array): Promise<Samples> => {
    const m = x.shape[0];
    // The batch arrives shuffled, so its first rows are as random a share as any.
    const count = Math.max(1, Math.round(ratio * m));
    const rows = Array.from({ length: count }, (_, i) => i);
    const xs = count === m ? x : takeSamples(x, rows);
    const ys = count === m ? y : takeLabels(y, rows);
    const common = { eps: opts.eps, norm: opts.norm, clip: opts.clip, seed: rng.nextUint32() >>> 1, batchSize: count };
    const result =
      attack === 'pgd'
        ? await pgd(model, xs, ys, { ...common, steps: opts.steps ?? 10, stepSize: opts.stepSize, randomStart: true, earlyStop: false })
        : await fgsm(model, xs, ys, common);
    const out = new Float32Array(x.data);
    out.set(result.adversarial.data.subarray(0, count * sampleSize(x)), 0);
    return { data: out, shape: [...x.shape] };
  };
}

/** Trains `model` adversarially: `fit` with the adversarial transform. */
export async function adversarialTrain(model: Model, data: Dataset, opts: AdversarialTrainingOptions & { fit?: FitOptions }): Promise<FitResult> {
  requireCapability(model, 'fit', 'adversarial training');
  const { fit, ...adv } = opts;
  if (fit?.transformBatch) throw new BulwarkError('E_USAGE', 'adversarial training sets transformBatch itself; do not pass one');
  return model.fit(data, { ...fit, seed: fit?.seed ?? adv.seed, transformBatch: adversarialTransform(model, adv) });
}

/**
 * Gaussian data augmentation, the usual base-model training for randomized smoothing
 * (Cohen et al. train on noise of the σ they certify with). Noise is not clipped.
 */
export function gaussianNoiseTransform(sigma: number, seed = 42): TransformBatch {
  if (!(sigma > 0 && Number.isFinite(sigma))) throw new BulwarkError('E_USAGE', `noise sigma must be a positive number, not ${sigma}`);
  const rng = new Rng(seed);
  return async (x: Samples): Promise<Samples> => {
    const out = new Float32Array(x.data.length);
    for (let j = 0; j < out.length; j++) out[j] = x.data[j] + sigma * rng.normal();
    return { data: out, shape: [...x.shape] };
  };
}
