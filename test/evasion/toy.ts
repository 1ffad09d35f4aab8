import { Rng, argmaxRows, type LossGradient, type Model, type Predictor, type Samples } from '../../src/core/index.js';

/** A linear softmax classifier in plain JS, with its exact loss gradient: fast, no TF.js. */
export function linearModel(w: number[][], b: number[], inputShape: number[], name = 'linear'): Model & LossGradient {
  const d = w.length;
  const k = b.length;
  const probs = (x: Samples): Float64Array => {
    const n = x.shape[0];
    const out = new Float64Array(n * k);
    for (let i = 0; i < n; i++) {
      const z = b.map((bj, j) => {
        let s = bj;
        for (let f = 0; f < d; f++) s += w[f][j] * x.data[i * d + f];
        return s;
      });
      const m = Math.max(...z);
      const e = z.map((v) => Math.exp(v - m));
      const sum = e.reduce((a, c) => a + c, 0);
      e.forEach((v, j) => (out[i * k + j] = v / sum));
    }
    return out;
  };
  return {
    info: { name, engine: 'test', inputShape, numClasses: k },
    async predict(x) {
      return { data: Float32Array.from(probs(x)), shape: [x.shape[0], k] };
    },
    async lossGradient(x, y) {
      const p = probs(x);
      const n = x.shape[0];
      const g = new Float32Array(n * d);
      for (let i = 0; i < n; i++) {
        for (let f = 0; f < d; f++) {
          let s = 0;
          for (let j = 0; j < k; j++) s += w[f][j] * (p[i * k + j] - (j === y[i] ? 1 : 0));
          g[i * d + f] = s;
        }
      }
      return { data: g, shape: [...x.shape] };
    },
  };
}

export function randomLinear(d: number, k: number, seed: number, inputShape = [d]): Model & LossGradient {
  const rng = new Rng(seed);
  const w = Array.from({ length: d }, () => Array.from({ length: k }, () => rng.normal()));
  const b = Array.from({ length: k }, () => 0.1 * rng.normal());
  return linearModel(w, b, inputShape);
}

/**
 * A model that is never fooled (it always says class 0) and whose "gradient" is huge
 * random noise: PGD takes every step, in arbitrary directions, so only its projection
 * keeps it within eps and the valid range.
 */
export function chaosModel(d: number, k: number, seed: number): Model & LossGradient {
  const rng = new Rng(seed);
  return {
    info: { name: 'chaos', engine: 'test', inputShape: [d], numClasses: k },
    async predict(x) {
      const out = new Float32Array(x.shape[0] * k);
      for (let i = 0; i < x.shape[0]; i++) out[i * k] = 1;
      return { data: out, shape: [x.shape[0], k] };
    },
    async lossGradient(x) {
      const g = new Float32Array(x.data.length);
      for (let j = 0; j < g.length; j++) g[j] = (rng.next() - 0.5) * 10 ** rng.int(6);
      return { data: g, shape: [...x.shape] };
    },
  };
}

/** Only `predict`: what a remote model offers. */
export function predictOnly(m: Predictor, name = m.info.name): Predictor {
  return { info: { ...m.info, name, engine: 'black-box' }, predict: (x) => m.predict(x) };
}

/** Only the predicted label, as a one-hot row: a decision-based API. */
export function labelOnly(m: Predictor): Predictor & { queries: number } {
  const wrapped = {
    queries: 0,
    info: { ...m.info, name: `labels(${m.info.name})`, engine: 'label-only' },
    async predict(x: Samples): Promise<Samples> {
      wrapped.queries += x.shape[0];
      const labels = argmaxRows(await m.predict(x));
      const k = m.info.numClasses;
      const out = new Float32Array(labels.length * k);
      labels.forEach((c, i) => (out[i * k + c] = 1));
      return { data: out, shape: [labels.length, k] };
    },
  };
  return wrapped;
}

export function uniformSamples(n: number, shape: number[], seed: number, lo = 0, hi = 1): Samples {
  const d = shape.reduce((a, b) => a * b, 1);
  const rng = new Rng(seed);
  const data = new Float32Array(n * d);
  for (let j = 0; j < data.length; j++) data[j] = lo + (hi - lo) * rng.next();
  return { data, shape: [n, ...shape] };
}

export function accuracyOf(pred: Int32Array, y: Int32Array): number {
  let hits = 0;
  for (let i = 0; i < y.length; i++) if (pred[i] === y[i]) hits++;
  return hits / y.length;
}

export function maxAbsDiff(a: Float32Array, b: Float32Array, start: number, d: number): number {
  let m = 0;
  for (let j = start; j < start + d; j++) m = Math.max(m, Math.abs(a[j] - b[j]));
  return m;
}

export function l2Diff(a: Float32Array, b: Float32Array, start: number, d: number): number {
  let s = 0;
  for (let j = start; j < start + d; j++) s += (a[j] - b[j]) ** 2;
  return Math.sqrt(s);
}
