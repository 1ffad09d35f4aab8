import {
  BulwarkError,
  argmaxRows,
  checkInputShape,
  hasCapability,
  isBulwarkError,
  requireCapability,
  sampleSize,
  type LossGradient,
  type Model,
  type Progress,
  type Samples,
} from '../../core/index.js';

export type Norm = 'linf' | 'l2';
export const NORMS: readonly Norm[] = ['linf', 'l2'];

/** The valid input range [min, max]; null when inputs are unbounded. */
export type ClipRange = readonly [number, number] | null;

/** Options every evasion attack takes. */
export interface AttackOptions {
  /** Largest perturbation allowed, in `norm` (for HopSkipJump: the size that counts as success). */
  eps: number;
  /** Default 'linf'. */
  norm?: Norm;
  /** Valid input range; the adversarial inputs stay inside it. Default [0, 1]; null: no clipping. */
  clip?: ClipRange;
  /** Classes to reach, one per sample (a targeted attack); absent: any wrong class will do. */
  targets?: Int32Array;
  seed?: number;
  /** Samples per model call. Default 256. */
  batchSize?: number;
  progress?: Progress;
}

/** What an evasion attack returns. */
export interface EvasionResult {
  attack: string;
  norm: Norm;
  eps: number | null;
  targeted: boolean;
  /** The adversarial inputs, same shape as the clean ones (a clean input where nothing was found). */
  adversarial: Samples;
  /** Per sample: the attack reached its goal (a wrong class, or the target) within eps. */
  success: boolean[];
  /** Class the model predicts for each clean input. */
  cleanPredicted: Int32Array;
  /** Class the model predicts for each adversarial input. */
  predicted: Int32Array;
  /** Size of each perturbation in the attack's norm. */
  norms: Float64Array;
  /** Black-box attacks: model inputs sent per sample, the clean one included. */
  queries?: Int32Array;
  seconds: number;
}

export const DEFAULT_CLIP: readonly [number, number] = [0, 1];
export const DEFAULT_BATCH = 256;

export interface Resolved {
  eps: number;
  norm: Norm;
  clip: ClipRange;
  targets: Int32Array | null;
  seed: number;
  batchSize: number;
  progress: Progress | undefined;
}

/**
 * Checks the options and the data together: eps must be a size the valid range allows, the
 * inputs must already lie in that range (else the range is not what the caller thinks), and
 * targets must name other classes than the true ones.
 */
