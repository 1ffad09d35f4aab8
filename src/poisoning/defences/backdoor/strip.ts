import { BulwarkError, Rng, type Dataset, type Predictor, type Samples } from '../../../core/index.js';
import { quantile } from '../stats.js';
import { superimpose } from './common.js';

export interface StripOptions {
  /** Clean inputs superimposed on each tested input (default 16). */
  overlays?: number;
  /** False-rejection rate on clean data that sets the threshold (default 0.05). */
  frr?: number;
  seed?: number;
}

export interface StripResult {
  /** Mean prediction entropy (bits) under superimposition, per input: low = suspicious. */
  entropy: Float64Array;
  flagged: Uint8Array;
  threshold: number;
}

/**
 * STRIP (Gao et al. 2019), a run-time trojan detector: an input carrying a trigger keeps
 * its (target) prediction whatever clean image is superimposed on it, so the entropy of the
 * predictions over many superimpositions is low; a clean input's predictions scatter. The
 * threshold is the entropy that `frr` of clean inputs fall below. State: the clean pool and
 * the threshold, fixed at calibration.
 */
export class StripDetector {
  private constructor(
    private readonly model: Predictor,
    private readonly pool: Samples,
    private readonly range: { min: number; max: number },
    readonly threshold: number,
    readonly frr: number,
    private readonly overlays: number,
    private readonly seed: number,
  ) {}

  /** Calibrates on clean data: half of it is the overlay pool, the other half sets the threshold. */
  static async calibrate(model: Predictor, clean: Dataset, opts: StripOptions = {}): Promise<StripDetector> {
    const frr = opts.frr ?? 0.05;
    const overlays = opts.overlays ?? 16;
    const seed = opts.seed ?? 42;
    if (!(frr > 0 && frr < 1)) throw new BulwarkError('E_USAGE', `STRIP's false-rejection rate must be in (0, 1), got ${frr}`);
    if (!Number.isInteger(overlays) || overlays < 1) throw new BulwarkError('E_USAGE', `STRIP overlays must be a positive integer, got ${overlays}`);
    const n = clean.x.shape[0];
    if (n < 20) throw new BulwarkError('E_DATA_SHAPE', `STRIP needs at least 20 clean inputs to calibrate, got ${n}`);
    const size = clean.x.data.length / n;
    const order = new Rng(seed).permutation(n);
    const half = Math.floor(n / 2);
    const take = (rows: Int32Array): Samples => {
      const out = new Float32Array(rows.length * size);
      rows.forEach((r, i) => out.set(clean.x.data.subarray(r * size, (r + 1) * size), i * size));
      return { data: out, shape: [rows.length, ...clean.x.shape.slice(1)] };
    };
    let min = Infinity;
    let max = -Infinity;
    for (const v of clean.x.data) {
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const pool = take(order.subarray(0, half));
    const probe = new StripDetector(model, pool, { min, max }, 0, frr, overlays, seed);
    const entropies = await probe.entropies(take(order.subarray(half)));
    return new StripDetector(model, pool, { min, max }, quantile(entropies, frr), frr, overlays, seed);
  }

  async detect(x: Samples): Promise<StripResult> {
    const entropy = await this.entropies(x);
    return { entropy, flagged: Uint8Array.from(entropy, (h) => (h < this.threshold ? 1 : 0)), threshold: this.threshold };
  }

  private async entropies(x: Samples): Promise<Float64Array> {
    const n = x.shape[0];
    const size = x.data.length / Math.max(1, n);
    const poolSize = this.pool.shape[0];
    if (size !== this.pool.data.length / poolSize) throw new BulwarkError('E_DATA_SHAPE', `STRIP was calibrated on samples of ${this.pool.data.length / poolSize} values; got ${size}`);
    const rng = new Rng(this.seed + 1);
    const out = new Float64Array(n);
    const BATCH = 128;
    const k = this.overlays;
    // Inputs and pool rows share one buffer so superimpose() can address both by offset.
    const both = new Float32Array(this.pool.data.length + size);
    both.set(this.pool.data);
    for (let s = 0; s < n; s += BATCH) {
      const e = Math.min(n, s + BATCH);
      const blended = new Float32Array((e - s) * k * size);
      for (let i = s; i < e; i++) {
        both.set(x.data.subarray(i * size, (i + 1) * size), this.pool.data.length);
        for (let t = 0; t < k; t++) superimpose(both, [this.pool.data.length, rng.int(poolSize) * size], size, this.range, blended, ((i - s) * k + t) * size);
      }
      const p = await this.model.predict({ data: blended, shape: [(e - s) * k, ...x.shape.slice(1)] });
      const classes = p.data.length / ((e - s) * k);
      for (let i = s; i < e; i++) {
        let h = 0;
        for (let t = 0; t < k; t++) {
          const o = ((i - s) * k + t) * classes;
          for (let c = 0; c < classes; c++) {
            const v = p.data[o + c];
            if (v > 0) h -= v * Math.log2(v);
          }
        }
        out[i] = h / k;
      }
    }
    return out;
  }
}
