import { argmaxRows, BulwarkError, requireCapability, Rng, silentProgress, type Dataset, type Model, type Progress } from '../../../core/index.js';
import { imageGeometry, type Trigger } from '../../attacks/triggers.js';
import { median } from '../stats.js';

export interface NeuralCleanseOptions {
  /** Classes to reverse-engineer a trigger for (default all). */
  classes?: number[];
  /** Optimisation steps (default 300; every class advances at each step). */
  steps?: number;
  batchSize?: number;
  /** Adam step size on the mask and pattern parameters (default 0.1). */
  learningRate?: number;
  /** Starting weight of the mask's L1 norm in the loss, adapted as the paper does (default 1e-2: our cost changes every 10 steps, not every epoch). */
  initialCost?: number;
  /** Share of a batch that must reach the class for a trigger to count (default 0.95). */
  targetSuccess?: number;
  /** Clean rows used (default 500, drawn with the seed). */
  samples?: number;
  /** Anomaly index above which a class is flagged (default 2). */
  threshold?: number;
  seed?: number;
  progress?: Progress;
}

export interface ReversedTrigger {
  classIndex: number;
  className: string;
  /** L1 norm of the smallest mask found that moves `attackSuccess` of inputs to the class. */
  maskL1: number;
  attackSuccess: number;
  /** MAD anomaly index of the norm (negative: larger than the median). */
  anomalyIndex: number;
  trigger: Trigger;
}

export interface NeuralCleanseResult {
  triggers: ReversedTrigger[];
  /** Classes whose minimal trigger is anomalously small: likely infected. */
  flagged: number[];
  median: number;
  /** Median absolute deviation of the norms, scaled by 1.4826. */
  mad: number;
}

/**
 * Neural Cleanse (Wang et al. 2019): for each class, the smallest mask m and pattern p such
 * that (1 − m)⊙x + m⊙p sends clean inputs to that class, found by gradient descent on
 * cross-entropy + λ‖m‖₁ with λ adapted to keep the attack succeeding. A backdoor is a
 * shortcut, so its class needs a far smaller mask than the others: a norm more than
 * `threshold` MADs below the median is flagged. Gradients come from the model's
 * `lossGradient`, chained through the trigger's parameterisation here, so any white-box
 * engine serves.
 */