export function resolveCommon(
  name: string,
  model: Model,
  x: Samples,
  y: Int32Array,
  o: Omit<AttackOptions, 'eps'> & { eps?: number },
  epsRequired = true,
): Resolved {
  checkInputShape(model, x, name);
  const n = x.shape[0];
  if (y.length !== n) throw new BulwarkError('E_DATA_SHAPE', `${name}: ${n} samples but ${y.length} labels`);
  const k = model.info.numClasses;
  for (let i = 0; i < n; i++) {
    if (!Number.isInteger(y[i]) || y[i] < 0 || y[i] >= k) {
      throw new BulwarkError('E_DATA_VALUE', `${name}: label ${y[i]} of sample ${i} is not one of the model's ${k} classes`);
    }
  }
  const norm = o.norm ?? 'linf';
  if (!NORMS.includes(norm)) throw new BulwarkError('E_USAGE', `${name}: norm must be 'linf' or 'l2', not '${String(norm)}'`);
  const clip = o.clip === undefined ? DEFAULT_CLIP : o.clip;
  if (clip !== null) {
    if (clip.length !== 2 || !Number.isFinite(clip[0]) || !Number.isFinite(clip[1]) || !(clip[0] < clip[1])) {
      throw new BulwarkError('E_USAGE', `${name}: clip must be [min, max] with min < max, not [${clip.join(', ')}]`);
    }
    checkInRange(name, x, clip);
  }
  // Infinity stands for "no size limit" where eps is optional (a minimum-norm attack).
  const eps = o.eps === undefined && !epsRequired ? Infinity : o.eps;
  if (eps === Infinity && !epsRequired) {
    // nothing to check
  } else if (typeof eps !== 'number' || !Number.isFinite(eps) || eps <= 0) {
    throw new BulwarkError('E_USAGE', `${name}: eps must be a positive number, not ${String(eps)}`);
  }
  if (clip !== null && eps !== Infinity) {
    const width = clip[1] - clip[0];
    const widest = norm === 'linf' ? width : width * Math.sqrt(sampleSize(x));
    if (eps > widest) {
      throw new BulwarkError(
        'E_USAGE',
        `${name}: eps ${eps} (${norm}) is larger than the whole input range [${clip[0]}, ${clip[1]}] allows (${round(widest)}); ` +
          `eps is measured in input units, so for inputs in [${clip[0]}, ${clip[1]}] pick eps well below ${round(widest)}`,
      );
    }
  }
  let targets: Int32Array | null = null;
  if (o.targets !== undefined) {
    targets = o.targets;
    if (targets.length !== n) throw new BulwarkError('E_DATA_SHAPE', `${name}: ${n} samples but ${targets.length} targets`);
    for (let i = 0; i < n; i++) {
      if (!Number.isInteger(targets[i]) || targets[i] < 0 || targets[i] >= k) {
        throw new BulwarkError('E_USAGE', `${name}: target ${targets[i]} of sample ${i} is not one of the model's ${k} classes`);
      }
      if (targets[i] === y[i]) throw new BulwarkError('E_USAGE', `${name}: target of sample ${i} is its own class ${y[i]}; a target must be another class`);
    }
  }
  const batchSize = o.batchSize ?? DEFAULT_BATCH;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new BulwarkError('E_USAGE', `${name}: batchSize must be a positive integer, not ${batchSize}`);
  const seed = o.seed ?? 42;
  if (!Number.isInteger(seed)) throw new BulwarkError('E_USAGE', `${name}: seed must be an integer, not ${seed}`);
  return { eps: eps as number, norm, clip, targets, seed, batchSize, progress: o.progress };
}

function checkInRange(name: string, x: Samples, [lo, hi]: readonly [number, number]): void {
  const d = sampleSize(x);
  for (let i = 0; i < x.data.length; i++) {
    const v = x.data[i];
    if (!(v >= lo - 1e-6 && v <= hi + 1e-6)) {
      throw new BulwarkError(
        'E_DATA_VALUE',
        `${name}: input value ${v} (sample ${Math.floor(i / d)}, feature ${i % d}) lies outside the valid range [${lo}, ${hi}]; ` +
          `give the range of this data (clip: [min, max], --clip MIN,MAX) or clip: null for unbounded inputs`,
      );
    }
  }
}

function round(v: number): number {
  return Number(v.toPrecision(4));
}

/**
 * Like requireCapability, but the message also names the attacks that would work, since a
 * black-box model is the usual reason gradients are missing.
 */
export function requireGradients(model: Model, algorithm: string): asserts model is Model & LossGradient {
  try {
    requireCapability(model, 'lossGradient', algorithm);
  } catch (e) {
    if (!isBulwarkError(e)) throw e;
    throw new BulwarkError('E_MODEL_CAPABILITY', `${e.message} Attacks that need only predictions: square (scores) and hsj (labels only).`);
  }
}

export function canTakeGradients(model: Model): boolean {
  return hasCapability(model, 'lossGradient');
}

/** Perturbation size of row i (adv − x) in the given norm, in double precision. */
export function rowNorm(adv: Float32Array, x: Float32Array, start: number, d: number, norm: Norm): number {
  let acc = 0;
  for (let j = start; j < start + d; j++) {
    const v = Math.abs(adv[j] - x[j]);
    if (norm === 'linf') {
      if (v > acc) acc = v;
    } else acc += v * v;
  }
  return norm === 'linf' ? acc : Math.sqrt(acc);
}

