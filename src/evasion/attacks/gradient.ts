import { BulwarkError, Rng, sampleSize, silentProgress, takeLabels, takeSamples, type Model, type Samples } from '../../core/index.js';
import {
  classify,
  copySamples,
  reached,
  requireGradients,
  resolveCommon,
  rowNorm,
  signStepLinf,
  storeProjected,
  type AttackOptions,
  type EvasionResult,
  type Norm,
  type Resolved,
} from './common.js';
import { ascentGradient, checkLoss, lossValues, requireLossCapability, type AttackLoss } from './losses.js';

export interface FgsmOptions extends AttackOptions {
  /**
   * What the attack climbs: 'ce' (cross-entropy) or 'margin' (the difference of logits of
   * Carlini & Wagner; needs classGradient). Default 'ce': sign steps make cross-entropy immune
   * to the saturation that the margin loss exists to avoid, and on the digits MLP it turns a
   * few more samples (bench/evasion.js measures both); running both and keeping either
   * success is stronger than either alone.
   */
  loss?: AttackLoss;
}

export interface PgdOptions extends FgsmOptions {
  /** Gradient steps per run. Default 40. */
  steps?: number;
  /** Size of one step in `norm`. Default 2.5 · eps / steps (Madry et al.). */
  stepSize?: number;
  /** Start each run at a random point of the eps-ball. Default true. */
  randomStart?: boolean;
  /** Runs from different random starts; a sample keeps its best. Default 1. */
  restarts?: number;
  /**
   * Stop working on a sample once it is adversarial. Default true; adversarial training
   * turns it off to get the strongest example within the budget.
   */
  earlyStop?: boolean;
}

/**
 * Fast Gradient Sign Method (Goodfellow et al. 2015): one step of size eps along the sign
 * of the loss gradient (L∞) or along the gradient itself (L2). Needs `lossGradient`.
 */
export async function fgsm(model: Model, x: Samples, y: Int32Array, opts: FgsmOptions): Promise<EvasionResult> {
  requireGradients(model, 'FGSM');
  const loss = checkLoss('FGSM', opts.loss);
  requireLossCapability(model, loss, 'FGSM');
  const r = resolveCommon('FGSM', model, x, y, opts);
  const t0 = performance.now();
  const adv = copySamples(x);
  const d = sampleSize(x);
  const n = x.shape[0];
  const progress = r.progress ?? silentProgress;
  progress.start('FGSM', Math.ceil(n / r.batchSize));
  const delta = new Float64Array(d);
  for (let start = 0; start < n; start += r.batchSize) {
    const end = Math.min(n, start + r.batchSize);
    const idx = range(start, end);
    const g = await ascentGradient(model, loss, takeSamples(x, idx), y, r.targets, idx);
    for (let i = start; i < end; i++) {
      direction(g.data, (i - start) * d, d, r.norm, delta);
      for (let j = 0; j < d; j++) delta[j] *= r.eps;
      storeProjected(adv.data, x.data, i * d, delta, r.eps, r.norm, r.clip);
    }
    progress.advance(1);
  }
  progress.done();
  return finish('fgsm', model, x, y, adv, r, t0);
}

/**
 * Projected Gradient Descent (Madry et al. 2018): repeated steps, each projected back onto
 * the eps-ball around the clean input and into the valid range, with random starts and
 * restarts. Needs only `lossGradient`, so it attacks any white-box model, wrapped or not.
 */
export async function pgd(model: Model, x: Samples, y: Int32Array, opts: PgdOptions): Promise<EvasionResult> {
  requireGradients(model, 'PGD');
  const loss = checkLoss('PGD', opts.loss);
  requireLossCapability(model, loss, 'PGD');
  const r = resolveCommon('PGD', model, x, y, opts);
  const steps = opts.steps ?? 40;
  const restarts = opts.restarts ?? 1;
  if (!Number.isInteger(steps) || steps < 1) throw new BulwarkError('E_USAGE', `PGD: steps must be a positive integer, not ${steps}`);
  if (!Number.isInteger(restarts) || restarts < 1) throw new BulwarkError('E_USAGE', `PGD: restarts must be a positive integer, not ${restarts}`);
  const stepSize = opts.stepSize ?? (2.5 * r.eps) / steps;
  if (!(stepSize > 0) || !Number.isFinite(stepSize)) throw new BulwarkError('E_USAGE', `PGD: stepSize must be a positive number, not ${stepSize}`);
  const randomStart = opts.randomStart ?? true;
  const earlyStop = opts.earlyStop ?? true;
  const t0 = performance.now();
  const n = x.shape[0];
  const d = sampleSize(x);
  const rng = new Rng(r.seed);
  const progress = r.progress ?? silentProgress;

  const adv = copySamples(x);
  const done = new Array<boolean>(n).fill(false);
  // Across restarts a sample keeps its first success, or else the run with the highest loss.
  const bestLoss = new Float64Array(n).fill(-Infinity);
  if (earlyStop) {
    const clean = await classify(model, x);
    for (let i = 0; i < n; i++) done[i] = reached(clean[i], y[i], r.targets ? r.targets[i] : -1);
  }
  for (let run = 0; run < restarts; run++) {
    const todo = range(0, n).filter((i) => !done[i]);
    if (todo.length === 0) break;
    progress.start(restarts > 1 ? `PGD run ${run + 1}/${restarts}` : 'PGD', Math.ceil(todo.length / r.batchSize) * steps);
    for (let b = 0; b < todo.length; b += r.batchSize) {
      const idx = todo.slice(b, b + r.batchSize);
      const runResult = await pgdBatch(model, x, y, idx, r, { steps, stepSize, randomStart: randomStart || run > 0, earlyStop, loss }, rng.fork(), progress);
      for (let k = 0; k < idx.length; k++) {
        const i = idx[k];
        const better = runResult.success[k] || runResult.loss[k] > bestLoss[i];
        if (!better) continue;
        adv.data.set(runResult.adv.subarray(k * d, (k + 1) * d), i * d);
        bestLoss[i] = runResult.loss[k];
        if (runResult.success[k]) done[i] = true;
      }
    }
    progress.done();
  }
  return finish('pgd', model, x, y, adv, r, t0);
}

