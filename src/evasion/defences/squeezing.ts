import { BulwarkError, checkInputShape, sampleSize, type Model, type Samples } from '../../core/index.js';

/** A transformation that removes detail an adversary could hide in. */
export interface Squeezer {
  readonly name: string;
  apply(x: Samples): Samples;
}

/** Rounds every value to one of 2^bits levels of the range [min, max]. */
export function bitDepthSqueezer(bits: number, range: readonly [number, number] = [0, 1]): Squeezer {
  if (!Number.isInteger(bits) || bits < 1 || bits > 16) throw new BulwarkError('E_USAGE', `bit depth must be an integer from 1 to 16, not ${bits}`);
  const [lo, hi] = range;
  if (!(hi > lo)) throw new BulwarkError('E_USAGE', `bit-depth range must be [min, max] with min < max, not [${lo}, ${hi}]`);
  const levels = 2 ** bits - 1;
  return {
    name: `bit depth ${bits}`,
    apply(x) {
      const out = new Float32Array(x.data.length);
      for (let i = 0; i < out.length; i++) {
        const t = Math.max(0, Math.min(1, (x.data[i] - lo) / (hi - lo)));
        out[i] = lo + (Math.round(t * levels) / levels) * (hi - lo);
      }
      return { data: out, shape: [...x.shape] };
    },
  };
}

/**
 * Median filter over size×size windows of each channel of [h, w, c] (or [h, w]) images,
 * with SciPy's `median_filter` conventions: reflected borders, the window anchored so an
 * even size reaches one pixel further back, and the upper median of an even count.
 */
export function medianSqueezer(size: number): Squeezer {
  if (!Number.isInteger(size) || size < 2) throw new BulwarkError('E_USAGE', `median filter size must be an integer of at least 2, not ${size}`);
  return {
    name: `median ${size}×${size}`,
    apply(x) {
      const shape = x.shape.slice(1);
      if (shape.length !== 2 && shape.length !== 3) {
        throw new BulwarkError('E_DATA_SHAPE', `median smoothing needs images [height, width(, channels)], not samples of shape [${shape.join(', ')}]`);
      }
      const [h, w, c] = [shape[0], shape[1], shape[2] ?? 1];
      const d = h * w * c;
      const out = new Float32Array(x.data.length);
      const before = Math.floor(size / 2);
      const win = new Float64Array(size * size);
      const reflect = (i: number, n: number) => {
        // SciPy 'reflect': (d c b a | a b c d | d c b a), repeated for windows wider than the image.
        const period = 2 * n;
        let m = ((i % period) + period) % period;
        if (m >= n) m = period - 1 - m;
        return m;
      };
      for (let s = 0; s < x.shape[0]; s++) {
        for (let ch = 0; ch < c; ch++) {
          for (let r = 0; r < h; r++) {
            for (let q = 0; q < w; q++) {
              let k = 0;
              for (let u = 0; u < size; u++) {
                const rr = reflect(r - before + u, h);
                for (let v = 0; v < size; v++) win[k++] = x.data[s * d + (rr * w + reflect(q - before + v, w)) * c + ch];
              }
              win.sort();
              out[s * d + (r * w + q) * c + ch] = win[Math.floor((size * size) / 2)];
            }
          }
        }
      }
      return { data: out, shape: [...x.shape] };
    },
  };
}

/** Xu et al.'s squeezers for greyscale digits: 1-bit depth and 2×2 median smoothing. */
export function defaultSqueezers(inputShape: readonly number[]): Squeezer[] {
  const image = inputShape.length === 2 || inputShape.length === 3;
  return image ? [bitDepthSqueezer(1), medianSqueezer(2)] : [bitDepthSqueezer(4)];
}

export interface SqueezingDetection {
  /** Per input: largest L1 distance between the model's predictions before and after a squeezer. */
  scores: Float64Array;
  /** Per input: the score passes the threshold. */
  flagged: boolean[];
  threshold: number;
}

/**
 * Feature squeezing (Xu et al. 2018): an adversarial input tends to change its prediction
 * when detail is squeezed out of it, a clean one does not. The score is the largest L1
 * distance between the prediction vectors of the input and of its squeezed versions; the
 * threshold comes from clean data at a chosen false-positive rate. Needs only `predict`.
 */
export class FeatureSqueezingDetector {
  readonly squeezers: readonly Squeezer[];
  private limit: number | undefined;

  constructor(
    readonly model: Model,
    opts: { squeezers?: Squeezer[]; threshold?: number } = {},
  ) {
    this.squeezers = opts.squeezers ?? defaultSqueezers(model.info.inputShape);
    if (this.squeezers.length === 0) throw new BulwarkError('E_USAGE', 'feature squeezing needs at least one squeezer');
    this.limit = opts.threshold;
  }

  /** The threshold in use; undefined until calibrated or given. */
  get threshold(): number | undefined {
    return this.limit;
  }

  async scores(x: Samples): Promise<Float64Array> {
    checkInputShape(this.model, x, 'feature squeezing');
    const n = x.shape[0];
    const k = this.model.info.numClasses;
    const base = await this.model.predict(x);
    const out = new Float64Array(n);
    for (const sq of this.squeezers) {
      const p = await this.model.predict(sq.apply(x));
      for (let i = 0; i < n; i++) {
        let l1 = 0;
        for (let j = 0; j < k; j++) l1 += Math.abs(base.data[i * k + j] - p.data[i * k + j]);
        if (l1 > out[i]) out[i] = l1;
      }
    }
    return out;
  }

  /**
   * Sets the threshold so that a share `fpr` of these clean inputs is flagged (the
   * (1 − fpr) quantile of their scores) and returns it.
   */
  async calibrate(clean: Samples, fpr = 0.05): Promise<number> {
    if (!(fpr > 0 && fpr < 1)) throw new BulwarkError('E_USAGE', `false-positive rate must be in (0, 1), not ${fpr}`);
    if (clean.shape[0] === 0 || sampleSize(clean) === 0) throw new BulwarkError('E_USAGE', 'feature squeezing needs clean inputs to calibrate on');
    const s = Array.from(await this.scores(clean)).sort((a, b) => a - b);
    // Flag strictly above the threshold: at most floor(fpr·n) clean inputs pass it.
    const keep = Math.ceil((1 - fpr) * s.length) - 1;
    this.limit = s[Math.max(0, Math.min(s.length - 1, keep))];
    return this.limit;
  }

  async detect(x: Samples): Promise<SqueezingDetection> {
    if (this.limit === undefined) throw new BulwarkError('E_USAGE', 'the feature-squeezing detector has no threshold: calibrate it on clean data first');
    const scores = await this.scores(x);
    const t = this.limit;
    return { scores, flagged: Array.from(scores, (v) => v > t), threshold: t };
  }
}
