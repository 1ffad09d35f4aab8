import { BulwarkError, Rng, argmaxRows, checkInputShape, sampleSize, silentProgress, type Model, type Progress, type Samples } from '../../core/index.js';
import { binomTestHalf, clopperPearsonLower, normPpf } from './stats.js';

/** The label a smoothed classifier gives when it is not confident enough to answer. */
export const ABSTAIN = -1;

export interface SmoothingOptions {
  /** Standard deviation of the Gaussian noise, in input units. */
  sigma: number;
  /** Noisy copies per input for the estimate (Cohen et al. use 100,000). Default 1000. */
  n?: number;
  /** Certification only: noisy copies used to pick the top class. Default 100. */
  n0?: number;
  /** Probability that an answer (a class, a radius) is wrong. Default 0.001. */
  alpha?: number;
  /** Noisy copies per model call. Default 500. */
  batchSize?: number;
  seed?: number;
  progress?: Progress;
}

export interface CertifyResult {
  sigma: number;
  n: number;
  n0: number;
  alpha: number;
  /** The smoothed classifier's class per input, or ABSTAIN. */
  predicted: Int32Array;
  /** Certified L2 radius per input (0 where it abstains): no perturbation smaller changes the class. */
  radius: Float64Array;
  /** Lower confidence bound on the top class's probability under noise. */
  pALower: Float64Array;
  seconds: number;
}

interface Resolved {
  sigma: number;
  n: number;
  n0: number;
  alpha: number;
  batchSize: number;
  rng: Rng;
  progress: Progress;
}

function resolve(o: SmoothingOptions): Resolved {
  if (!(typeof o.sigma === 'number' && o.sigma > 0 && Number.isFinite(o.sigma))) {
    throw new BulwarkError('E_USAGE', `randomized smoothing: sigma must be a positive number, not ${String(o.sigma)}`);
  }
  const int = (what: string, v: number) => {
    if (!Number.isInteger(v) || v < 1) throw new BulwarkError('E_USAGE', `randomized smoothing: ${what} must be a positive integer, not ${v}`);
    return v;
  };
  const alpha = o.alpha ?? 0.001;
  if (!(alpha > 0 && alpha < 0.5)) throw new BulwarkError('E_USAGE', `randomized smoothing: alpha must be in (0, 0.5), not ${alpha}`);
  return {
    sigma: o.sigma,
    n: int('n', o.n ?? 1000),
    n0: int('n0', o.n0 ?? 100),
    alpha,
    batchSize: int('batchSize', o.batchSize ?? 500),
    rng: new Rng(o.seed ?? 42),
    progress: o.progress ?? silentProgress,
  };
}

/** How often the base model predicts each class on `num` noisy copies of one input. */
async function noisyCounts(model: Model, x: Samples, row: number, num: number, r: Resolved): Promise<Int32Array> {
  const d = sampleSize(x);
  const counts = new Int32Array(model.info.numClasses);
  const base = x.data.subarray(row * d, (row + 1) * d);
  for (let done = 0; done < num; ) {
    const m = Math.min(r.batchSize, num - done);
    const batch = new Float32Array(m * d);
    for (let k = 0; k < m; k++) for (let j = 0; j < d; j++) batch[k * d + j] = base[j] + r.sigma * r.rng.normal();
    const labels = argmaxRows(await model.predict({ data: batch, shape: [m, ...x.shape.slice(1)] }));
    for (const c of labels) counts[c]++;
    done += m;
  }
  return counts;
}

function topTwo(counts: Int32Array): [number, number] {
  let a = 0;
  for (let c = 1; c < counts.length; c++) if (counts[c] > counts[a]) a = c;
  let b = a === 0 ? 1 : 0;
  for (let c = 0; c < counts.length; c++) if (c !== a && counts[c] > counts[b]) b = c;
  return [a, b];
}

