import * as tf from '@tensorflow/tfjs-core';
import { BulwarkError, Rng, checkInputShape, silentProgress, type Dataset, type Progress, type Samples } from '../../core/index.js';
import type { TfjsModel } from '../../engines/index.js';
import { PrivacyAccountant, calibrateNoise, checkDelta, computeEpsilon, maxStepsWithin, type AccountantKind } from './accountant.js';
import { clipAndSum, perExampleSquaredNorms } from './clipping.js';
import { forward, planDpModel, probeShapes, type DpPlan } from './layers.js';
import { secureNoise, seededNoise, type NoiseSource } from './noise.js';
import { denseChain, denseDpStep } from './dense-path.js';

/**
 * DP-SGD (Abadi et al. 2016) for TF.js models: Poisson-sampled batches, each example's
 * gradient clipped to norm C (computed without a per-example loop, see clipping.ts),
 * Gaussian noise σ·C on the sum, and an accountant that says what ε the run has spent.
 */

export interface DpSgdOptions {
  /** Train to this ε (σ is calibrated so the planned steps spend exactly this much)… */
  targetEpsilon?: number;
  /** …or at this noise multiplier σ. With both, training stops when the budget is spent. */
  noiseMultiplier?: number;
  /** Default 1e-5. */
  delta?: number;
  /** Per-example clipping norm C. Default 1. */
  maxGradNorm?: number;
  /** Default 20. An epoch is round(n / batchSize) steps. */
  epochs?: number;
  /** Expected batch size; the sample rate is batchSize / n. Default 512 (DP-SGD favours large batches). */
  batchSize?: number;
  /** Default 3e-3 for Adam, 0.5 for SGD. */
  learningRate?: number;
  /** Default 'adam' (DP-Adam: Adam on the privatised gradients, which is post-processing). */
  optimizer?: 'adam' | 'sgd';
  /**
   * 'poisson' (default): each example joins each batch independently with probability q,
   * which is what the accountant assumes. 'shuffle': fixed-size batches of a shuffled
   * epoch — common, but the reported ε then does not strictly hold.
   */
  sampling?: 'poisson' | 'shuffle';
  accountant?: AccountantKind;
  seed?: number;
  /** Draw the noise from the operating system's cryptographic generator instead of the seed. */
  secureNoise?: boolean;
  progress?: Progress;
}

export interface DpEpochMetrics {
  epoch: number;
  loss: number;
  accuracy: number;
  /** ε spent after this epoch (the PRV value here uses a coarser ε error than the final one). */
  epsilon: number;
  /** Share of examples whose gradient norm exceeded C. */
  clippedFraction: number;
  /** Training time of the epoch (the accountant's time is not included). */
  seconds: number;
}

export interface DpSgdResult {
  epsilon: number;
  delta: number;
  noiseMultiplier: number;
  maxGradNorm: number;
  sampleRate: number;
  steps: number;
  plannedSteps: number;
  /** True when training ended early because the next step would have exceeded targetEpsilon. */
  stoppedAtBudget: boolean;
  accountant: AccountantKind;
  sampling: 'poisson' | 'shuffle';
  noise: 'seeded' | 'secure';
  epochs: DpEpochMetrics[];
  seconds: number;
  warnings: string[];
}

function usage(message: string): never {
  throw new BulwarkError('E_USAGE', message);
}

interface Settings {
  delta: number;
  C: number;
  epochs: number;
  batchSize: number;
  lr: number;
  optimizer: 'adam' | 'sgd';
  sampling: 'poisson' | 'shuffle';
  accountant: AccountantKind;
  seed: number;
}