export function perturbationNorms(x: Samples, adv: Samples, norm: Norm): Float64Array {
  const d = sampleSize(x);
  const n = x.shape[0];
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = rowNorm(adv.data, x.data, i * d, d, norm);
  return out;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The float32 next to `v` in the direction of `toward`. */
function stepToward(v: number, toward: number): number {
  f32[0] = v;
  if (f32[0] === toward) return f32[0];
  const up = toward > f32[0];
  // For positive floats the bit pattern grows with the value; for negative ones it shrinks.
  if (f32[0] === 0) {
    u32[0] = 1;
    return up ? f32[0] : -f32[0];
  }
  if (f32[0] > 0 === up) u32[0] += 1;
  else u32[0] -= 1;
  return f32[0];
}

/**
 * Writes row `i` of `out` as x0 + delta, with delta projected onto the eps-ball and the
 * result clipped to the valid range, so that the stored float32 values satisfy both
 * constraints exactly (rounding to float32 could otherwise overshoot eps by an ulp).
 * `delta` is in double precision and is modified.
 */
export function storeProjected(out: Float32Array, x0: Float32Array, start: number, delta: Float64Array, eps: number, norm: Norm, clip: ClipRange): void {
  const d = delta.length;
  // Hot loop of every attack: bounds in locals, and no branch on the norm per value.
  const lo = clip === null ? -Infinity : clip[0];
  const hi = clip === null ? Infinity : clip[1];
  if (norm === 'l2') {
    let s = 0;
    for (let j = 0; j < d; j++) s += delta[j] * delta[j];
    const len = Math.sqrt(s);
    if (len > eps) {
      const scale = eps / len;
      for (let j = 0; j < d; j++) delta[j] *= scale;
    }
  }
  const linf = norm === 'linf';
  for (let j = 0; j < d; j++) {
    const base = x0[start + j];
    let step = delta[j];
    if (linf) step = step > eps ? eps : step < -eps ? -eps : step;
    let v = base + step;
    v = v < lo ? lo : v > hi ? hi : v;
    let f = Math.fround(v);
    // Rare: rounding to float32 went past a bound; step back one float towards the clean value.
    if (linf) while (Math.abs(f - base) > eps) f = stepToward(f, base);
    while (f > hi && f > base) f = stepToward(f, base);
    while (f < lo && f < base) f = stepToward(f, base);
    out[start + j] = f;
  }
  if (!linf) {
    // Rounding can add up to half an ulp per value; shrink towards x0 until the stored row fits.
    for (let tries = 0; tries < 8 && rowNorm(out, x0, start, d, 'l2') > eps; tries++) {
      const len = rowNorm(out, x0, start, d, 'l2');
      for (let j = 0; j < d; j++) {
        const base = x0[start + j];
        out[start + j] = Math.fround(base + (out[start + j] - base) * (eps / len) * (1 - 1e-6));
      }
    }
    for (let j = 0; rowNorm(out, x0, start, d, 'l2') > eps && j < d; j++) out[start + j] = x0[start + j];
  }
}

/**
 * One L∞ PGD step on row `off`, fused: out ← clip(out + step·sign(g), x0 ± eps, range). The
 * same guarantees as storeProjected, in one pass: this loop is most of an attack's own time.
 */
export function signStepLinf(out: Float32Array, x0: Float32Array, off: number, g: Float32Array, gOff: number, d: number, step: number, eps: number, clip: ClipRange): void {
  const lo = clip === null ? -Infinity : clip[0];
  const hi = clip === null ? Infinity : clip[1];
  for (let j = 0; j < d; j++) {
    const base = x0[off + j];
    const gj = g[gOff + j];
    let v = out[off + j] + (gj > 0 ? step : gj < 0 ? -step : 0);
    const down = base - eps > lo ? base - eps : lo;
    const up = base + eps < hi ? base + eps : hi;
    v = v < down ? down : v > up ? up : v;
    let f = Math.fround(v);
    if (f - base > eps || base - f > eps || f > hi || f < lo) {
      while (Math.abs(f - base) > eps) f = stepToward(f, base);
      while (f > hi && f > base) f = stepToward(f, base);
      while (f < lo && f < base) f = stepToward(f, base);
    }
    out[off + j] = f;
  }
}

/** Predicted class per row. */
export async function classify(model: Model, x: Samples): Promise<Int32Array> {
  return argmaxRows(await model.predict(x));
}

/** Whether prediction `p` reaches the goal for a sample with label y (target t, or −1 when untargeted). */
export function reached(p: number, y: number, t: number): boolean {
  return t >= 0 ? p === t : p !== y;
}

export function copySamples(x: Samples): Samples {
  return { data: new Float32Array(x.data), shape: [...x.shape] };
}