export async function neuralCleanse(model: Model, clean: Dataset, opts: NeuralCleanseOptions = {}): Promise<NeuralCleanseResult> {
  requireCapability(model, 'lossGradient', 'Neural Cleanse');
  const progress = opts.progress ?? silentProgress;
  const steps = opts.steps ?? 300;
  const batch = opts.batchSize ?? 32;
  const lr = opts.learningRate ?? 0.1;
  const targetSuccess = opts.targetSuccess ?? 0.95;
  const threshold = opts.threshold ?? 2;
  const k = model.info.numClasses;
  const classes = opts.classes ?? Array.from({ length: k }, (_, c) => c);
  for (const c of classes) if (!Number.isInteger(c) || c < 0 || c >= k) throw new BulwarkError('E_USAGE', `class ${c} is not one of the model's ${k} classes`);
  if (classes.length < 3) throw new BulwarkError('E_USAGE', 'Neural Cleanse compares classes with each other: give at least 3');
  const n = clean.x.shape[0];
  if (n < batch) throw new BulwarkError('E_DATA_SHAPE', `Neural Cleanse needs at least ${batch} clean inputs, got ${n}`);
  const shape = clean.x.shape.slice(1);
  const size = shape.reduce((a, b) => a * b, 1);
  const geo = imageGeometry(shape);
  const channels = geo ? geo.c : 1;
  const maskSize = size / channels;
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of clean.x.data) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const rng = new Rng(opts.seed ?? 42);
  const rows = rng.permutation(n).slice(0, Math.min(n, opts.samples ?? 500));
  const K = classes.length;
  // All classes are optimised together: one gradient call per step covers a batch for each
  // class (the loss is a sum over rows, so the rows' gradients do not mix).
  const state = classes.map(() => ({
    a: new Float64Array(maskSize).fill(-2),
    b: Float64Array.from({ length: size }, () => rng.normal() * 0.1),
    adam: new Adam(maskSize + size, lr),
    cost: opts.initialCost ?? 1e-2,
    up: 0,
    down: 0,
    best: null as null | { l1: number; success: number; mask: Float32Array; pattern: Float32Array },
    last: { l1: Infinity, success: 0, mask: new Float32Array(maskSize), pattern: new Float32Array(size) },
  }));
  const xb = new Float32Array(K * batch * size);
  const x0 = new Float32Array(batch * size);
  const yb = Int32Array.from({ length: K * batch }, (_, i) => classes[Math.floor(i / batch)]);
  const grad = new Float64Array(maskSize + size);
  progress.start('Neural Cleanse', steps);
  for (let step = 0; step < steps; step++) {
    for (let i = 0; i < batch; i++) {
      const r = rows[rng.int(rows.length)];
      x0.set(clean.x.data.subarray(r * size, (r + 1) * size), i * size);
    }
    const masks = state.map((st) => Float32Array.from(st.a, sigmoid));
    const patterns = state.map((st) => Float32Array.from(st.b, (v) => lo + (hi - lo) * sigmoid(v)));
    for (let c = 0; c < K; c++) {
      const mask = masks[c];
      const pattern = patterns[c];
      const o = c * batch * size;
      for (let t = 0; t < batch * size; t++) {
        const j = t % size;
        const m = mask[Math.floor(j / channels)];
        xb[o + t] = (1 - m) * x0[t] + m * pattern[j];
      }
    }
    const g = await model.lossGradient({ data: xb, shape: [K * batch, ...shape] }, yb);
    // Attack success, measured every few steps (a prediction costs as much as a gradient).
    const measure = step % 5 === 4 || step === steps - 1;
    const predicted = measure ? argmaxRows(await model.predict({ data: xb, shape: [K * batch, ...shape] })) : null;
    for (let c = 0; c < K; c++) {
      const st = state[c];
      const mask = masks[c];
      const pattern = patterns[c];
      const o = c * batch * size;
      grad.fill(0);
      for (let t = 0; t < batch * size; t++) {
        const gj = g.data[o + t] / batch;
        if (gj === 0) continue;
        const j = t % size;
        const mi = Math.floor(j / channels);
        const m = mask[mi];
        grad[mi] += gj * (pattern[j] - x0[t]) * m * (1 - m);
        const sj = (pattern[j] - lo) / Math.max(1e-12, hi - lo);
        grad[maskSize + j] += gj * m * (hi - lo) * sj * (1 - sj);
      }
      let l1 = 0;
      for (let mi = 0; mi < maskSize; mi++) {
        l1 += mask[mi];
        grad[mi] += st.cost * mask[mi] * (1 - mask[mi]);
      }
      if (predicted) {
        let hits = 0;
        for (let i = 0; i < batch; i++) if (predicted[c * batch + i] === classes[c]) hits++;
        const success = hits / batch;
        st.last = { l1, success, mask, pattern };
        if (success >= targetSuccess && (!st.best || l1 < st.best.l1)) st.best = { l1, success, mask, pattern };
        // The paper's schedule: raise the cost while the trigger works, lower it when it fails.
        if (success >= targetSuccess) {
          st.up++;
          st.down = 0;
        } else {
          st.down++;
          st.up = 0;
        }
        if (st.up >= 2) {
          st.cost *= 1.5;
          st.up = 0;
        } else if (st.down >= 2) {
          st.cost /= 1.5 ** 1.5;
          st.down = 0;
        }
      }
      st.adam.step(st.a, st.b, grad, maskSize);
    }
    progress.advance(1);
  }
  progress.done();
  const triggers: ReversedTrigger[] = classes.map((target, c) => {
    const found = state[c].best ?? state[c].last;
    const full = new Float32Array(size);
    for (let j = 0; j < size; j++) full[j] = found.mask[Math.floor(j / channels)];
    const name = clean.classNames[target] ?? String(target);
    return {
      classIndex: target,
      className: name,
      maskL1: found.l1,
      attackSuccess: found.success,
      anomalyIndex: 0,
      trigger: { shape, mask: full, pattern: found.pattern, description: `reverse-engineered trigger for class '${name}' (mask L1 ${found.l1.toFixed(1)})` },
    };
  });
  const norms = triggers.map((t) => t.maskL1);
  const med = median(norms);
  const mad = 1.4826 * median(norms.map((v) => Math.abs(v - med)));
  for (const t of triggers) t.anomalyIndex = mad > 0 ? (med - t.maskL1) / mad : 0;
  return { triggers, flagged: triggers.filter((t) => t.anomalyIndex > threshold).map((t) => t.classIndex), median: med, mad };
}

function sigmoid(v: number): number {
  return 1 / (1 + Math.exp(-v));
}

/** Adam over the concatenation [a; b] of the mask and pattern parameters. */
class Adam {
  private readonly m: Float64Array;
  private readonly v: Float64Array;
  private t = 0;
  constructor(size: number, private readonly lr: number) {
    this.m = new Float64Array(size);
    this.v = new Float64Array(size);
  }

  step(a: Float64Array, b: Float64Array, g: Float64Array, split: number): void {
    this.t++;
    const c1 = 1 - 0.9 ** this.t;
    const c2 = 1 - 0.999 ** this.t;
    for (let i = 0; i < g.length; i++) {
      this.m[i] = 0.9 * this.m[i] + 0.1 * g[i];
      this.v[i] = 0.999 * this.v[i] + 0.001 * g[i] * g[i];
      const delta = (this.lr * (this.m[i] / c1)) / (Math.sqrt(this.v[i] / c2) + 1e-8);
      if (i < split) a[i] -= delta;
      else b[i - split] -= delta;
    }
  }
}