function settings(o: DpSgdOptions, n: number, warnings: string[]): Settings {
  const optimizer = o.optimizer ?? 'adam';
  if (optimizer !== 'adam' && optimizer !== 'sgd') usage(`optimizer must be 'adam' or 'sgd', got '${optimizer}'`);
  const s: Settings = {
    delta: o.delta ?? 1e-5,
    C: o.maxGradNorm ?? 1,
    epochs: o.epochs ?? 20,
    batchSize: o.batchSize ?? 512,
    lr: o.learningRate ?? (optimizer === 'adam' ? 3e-3 : 0.5),
    optimizer,
    sampling: o.sampling ?? 'poisson',
    accountant: o.accountant ?? 'prv',
    seed: o.seed ?? 42,
  };
  if (o.targetEpsilon !== undefined && !(o.targetEpsilon > 0 && Number.isFinite(o.targetEpsilon))) {
    usage(`the privacy budget ε must be a positive number, got ${o.targetEpsilon}`);
  }
  if (o.noiseMultiplier !== undefined && !(o.noiseMultiplier > 0 && Number.isFinite(o.noiseMultiplier))) {
    usage(`the noise multiplier must be a positive number, got ${o.noiseMultiplier}`);
  }
  if (o.targetEpsilon === undefined && o.noiseMultiplier === undefined) usage('DP-SGD needs a privacy budget ε (targetEpsilon) or a noise multiplier');
  checkDelta(s.delta);
  if (s.delta >= 1 / n) {
    warnings.push(`δ = ${s.delta} is at least 1/n = ${(1 / n).toPrecision(3)} for ${n} training examples: a mechanism may then publish a whole example outright with probability δ, so that δ protects nobody; use δ well below 1/n (e.g. ${(0.1 / n).toPrecision(1)})`);
  }
  if (!(s.C > 0 && Number.isFinite(s.C))) usage(`the clipping norm C (max grad norm) must be a positive number, got ${s.C}`);
  if (!Number.isInteger(s.epochs) || s.epochs < 1) usage(`epochs must be a positive integer, got ${s.epochs}`);
  if (!Number.isInteger(s.batchSize) || s.batchSize < 1) usage(`the batch size must be a positive integer, got ${s.batchSize}`);
  if (s.batchSize > n) usage(`the expected batch size ${s.batchSize} is larger than the ${n} training examples`);
  if (!(s.lr > 0 && Number.isFinite(s.lr))) usage(`the learning rate must be a positive number, got ${s.lr}`);
  if (s.sampling !== 'poisson' && s.sampling !== 'shuffle') usage(`sampling must be 'poisson' or 'shuffle', got '${s.sampling}'`);
  // With Poisson sampling a batch is empty with probability (1 − q)^n ≈ e^−B.
  const pEmpty = Math.pow(1 - s.batchSize / n, n);
  if (s.sampling === 'poisson' && pEmpty > 0.01) {
    usage(`an expected batch size of ${s.batchSize} (sample rate ${(s.batchSize / n).toPrecision(3)}) leaves ${(pEmpty * 100).toFixed(1)}% of Poisson-sampled batches empty; use a batch size of at least 5 (DP-SGD works best with hundreds)`);
  }
  if (s.sampling === 'shuffle') {
    warnings.push('batches are shuffled fixed-size batches, not Poisson samples: the accountant assumes Poisson sampling, so the reported ε is an approximation, not a guarantee');
  }
  return s;
}

