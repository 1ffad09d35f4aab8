import { BulwarkError, Rng, requireCapability, sampleSize, takeLabels, takeSamples, type Dataset, type FitOptions, type FitResult, type Model, type Samples } from '../../core/index.js';
import { fgsm, pgd } from '../attacks/gradient.js';
import { requireGradients, type ClipRange, type Norm } from '../attacks/common.js';
import { fastAdversarialStep, trainWithRobustnessCheck, type RobustnessChecks } from './fast-adversarial.js';

export const ADVERSARIAL_TRAINING_ATTACKS = ['pgd', 'fgsm', 'fgsm-rs'] as const;
export type AdversarialTrainingAttack = (typeof ADVERSARIAL_TRAINING_ATTACKS)[number];

export interface AdversarialTrainingOptions {
  /** Size of the perturbations trained on. */
  eps: number;
  /**
   * Default 'pgd' (Madry et al.); 'fgsm-rs' (Wong et al. 2020: FGSM from a random start,
   * one gradient per batch, with a per-epoch PGD check that stops catastrophic overfitting)
   * comes close at about a tenth of the cost; 'fgsm' (from the clean point) is cheaper and weaker.
   */
  attack?: AdversarialTrainingAttack;
  /** Default 'linf'. */
  norm?: Norm;
  /** PGD steps per batch. Default 10. */
  steps?: number;
  /** PGD step size. Default 2.5 · eps / steps; for 'fgsm-rs' 1.25 · eps. */
  stepSize?: number;
  /** Share of each batch replaced by adversarial examples (1: Madry's pure adversarial training). Default 1. */
  ratio?: number;
  /** Valid input range. Default [0, 1]. */
  clip?: ClipRange;
  seed?: number;
  /** 'fgsm-rs' with adversarialTrain: training samples held out for the per-epoch PGD check (0: no check). Default 256. */
  checkSamples?: number;
  /** 'fgsm-rs': a fall of the check's robust accuracy larger than this from its best stops training. Default 0.2. */
  collapseDrop?: number;
}

/** What adversarialTrain returns: fit's result, and for 'fgsm-rs' the per-epoch robustness checks. */
export type AdversarialTrainResult = FitResult & Partial<RobustnessChecks>;

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
    let adversarial: Samples;
    if (attack === 'fgsm-rs') adversarial = await fastAdversarialStep(model, xs, ys, { eps: opts.eps, stepSize: opts.stepSize, norm: opts.norm, clip: opts.clip, rng });
    else {
      const result =
        attack === 'pgd'
          ? await pgd(model, xs, ys, { ...common, steps: opts.steps ?? 10, stepSize: opts.stepSize, randomStart: true, earlyStop: false })
          : await fgsm(model, xs, ys, common);
      adversarial = result.adversarial;
    }
    const out = new Float32Array(x.data);
    out.set(adversarial.data.subarray(0, count * sampleSize(x)), 0);
    return { data: out, shape: [...x.shape] };
  };
}

/**
 * Trains `model` adversarially: `fit` with the adversarial transform. With 'fgsm-rs' it also
 * checks PGD robust accuracy on a held-out batch after every epoch and stops at catastrophic
 * overfitting (see trainWithRobustnessCheck); `checkSamples: 0` turns that off.
 */
export async function adversarialTrain(model: Model, data: Dataset, opts: AdversarialTrainingOptions & { fit?: FitOptions }): Promise<AdversarialTrainResult> {
  requireCapability(model, 'fit', 'adversarial training');
  const { fit, ...adv } = opts;
  if (fit?.transformBatch) throw new BulwarkError('E_USAGE', 'adversarial training sets transformBatch itself; do not pass one');
  const transformBatch = adversarialTransform(model, adv);
  const checkSamples = adv.checkSamples ?? 256;
  if (!(Number.isInteger(checkSamples) && checkSamples >= 0)) throw new BulwarkError('E_USAGE', `adversarial training: checkSamples must be a whole number ≥ 0, not ${checkSamples}`);
  if (adv.collapseDrop !== undefined && !(adv.collapseDrop > 0 && adv.collapseDrop <= 1)) {
    throw new BulwarkError('E_USAGE', `adversarial training: collapseDrop must be in (0, 1], not ${adv.collapseDrop}`);
  }
  const seed = fit?.seed ?? adv.seed ?? 42;
  if ((adv.attack ?? 'pgd') === 'fgsm-rs' && checkSamples > 0) {
    requireGradients(model, 'adversarial training (FGSM-RS)');
    return trainWithRobustnessCheck(model as Model & Required<Pick<Model, 'lossGradient' | 'fit'>>, data, transformBatch, { ...fit, seed }, {
      eps: adv.eps,
      norm: adv.norm,
      clip: adv.clip,
      seed,
      checkSamples,
      collapseDrop: adv.collapseDrop,
    });
  }
  return model.fit(data, { ...fit, seed, transformBatch });
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
