import { BulwarkError, checkInputShape, hasCapability, type LossGradient, type ClassGradient, type Model, type Samples } from '../../core/index.js';

export interface EnsembleOptions {
  /** One non-negative weight per model (normalised to sum 1). Default: equal. */
  weights?: number[];
  name?: string;
}

export type EnsembleModel = Model & Partial<LossGradient & ClassGradient>;

/**
 * A model whose probabilities are the weighted mean of its members'. When every member
 * offers gradients (`lossGradient` or `classGradient`), so does the ensemble — the exact
 * gradient of its own loss, −log Σ wₘ pₘ(y) — so white-box attacks see the whole ensemble.
 */
export function ensembleModel(models: Model[], opts: EnsembleOptions = {}): EnsembleModel {
  if (models.length === 0) throw new BulwarkError('E_USAGE', 'an ensemble needs at least one model');
  const first = models[0].info;
  for (const m of models.slice(1)) {
    const same = m.info.numClasses === first.numClasses && m.info.inputShape.reduce((a, b) => a * b, 1) === first.inputShape.reduce((a, b) => a * b, 1);
    if (!same) {
      throw new BulwarkError(
        'E_DATA_SHAPE',
        `ensemble members disagree: '${first.name}' takes [${first.inputShape.join(', ')}] and gives ${first.numClasses} classes, ` +
          `'${m.info.name}' takes [${m.info.inputShape.join(', ')}] and gives ${m.info.numClasses}`,
      );
    }
  }
  const raw = opts.weights ?? models.map(() => 1);
  if (raw.length !== models.length || raw.some((w) => !(w >= 0) || !Number.isFinite(w)) || !(raw.reduce((a, b) => a + b, 0) > 0)) {
    throw new BulwarkError('E_USAGE', `ensemble weights must be ${models.length} non-negative numbers, not all zero; got [${raw.join(', ')}]`);
  }
  const total = raw.reduce((a, b) => a + b, 0);
  const weights = raw.map((w) => w / total);
  const k = first.numClasses;

  const memberProbs = (x: Samples) => Promise.all(models.map((m) => m.predict(x)));
  const mix = (probs: Samples[], n: number): Float32Array => {
    const out = new Float32Array(n * k);
    probs.forEach((p, m) => {
      for (let j = 0; j < out.length; j++) out[j] += weights[m] * p.data[j];
    });
    return out;
  };
  // ∇ log P_c = Σ wₘ pₘ(c) ∇ log pₘ(c) / P_c, with ∇ log pₘ(c) from the member's own gradients.
  const logProbGradient = async (x: Samples, classes: Int32Array): Promise<Samples> => {
    const n = x.shape[0];
    const d = x.data.length / Math.max(1, n);
    const probs = await memberProbs(x);
    const total = mix(probs, n);
    const out = new Float32Array(x.data.length);
    for (let m = 0; m < models.length; m++) {
      if (weights[m] === 0) continue;
      const g = await memberLogProbGradient(models[m], x, classes);
      for (let i = 0; i < n; i++) {
        const c = classes[i];
        const share = (weights[m] * probs[m].data[i * k + c]) / Math.max(total[i * k + c], 1e-30);
        for (let j = 0; j < d; j++) out[i * d + j] += share * g.data[i * d + j];
      }
    }
    return { data: out, shape: [...x.shape] };
  };

  const model: EnsembleModel = {
    info: { name: opts.name ?? `ensemble(${models.map((m) => m.info.name).join(', ')})`, engine: 'ensemble', inputShape: first.inputShape, numClasses: k, classNames: first.classNames },
    async predict(x: Samples): Promise<Samples> {
      checkInputShape(model, x, 'ensemble');
      return { data: mix(await memberProbs(x), x.shape[0]), shape: [x.shape[0], k] };
    },
  };
  const white = models.every((m) => hasCapability(m, 'lossGradient') || hasCapability(m, 'classGradient'));
  if (white) {
    model.classGradient = (x, classes) => {
      checkInputShape(model, x, 'ensemble classGradient');
      return logProbGradient(x, classes);
    };
    model.lossGradient = async (x, y) => {
      checkInputShape(model, x, 'ensemble lossGradient');
      const g = await logProbGradient(x, y);
      for (let j = 0; j < g.data.length; j++) g.data[j] = -g.data[j];
      return g;
    };
  }
  return model;
}

async function memberLogProbGradient(m: Model, x: Samples, classes: Int32Array): Promise<Samples> {
  if (m.classGradient) return m.classGradient(x, classes);
  // The cross-entropy at class c is −log p(c): its gradient is minus the one wanted.
  const g = await m.lossGradient!(x, classes);
  for (let j = 0; j < g.data.length; j++) g.data[j] = -g.data[j];
  return g;
}