interface BatchRun {
  adv: Float32Array;
  success: boolean[];
  /** The attack's loss at the final point (see lossValues); higher is closer to success. */
  loss: Float64Array;
}

async function pgdBatch(
  model: Model & { lossGradient: NonNullable<Model['lossGradient']> },
  x: Samples,
  y: Int32Array,
  idx: number[],
  r: Resolved,
  o: { steps: number; stepSize: number; randomStart: boolean; earlyStop: boolean; loss: AttackLoss },
  rng: Rng,
  progress: typeof silentProgress,
): Promise<BatchRun> {
  const d = sampleSize(x);
  const m = idx.length;
  const x0 = takeSamples(x, idx);
  const yb = takeLabels(y, idx);
  const tb = r.targets ? takeLabels(r.targets, idx) : null;
  const adv = new Float32Array(x0.data);
  const delta = new Float64Array(d);
  if (o.randomStart) {
    for (let k = 0; k < m; k++) {
      randomInBall(rng, r.norm, r.eps, delta);
      storeProjected(adv, x0.data, k * d, delta, r.eps, r.norm, r.clip);
    }
  }
  const success = new Array<boolean>(m).fill(false);
  let alive = range(0, m);
  const clean = x0.data;
  const stepSize = o.stepSize;
  for (let step = 0; step < o.steps && alive.length > 0; step++) {
    const cur = alive.length === m ? { data: adv, shape: x0.shape } : takeSamples({ data: adv, shape: x0.shape }, alive);
    const g = await ascentGradient(model, o.loss, cur, yb, tb, alive);
    for (let a = 0; a < alive.length; a++) {
      const off = alive[a] * d;
      if (r.norm === 'linf') {
        signStepLinf(adv, clean, off, g.data, a * d, d, stepSize, r.eps, r.clip);
        continue;
      }
      direction(g.data, a * d, d, r.norm, delta);
      for (let j = 0; j < d; j++) delta[j] = adv[off + j] - clean[off + j] + stepSize * delta[j];
      storeProjected(adv, clean, off, delta, r.eps, r.norm, r.clip);
    }
    if (o.earlyStop) {
      const p = await classify(model, takeSamples({ data: adv, shape: x0.shape }, alive));
      alive = alive.filter((k, a) => {
        success[k] = reached(p[a], yb[k], tb ? tb[k] : -1);
        return !success[k];
      });
    }
    progress.advance(1);
  }
  const probs = await model.predict({ data: adv, shape: x0.shape });
  const c = probs.shape[1];
  for (let k = 0; k < m; k++) {
    const row = probs.data.subarray(k * c, (k + 1) * c);
    let best = 0;
    for (let j = 1; j < c; j++) if (row[j] > row[best]) best = j;
    success[k] = reached(best, yb[k], tb ? tb[k] : -1);
  }
  const loss = lossValues(o.loss, probs, yb, tb);
  return { adv, success, loss };
}

/** Unit step direction for one row of a gradient: its sign (L∞) or its normalised self (L2). */
function direction(g: Float32Array, start: number, d: number, norm: Norm, out: Float64Array): void {
  if (norm === 'linf') {
    for (let j = 0; j < d; j++) out[j] = Math.sign(g[start + j]);
    return;
  }
  let s = 0;
  for (let j = 0; j < d; j++) s += g[start + j] * g[start + j];
  const len = Math.sqrt(s);
  for (let j = 0; j < d; j++) out[j] = len > 0 ? g[start + j] / len : 0;
}

/** A uniform point of the eps-ball (L∞: per coordinate; L2: direction times eps·U^(1/d)). */
export function randomInBall(rng: Rng, norm: Norm, eps: number, out: Float64Array): void {
  const d = out.length;
  if (norm === 'linf') {
    for (let j = 0; j < d; j++) out[j] = (2 * rng.next() - 1) * eps;
    return;
  }
  let s = 0;
  for (let j = 0; j < d; j++) {
    out[j] = rng.normal();
    s += out[j] * out[j];
  }
  const radius = eps * Math.pow(rng.next(), 1 / d);
  const scale = s > 0 ? radius / Math.sqrt(s) : 0;
  for (let j = 0; j < d; j++) out[j] *= scale;
}

async function finish(attack: string, model: Model, x: Samples, y: Int32Array, adv: Samples, r: Resolved, t0: number): Promise<EvasionResult> {
  const n = x.shape[0];
  const d = sampleSize(x);
  const [cleanPredicted, predicted] = [await classify(model, x), await classify(model, adv)];
  const norms = new Float64Array(n);
  const success = new Array<boolean>(n);
  for (let i = 0; i < n; i++) {
    norms[i] = rowNorm(adv.data, x.data, i * d, d, r.norm);
    success[i] = reached(predicted[i], y[i], r.targets ? r.targets[i] : -1);
  }
  return {
    attack,
    norm: r.norm,
    eps: r.eps,
    targeted: r.targets !== null,
    adversarial: adv,
    success,
    cleanPredicted,
    predicted,
    norms,
    seconds: (performance.now() - t0) / 1000,
  };
}

function range(start: number, end: number): number[] {
  return Array.from({ length: Math.max(0, end - start) }, (_, i) => start + i);
}
