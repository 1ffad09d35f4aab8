import * as tf from '@tensorflow/tfjs-core';
import { BulwarkError, Rng, sampleSize, subset, type Dataset, type EpochMetrics, type FitOptions, type FitResult, type LossGradient, type Model, type Samples, type Trainable } from '../../core/index.js';
import { TfjsModel, fitDefaults } from '../../engines/index.js';
import { randomInBall, pgd } from '../attacks/gradient.js';
import { signStepLinf, storeProjected, type ClipRange, type Norm } from '../attacks/common.js';
import { summarizeEvasion } from '../evaluate.js';

/**
 * FGSM from a random start (Wong, Rice & Kolter 2020, "Fast is better than free"): a uniform
 * point of the eps-ball, then one step of `stepSize` (default 1.25·eps) along the loss
 * gradient there, projected back onto the ball and the valid range. One gradient per batch,
 * where PGD-10 takes ten; the random start is what keeps it from the weak, easily
 * over-fitted examples of plain FGSM.
 */
export async function fastAdversarialStep(
  model: Model & LossGradient,
  x: Samples,
  y: Int32Array,
  o: { eps: number; stepSize?: number; norm?: Norm; clip?: ClipRange; rng: Rng },
): Promise<Samples> {
  const norm = o.norm ?? 'linf';
  const clip = o.clip === undefined ? ([0, 1] as const) : o.clip;
  const step = o.stepSize ?? 1.25 * o.eps;
  const n = x.shape[0];
  const d = sampleSize(x);
  const adv = new Float32Array(x.data.length);
  const delta = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    randomInBall(o.rng, norm, o.eps, delta);
    storeProjected(adv, x.data, i * d, delta, o.eps, norm, clip);
  }
  const g = await model.lossGradient({ data: adv, shape: x.shape }, y);
  for (let i = 0; i < n; i++) {
    const off = i * d;
    if (norm === 'linf') {
      signStepLinf(adv, x.data, off, g.data, off, d, step, o.eps, clip);
      continue;
    }
    let s = 0;
    for (let j = 0; j < d; j++) s += g.data[off + j] * g.data[off + j];
    const len = Math.sqrt(s) || 1;
    for (let j = 0; j < d; j++) delta[j] = adv[off + j] - x.data[off + j] + (step * g.data[off + j]) / len;
    storeProjected(adv, x.data, off, delta, o.eps, norm, clip);
  }
  return { data: adv, shape: [...x.shape] };
}

export interface EarlyStopOptions {
  eps: number;
  norm?: Norm;
  clip?: ClipRange;
  seed: number;
  /** Training samples held out for the check. Default 256. */
  checkSamples?: number;
  /** PGD steps of the check. Default 10. */
  checkSteps?: number;
  /** A fall of robust accuracy on the check batch larger than this, from its best, is catastrophic overfitting. Default 0.2. */
  collapseDrop?: number;
}

/** The record of an adversarial training run with the per-epoch robustness check. */
export interface RobustnessChecks {
  /** PGD robust accuracy on the held-out batch after each epoch. */
  checks: { epoch: number; robustAccuracy: number }[];
  /** The epoch whose weights the model ends with. */
  bestEpoch: number;
  /** Robust accuracy collapsed (catastrophic overfitting) and training stopped there. */
  collapsed: boolean;
  /** The weights were put back to those of `bestEpoch` (possible for TF.js models). */
  restored: boolean;
}

/**
 * Fast adversarial training with the early stop of Wong et al.: FGSM-RS examples can
 * suddenly stop being hard ("catastrophic overfitting"; PGD accuracy falls to near zero
 * within an epoch while FGSM accuracy soars), so after every epoch a held-out batch is
 * attacked with PGD, and training stops, back at the best epoch's weights, once its robust
 * accuracy falls by more than `collapseDrop`.
 *
 * `fit` runs one epoch per call so the check can stop it; each call starts a fresh Adam
 * state (its moments rebuild within a few dozen steps, and the weights carry over).
 */
export async function trainWithRobustnessCheck(
  model: Model & LossGradient & Trainable,
  data: Dataset,
  transformBatch: NonNullable<FitOptions['transformBatch']>,
  fit: FitOptions,
  o: EarlyStopOptions,
): Promise<FitResult & RobustnessChecks> {
  if ((fit.validationSplit ?? 0) > 0) {
    throw new BulwarkError(
      'E_USAGE',
      'fast adversarial training stops on the PGD accuracy of a held-out batch (checkSamples), not on validation loss; leave validationSplit at 0 (--validation-split 0), or set checkSamples: 0 to train with fit alone',
    );
  }
  const n = data.x.shape[0];
  const held = Math.min(o.checkSamples ?? 256, Math.floor(n / 4));
  const order = new Rng(o.seed ^ 0x2545f491).permutation(n);
  const check = subset(data, Array.from(order.subarray(0, held)));
  const train = held > 0 ? subset(data, Array.from(order.subarray(held))) : data;
  const epochs = fit.epochs ?? fitDefaults.epochs;
  const steps = o.checkSteps ?? 10;
  const drop = o.collapseDrop ?? 0.2;
  const history: EpochMetrics[] = [];
  const checks: RobustnessChecks['checks'] = [];
  let best = { epoch: 0, robust: -Infinity };
  let snapshot: tf.Tensor[] | null = null;
  let collapsed = false;
  let restored = false;
  const t0 = performance.now();
  try {
    for (let epoch = 1; epoch <= epochs; epoch++) {
      const r = await model.fit(train, { ...fit, epochs: 1, seed: (fit.seed ?? o.seed) + epoch - 1, transformBatch });
      history.push(...r.epochs.map((m) => ({ ...m, epoch })));
      if (held === 0) continue;
      const attack = await pgd(model, check.x, check.y, { eps: o.eps, norm: o.norm, clip: o.clip, steps, stepSize: o.eps / 4, seed: o.seed + epoch });
      const robust = summarizeEvasion(attack, check.y).robustAccuracy;
      checks.push({ epoch, robustAccuracy: robust });
      fit.progress?.log(`epoch ${epoch}: PGD-${steps} robust accuracy on ${held} held-out samples ${robust.toFixed(3)}`);
      if (robust > best.robust) {
        best = { epoch, robust };
        if (model instanceof TfjsModel) {
          snapshot?.forEach((t) => t.dispose());
          snapshot = model.net.getWeights().map((w) => w.clone());
        }
      } else if (robust < best.robust - drop) {
        collapsed = true;
        fit.progress?.log(`catastrophic overfitting at epoch ${epoch} (robust ${robust.toFixed(3)}, best ${best.robust.toFixed(3)} at epoch ${best.epoch}); stopping`);
        break;
      }
    }
    // Without a collapse the last epoch's weights are kept (robust accuracy on 256 samples
    // is too noisy to pick among healthy epochs); after one, the best epoch's.
    if (collapsed && snapshot && model instanceof TfjsModel) {
      model.net.setWeights(snapshot);
      restored = true;
    }
  } finally {
    snapshot?.forEach((t) => t.dispose());
  }
  const lastEpoch = history.length ? history[history.length - 1].epoch : 0;
  return {
    epochs: history,
    seconds: (performance.now() - t0) / 1000,
    stoppedEarly: collapsed,
    checks,
    bestEpoch: restored ? best.epoch : lastEpoch,
    collapsed,
    restored,
  };
}