/** Trains `model` in place with DP-SGD and returns what it spent. */
export async function trainDpSgd(model: TfjsModel, data: Dataset, opts: DpSgdOptions = {}): Promise<DpSgdResult> {
  checkInputShape(model, data.x, `training data '${data.name}'`);
  const n = data.y.length;
  if (n < 2) usage(`DP-SGD needs training data; '${data.name}' has ${n} examples`);
  const warnings: string[] = [];
  const s = settings(opts, n, warnings);
  const plan = planDpModel(model.net);
  const progress = opts.progress ?? silentProgress;
  for (const w of warnings) progress.log(`warning: ${w}`);

  const q = s.batchSize / n;
  const stepsPerEpoch = Math.max(1, Math.round(n / s.batchSize));
  const plannedSteps = s.epochs * stepsPerEpoch;
  let sigma: number;
  let steps = plannedSteps;
  if (opts.noiseMultiplier !== undefined) {
    sigma = opts.noiseMultiplier;
    if (opts.targetEpsilon !== undefined) {
      steps = maxStepsWithin({ targetEpsilon: opts.targetEpsilon, delta: s.delta, sampleRate: q, noiseMultiplier: sigma, maxSteps: plannedSteps, accountant: s.accountant });
      if (steps === 0) usage(`not one step at noise multiplier ${sigma} fits in ε = ${opts.targetEpsilon}; raise the noise multiplier or the budget`);
    }
  } else {
    progress.log(`calibrating the noise for ε = ${opts.targetEpsilon} over ${plannedSteps} steps at sample rate ${q.toPrecision(3)} (${s.accountant} accountant)`);
    sigma = calibrateNoise({ targetEpsilon: opts.targetEpsilon!, delta: s.delta, sampleRate: q, steps: plannedSteps, accountant: s.accountant });
  }

  const noise = opts.secureNoise ? secureNoise() : seededNoise(s.seed + 1);
  const rng = new Rng(s.seed);
  const accountant = new PrivacyAccountant(s.accountant);
  const optimizer = s.optimizer === 'adam' ? tf.train.adam(s.lr) : tf.train.momentum(s.lr, 0.9);
  const variables = plan.trainable.flatMap((st) => [st.kernel, st.bias].filter((v): v is tf.Variable => v !== null));
  const noiseBuffers = variables.map((v) => new Float32Array(v.size));
  // Dense chains take the hand-written step; anything else the generic one (autodiff to per-layer probes).
  const chain = denseChain(plan);
  const dropoutMasks = seededNoise(s.seed + 2);
  const size = model.info.inputShape.reduce((a, b) => a * b, 1);
  const k = model.info.numClasses;
  const history: DpEpochMetrics[] = [];
  const t0 = performance.now();
  let done = 0;
  let order = rng.permutation(n);
  let finalEpsilon = 0;
  try {
    for (let epoch = 1; done < steps; epoch++) {
      const te = performance.now();
      const epochSteps = Math.min(stepsPerEpoch, steps - done);
      progress.start(`DP epoch ${epoch}/${Math.ceil(steps / stepsPerEpoch)}`, epochSteps);
      if (s.sampling === 'shuffle') order = rng.shuffle(order);
      let lossSum = 0;
      let correct = 0;
      let seen = 0;
      let clipped = 0;
      for (let b = 0; b < epochSteps; b++) {
        const batch = s.sampling === 'poisson' ? poissonBatch(rng, n, q) : order.subarray(b * s.batchSize, Math.min(n, (b + 1) * s.batchSize));
        const r = chain ? denseBatch(chain, data, batch, size, s.C, dropoutMasks) : step(plan, model, data, batch, size, k, s.C);
        lossSum += r.loss;
        correct += r.correct;
        seen += batch.length;
        clipped += r.clipped;
        applyNoisyUpdate(optimizer, variables, r.grads, sigma * s.C, q * n, noise, noiseBuffers);
        accountant.step(q, sigma);
        done++;
        progress.advance(1, `loss ${(lossSum / Math.max(1, seen)).toFixed(3)}${history.length ? ` · ε ${history.at(-1)!.epsilon.toFixed(2)}` : ''}`);
      }
      progress.done();
      const seconds = (performance.now() - te) / 1000;
      // Progress uses a coarser PRV grid (ε error 0.05) for speed; the final figure is exact.
      const eps =
        done < steps && accountant.kind === 'prv'
          ? computeEpsilon({ sampleRate: q, noiseMultiplier: sigma, steps: done, delta: s.delta, accountant: 'prv', epsError: 0.05 })
          : (finalEpsilon = accountant.getEpsilon(s.delta));
      if (!Number.isFinite(lossSum)) usage(`DP-SGD diverged at epoch ${epoch}: the loss is ${lossSum}; lower the learning rate`);
      history.push({ epoch, loss: lossSum / Math.max(1, seen), accuracy: correct / Math.max(1, seen), epsilon: eps, clippedFraction: clipped / Math.max(1, seen), seconds });
      progress.log(`DP epoch ${epoch}: loss ${history.at(-1)!.loss.toFixed(4)}, accuracy ${(history.at(-1)!.accuracy * 100).toFixed(1)}%, ε spent ${eps.toFixed(3)} (δ = ${s.delta})`);
    }
  } finally {
    optimizer.dispose();
  }
  return {
    epsilon: finalEpsilon,
    delta: s.delta,
    noiseMultiplier: sigma,
    maxGradNorm: s.C,
    sampleRate: q,
    steps: done,
    plannedSteps,
    stoppedAtBudget: done < plannedSteps,
    accountant: s.accountant,
    sampling: s.sampling,
    noise: noise.kind,
    epochs: history,
    seconds: (performance.now() - t0) / 1000,
    warnings,
  };
}