/**
 * Cohen et al.'s CERTIFY: pick the top class on n0 noisy copies, then bound its probability
 * from below on n fresh ones (Clopper–Pearson, confidence 1 − alpha). Where the bound
 * passes ½ the smoothed classifier's answer cannot change within L2 radius σ·Φ⁻¹(pA);
 * elsewhere it abstains. Needs only `predict`.
 */
export async function certify(model: Model, x: Samples, opts: SmoothingOptions): Promise<CertifyResult> {
  const r = resolve(opts);
  checkInputShape(model, x, 'certify');
  const t0 = performance.now();
  const count = x.shape[0];
  const predicted = new Int32Array(count).fill(ABSTAIN);
  const radius = new Float64Array(count);
  const pALower = new Float64Array(count);
  r.progress.start('certifying', count);
  for (let i = 0; i < count; i++) {
    const [cA] = topTwo(await noisyCounts(model, x, i, r.n0, r));
    const counts = await noisyCounts(model, x, i, r.n, r);
    pALower[i] = clopperPearsonLower(counts[cA], r.n, r.alpha);
    if (pALower[i] > 0.5) {
      predicted[i] = cA;
      radius[i] = r.sigma * normPpf(pALower[i]);
    }
    r.progress.advance(1);
  }
  r.progress.done();
  return { sigma: r.sigma, n: r.n, n0: r.n0, alpha: r.alpha, predicted, radius, pALower, seconds: (performance.now() - t0) / 1000 };
}

/**
 * Cohen et al.'s PREDICT: the top class of n noisy copies, or ABSTAIN when a two-sided
 * binomial test cannot tell it from the runner-up at level alpha. A returned class is the
 * smoothed classifier's with probability at least 1 − alpha.
 */
export async function smoothedPredict(model: Model, x: Samples, opts: SmoothingOptions): Promise<{ predicted: Int32Array; pValue: Float64Array }> {
  const r = resolve(opts);
  checkInputShape(model, x, 'smoothed prediction');
  const count = x.shape[0];
  const predicted = new Int32Array(count).fill(ABSTAIN);
  const pValue = new Float64Array(count);
  r.progress.start('smoothed prediction', count);
  for (let i = 0; i < count; i++) {
    const counts = await noisyCounts(model, x, i, r.n, r);
    const [a, b] = topTwo(counts);
    pValue[i] = binomTestHalf(counts[a], counts[a] + counts[b]);
    if (pValue[i] <= r.alpha) predicted[i] = a;
    r.progress.advance(1);
  }
  r.progress.done();
  return { predicted, pValue };
}

/** Share of inputs the smoothed classifier gets right with a certified radius of at least `radius`. */
export function certifiedAccuracy(result: Pick<CertifyResult, 'predicted' | 'radius'>, y: Int32Array, radius: number): number {
  if (result.predicted.length === 0) return NaN;
  let hits = 0;
  for (let i = 0; i < y.length; i++) if (result.predicted[i] === y[i] && result.radius[i] >= radius) hits++;
  return hits / y.length;
}

/**
 * The smoothed classifier as a model: its "probabilities" are the vote shares of n noisy
 * copies, so attacks and audits can run against it. (A model cannot abstain; use
 * `smoothedPredict` for answers that may.)
 */
export function smoothedModel(model: Model, opts: Omit<SmoothingOptions, 'n0' | 'alpha'>): Model {
  const r = resolve({ ...opts, n: opts.n ?? 100 });
  return {
    info: { ...model.info, name: `smoothed(${model.info.name}, σ=${r.sigma})`, engine: 'smoothing' },
    async predict(x: Samples): Promise<Samples> {
      checkInputShape(model, x, 'smoothed model');
      const k = model.info.numClasses;
      const out = new Float32Array(x.shape[0] * k);
      for (let i = 0; i < x.shape[0]; i++) {
        const counts = await noisyCounts(model, x, i, r.n, r);
        for (let c = 0; c < k; c++) out[i * k + c] = counts[c] / r.n;
      }
      return { data: out, shape: [x.shape[0], k] };
    },
  };
}