/** Each example independently with probability q. */
function poissonBatch(rng: Rng, n: number, q: number): Int32Array {
  const picked: number[] = [];
  for (let i = 0; i < n; i++) if (rng.next() < q) picked.push(i);
  return Int32Array.from(picked);
}

interface StepResult {
  grads: tf.Tensor[] | null;
  loss: number;
  correct: number;
  clipped: number;
}

function gather(data: Dataset, batch: ArrayLike<number>, size: number): { x: Float32Array; y: Int32Array } {
  const x = new Float32Array(batch.length * size);
  const y = new Int32Array(batch.length);
  for (let i = 0; i < batch.length; i++) {
    x.set(data.x.data.subarray(batch[i] * size, (batch[i] + 1) * size), i * size);
    y[i] = data.y[batch[i]];
  }
  return { x, y };
}

function denseBatch(chain: NonNullable<ReturnType<typeof denseChain>>, data: Dataset, batch: ArrayLike<number>, size: number, C: number, masks: NoiseSource): StepResult {
  if (batch.length === 0) return { grads: null, loss: 0, correct: 0, clipped: 0 };
  const { x, y } = gather(data, batch, size);
  return denseDpStep(chain, x, y, C, masks);
}

/** One batch's clipped gradient sum (kept tensors the caller disposes), or null for an empty batch. */
function step(plan: DpPlan, model: TfjsModel, data: Dataset, batch: ArrayLike<number>, size: number, k: number, C: number): StepResult {
  const m = batch.length;
  if (m === 0) return { grads: null, loss: 0, correct: 0, clipped: 0 };
  const { x, y } = gather(data, batch, size);
  const out = tf.tidy(() => {
    const xb = tf.tensor(x, [m, ...model.info.inputShape], 'float32');
    const yb = tf.tensor1d(y, 'int32');
    const { deltas, inputs, loss, logits } = outputGradients(plan, xb, yb, k);
    try {
      const { grads, norms } = clipAndSum(plan, inputs, deltas, C);
      const correct = tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), yb), 'float32'));
      const clipped = tf.sum(tf.cast(tf.greater(norms, C), 'float32'));
      return { grads: grads.map((g) => tf.keep(g)), stats: tf.keep(tf.stack([loss, correct, clipped])) };
    } finally {
      for (const t of [...inputs, logits]) t.dispose();
    }
  });
  const [loss, correct, clipped] = out.stats.dataSync();
  out.stats.dispose();
  return { grads: out.grads, loss, correct, clipped };
}

/**
 * One forward and one backward pass giving, for every trainable step, its input (kept)
 * and each example's gradient of its own loss with respect to the step's output.
 */
function outputGradients(plan: DpPlan, xb: tf.Tensor, yb: tf.Tensor1D, k: number, training = true) {
  const m = xb.shape[0];
  const labels = tf.cast(tf.oneHot(yb, k), 'float32');
  const probes = probeShapes(plan, m).map((shape) => tf.zeros(shape));
  let inputs: tf.Tensor[] = [];
  let logits: tf.Tensor | null = null;
  const { value, grads } = tf.valueAndGrads((...ps: tf.Tensor[]) => {
    const f = forward(plan, xb, training, ps, true);
    inputs = f.inputs;
    logits = tf.keep(f.logits);
    // A sum, not a mean: each example's output gradient is then its own loss's gradient.
    return (plan.logits === 'pre-softmax'
      ? tf.losses.softmaxCrossEntropy(labels, f.logits, undefined, undefined, tf.Reduction.SUM)
      : tf.neg(tf.sum(tf.mul(f.logits, labels)))) as tf.Scalar;
  })(probes);
  return { deltas: grads, inputs, loss: value, logits: logits as unknown as tf.Tensor };
}

function applyNoisyUpdate(
  optimizer: tf.Optimizer,
  variables: tf.Variable[],
  grads: tf.Tensor[] | null,
  std: number,
  expectedBatch: number,
  noise: NoiseSource,
  buffers: Float32Array[],
): void {
  const named = tf.tidy(() =>
    variables.map((v, i) => {
      const buf = buffers[i];
      noise.fillNormal(buf, std);
      const noisy = tf.add(grads ? grads[i] : tf.zerosLike(v), tf.tensor(buf, v.shape));
      // Dividing by the expected (not the realised) batch size keeps the sum's sensitivity C.
      return { name: v.name, tensor: tf.div(noisy, expectedBatch) };
    }),
  );
  optimizer.applyGradients(named);
  for (const t of named) t.tensor.dispose();
  grads?.forEach((g) => g.dispose());
}

/**
 * Each example's gradient norm (over every trainable weight) by the per-layer identities
 * DP-SGD uses, in inference mode (no dropout); tests compare them to a per-example loop.
 */
export function perExampleGradientNorms(model: TfjsModel, x: Samples, y: Int32Array): Float32Array {
  const plan = planDpModel(model.net);
  return tf.tidy(() => {
    const xb = tf.tensor(x.data, [x.shape[0], ...model.info.inputShape], 'float32');
    const { deltas, inputs, logits } = outputGradients(plan, xb, tf.tensor1d(y, 'int32'), model.info.numClasses, false);
    try {
      return new Float32Array(tf.sqrt(perExampleSquaredNorms(plan, inputs, deltas)).dataSync());
    } finally {
      for (const t of [...inputs, logits]) t.dispose();
    }
  });
}

/**
 * One step's clipped gradient sums by the dense fast path and by the generic path (no
 * dropout: pass a model without it), for tests that hold the two to each other.
 */
export function clippedGradientSums(model: TfjsModel, x: Samples, y: Int32Array, maxGradNorm: number, path: 'dense' | 'generic'): Float32Array[] {
  const plan = planDpModel(model.net);
  const size = model.info.inputShape.reduce((a, b) => a * b, 1);
  const data: Dataset = { name: 'batch', x, y, classNames: [] };
  const batch = Int32Array.from({ length: y.length }, (_, i) => i);
  let r: StepResult;
  if (path === 'dense') {
    const chain = denseChain(plan);
    if (!chain) throw new BulwarkError('E_USAGE', 'this model has no dense fast path');
    r = denseBatch(chain, data, batch, size, maxGradNorm, seededNoise(1));
  } else {
    r = step(plan, model, data, batch, size, model.info.numClasses, maxGradNorm);
  }
  const out = (r.grads ?? []).map((g) => new Float32Array(g.dataSync()));
  r.grads?.forEach((g) => g.dispose());
  return out;
}

export { planDpModel };
