import { BulwarkError, Rng, argmaxRows, hasCapability, silentProgress, type Dataset, type Model, type Progress, type Samples } from '../../core/index.js';

/**
 * Model inversion: reconstruct what a class "looks like" to the model. With gradients,
 * MIFace-style gradient ascent on the input (Fredrikson et al. 2015) with a smoothness
 * prior (squared total variation) and the input box; with queries alone, the same ascent
 * on gradients estimated by antithetic Gaussian sampling (NES), over a coarser image so
 * the estimate needs fewer queries (and the result stays smooth).
 */

export interface InversionOptions {
  /** Classes to reconstruct (default: all). */
  classes?: readonly number[];
  /** 'auto' (default): gradients when the model offers classGradient, else queries. */
  mode?: 'auto' | 'gradient' | 'query';
  /** Ascent steps with gradients (default 300). */
  steps?: number;
  /** Step size as a share of the input range (default 0.02). */
  learningRate?: number;
  /** Weight of the squared total-variation prior (default 0.02). */
  tv?: number;
  /** Queries per class in query mode (default 20,000). */
  queries?: number;
  /** Antithetic pairs per query-mode step (default 25). */
  samples?: number;
  /** Valid input range (default [0, 1]). */
  range?: [number, number];
  seed?: number;
  progress?: Progress;
}

export interface InversionResult {
  mode: 'gradient' | 'query';
  classes: Int32Array;
  /** One reconstruction per class, [classes, ...inputShape]. */
  images: Samples;
  /** The model's probability of the intended class for each reconstruction. */
  confidence: Float64Array;
  queries: number;
  seconds: number;
}

function imageDims(shape: readonly number[]): [number, number, number] | null {
  if (shape.length === 3) return [shape[0], shape[1], shape[2]];
  if (shape.length === 2) return [shape[0], shape[1], 1];
  return null;
}

/** Adds the gradient of −tv·Σ(neighbour differences)² to g, for each of `k` images of size h×w×c. */
function addTvGradient(x: Float32Array, g: Float32Array, k: number, dims: [number, number, number] | null, tv: number): void {
  if (!dims || tv === 0) return;
  const [h, w, c] = dims;
  const size = h * w * c;
  for (let n = 0; n < k; n++) {
    const o = n * size;
    for (let i = 0; i < h; i++) {
      for (let j = 0; j < w; j++) {
        for (let ch = 0; ch < c; ch++) {
          const p = o + (i * w + j) * c + ch;
          if (i + 1 < h) {
            const d = x[p + w * c] - x[p];
            g[p] += 2 * tv * d;
            g[p + w * c] -= 2 * tv * d;
          }
          if (j + 1 < w) {
            const d = x[p + c] - x[p];
            g[p] += 2 * tv * d;
            g[p + c] -= 2 * tv * d;
          }
        }
      }
    }
  }
}

class Adam {
  private m: Float32Array;
  private v: Float32Array;
  private t = 0;
  constructor(
    size: number,
    private readonly lr: number,
  ) {
    this.m = new Float32Array(size);
    this.v = new Float32Array(size);
  }
  /** Ascent: x += lr · m̂ / (√v̂ + ε). */
  step(x: Float32Array, g: Float32Array, lo: number, hi: number): void {
    this.t++;
    const b1 = 0.9;
    const b2 = 0.999;
    const c1 = 1 - b1 ** this.t;
    const c2 = 1 - b2 ** this.t;
    for (let i = 0; i < x.length; i++) {
      this.m[i] = b1 * this.m[i] + (1 - b1) * g[i];
      this.v[i] = b2 * this.v[i] + (1 - b2) * g[i] * g[i];
      const next = x[i] + (this.lr * this.m[i]) / c1 / (Math.sqrt(this.v[i] / c2) + 1e-8);
      x[i] = next < lo ? lo : next > hi ? hi : next;
    }
  }
}

export async function invertModel(model: Model, opts: InversionOptions = {}): Promise<InversionResult> {
  const t0 = performance.now();
  const k = model.info.numClasses;
  const classes = Int32Array.from(opts.classes ?? Array.from({ length: k }, (_, i) => i));
  for (const c of classes) {
    if (!Number.isInteger(c) || c < 0 || c >= k) throw new BulwarkError('E_USAGE', `class ${c} is not one of the model's ${k} classes (0–${k - 1})`);
  }
  const [lo, hi] = opts.range ?? [0, 1];
  if (!(hi > lo)) throw new BulwarkError('E_USAGE', `the input range must be [low, high] with low < high, got [${lo}, ${hi}]`);
  const wantGradient = opts.mode === 'gradient';
  if (wantGradient && !hasCapability(model, 'classGradient')) {
    throw new BulwarkError('E_MODEL_CAPABILITY', `gradient inversion needs the 'classGradient' capability, which model '${model.info.name}' (${model.info.engine}) lacks; use the query mode`);
  }
  const mode = opts.mode === 'query' || (opts.mode !== 'gradient' && !hasCapability(model, 'classGradient')) ? 'query' : 'gradient';
  const shape = model.info.inputShape;
  const size = shape.reduce((a, b) => a * b, 1);
  const n = classes.length;
  const progress = opts.progress ?? silentProgress;
  const lr = (opts.learningRate ?? 0.02) * (hi - lo);
  const tv = opts.tv ?? 0.02;
  // Start from a faint uniform image: no class is favoured, and nothing of the data is used.
  const x = new Float32Array(n * size).fill(lo + 0.1 * (hi - lo));
  let queries = 0;
  if (mode === 'gradient') {
    const steps = opts.steps ?? 300;
    const adam = new Adam(x.length, lr);
    progress.start('inversion (gradient ascent)', steps);
    for (let s = 0; s < steps; s++) {
      const g = (await model.classGradient!({ data: x, shape: [n, ...shape] }, classes)).data;
      addTvGradient(x, g, n, imageDims(shape), tv);
      adam.step(x, g, lo, hi);
      progress.advance(1);
    }
    progress.done();
  } else {
    queries = await queryAscent(model, x, classes, shape, { lo, hi, lr, tv, budget: opts.queries ?? 20_000, pairs: opts.samples ?? 25, seed: opts.seed ?? 42, progress });
  }
  const p = await model.predict({ data: x, shape: [n, ...shape] });
  queries += mode === 'query' ? n : 0;
  const confidence = Float64Array.from(classes, (c, i) => p.data[i * p.shape[1] + c]);
  return { mode, classes, images: { data: x, shape: [n, ...shape] }, confidence, queries, seconds: (performance.now() - t0) / 1000 };
}

/** Bilinear upsampling of a coarse h'×w'×c image to h×w×c. */
function upsample(v: Float32Array, coarse: [number, number, number], fine: [number, number, number], out: Float32Array, offset: number): void {
  const [ch, cw, c] = coarse;
  const [h, w] = fine;
  for (let i = 0; i < h; i++) {
    const fy = ch === 1 ? 0 : (i * (ch - 1)) / (h - 1);
    const y0 = Math.floor(fy);
    const y1 = Math.min(ch - 1, y0 + 1);
    const ty = fy - y0;
    for (let j = 0; j < w; j++) {
      const fx = cw === 1 ? 0 : (j * (cw - 1)) / (w - 1);
      const x0 = Math.floor(fx);
      const x1 = Math.min(cw - 1, x0 + 1);
      const tx = fx - x0;
      for (let k = 0; k < c; k++) {
        const a = v[(y0 * cw + x0) * c + k];
        const b = v[(y0 * cw + x1) * c + k];
        const d = v[(y1 * cw + x0) * c + k];
        const e = v[(y1 * cw + x1) * c + k];
        out[offset + (i * w + j) * c + k] = (1 - ty) * ((1 - tx) * a + tx * b) + ty * ((1 - tx) * d + tx * e);
      }
    }
  }
}

interface QueryOptions {
  lo: number;
  hi: number;
  lr: number;
  tv: number;
  budget: number;
  pairs: number;
  seed: number;
  progress: Progress;
}

/** NES ascent on log p_class, in a coarse parameter space; returns the queries spent. */
async function queryAscent(model: Model, x: Float32Array, classes: Int32Array, shape: readonly number[], o: QueryOptions): Promise<number> {
  const n = classes.length;
  const size = x.length / n;
  const dims = imageDims(shape);
  const factor = dims && dims[0] >= 14 && dims[1] >= 14 ? 4 : 1;
  const coarse: [number, number, number] | null = dims ? [Math.ceil(dims[0] / factor), Math.ceil(dims[1] / factor), dims[2]] : null;
  const psize = coarse ? coarse[0] * coarse[1] * coarse[2] : size;
  const params = new Float32Array(n * psize).fill(o.lo + 0.1 * (o.hi - o.lo));
  const render = (v: Float32Array, voff: number, out: Float32Array, off: number) => {
    if (coarse && dims) upsample(v.subarray(voff, voff + psize), coarse, dims, out, off);
    else out.set(v.subarray(voff, voff + psize), off);
    for (let i = off; i < off + size; i++) out[i] = Math.min(o.hi, Math.max(o.lo, out[i]));
  };
  const rng = new Rng(o.seed);
  const sigma = 0.05 * (o.hi - o.lo);
  const rows = 2 * o.pairs;
  const steps = Math.max(1, Math.floor(o.budget / rows));
  const adam = new Adam(params.length, o.lr);
  const noise = new Float32Array(n * o.pairs * psize);
  const batch = new Float32Array(n * rows * size);
  const probe = new Float32Array(psize);
  const g = new Float32Array(params.length);
  let queries = 0;
  o.progress.start('inversion (queries)', steps);
  for (let s = 0; s < steps; s++) {
    for (let c = 0; c < n; c++) {
      for (let q = 0; q < o.pairs; q++) {
        const u = noise.subarray((c * o.pairs + q) * psize, (c * o.pairs + q + 1) * psize);
        for (let i = 0; i < psize; i++) u[i] = rng.normal();
        for (const sign of [1, -1]) {
          for (let i = 0; i < psize; i++) probe[i] = params[c * psize + i] + sign * sigma * u[i];
          render(probe, 0, batch, (c * rows + 2 * q + (sign === 1 ? 0 : 1)) * size);
        }
      }
    }
    const p = await model.predict({ data: batch, shape: [n * rows, ...shape] });
    queries += n * rows;
    const k = p.shape[1];
    g.fill(0);
    for (let c = 0; c < n; c++) {
      for (let q = 0; q < o.pairs; q++) {
        const up = Math.log(Math.max(p.data[(c * rows + 2 * q) * k + classes[c]], 1e-30));
        const down = Math.log(Math.max(p.data[(c * rows + 2 * q + 1) * k + classes[c]], 1e-30));
        const wgt = (up - down) / (2 * sigma * o.pairs);
        const u = noise.subarray((c * o.pairs + q) * psize, (c * o.pairs + q + 1) * psize);
        for (let i = 0; i < psize; i++) g[c * psize + i] += wgt * u[i];
      }
    }
    addTvGradient(params, g, n, coarse, o.tv);
    adam.step(params, g, o.lo, o.hi);
    o.progress.advance(1);
  }
  o.progress.done();
  for (let c = 0; c < n; c++) render(params, c * psize, x, c * size);
  return queries;
}

export interface InversionScore {
  perClass: { class: number; similarity: number; nearestMean: number; judged: number | null; judgeConfidence: number | null }[];
  /** Mean Pearson correlation of each reconstruction with its class's mean training image. */
  meanSimilarity: number;
  /** Share of reconstructions closest (by correlation) to their own class's mean. */
  nearestMeanRate: number;
  /** Share an independently trained model classifies as the intended class (null without a judge). */
  recognitionRate: number | null;
}

/** Per-class mean inputs of a dataset, [classes][size]. */
export function classMeans(ds: Dataset, numClasses = ds.classNames.length): Float32Array[] {
  const size = ds.x.data.length / Math.max(1, ds.y.length);
  const sums = Array.from({ length: numClasses }, () => new Float64Array(size));
  const counts = new Array<number>(numClasses).fill(0);
  for (let i = 0; i < ds.y.length; i++) {
    const c = ds.y[i];
    if (c >= numClasses) continue;
    counts[c]++;
    const row = ds.x.data.subarray(i * size, (i + 1) * size);
    for (let j = 0; j < size; j++) sums[c][j] += row[j];
  }
  return sums.map((s, c) => Float32Array.from(s, (v) => v / Math.max(1, counts[c])));
}

function correlation(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = a.length;
  let ma = 0;
  let mb = 0;
  for (let i = 0; i < n; i++) {
    ma += a[i];
    mb += b[i];
  }
  ma /= n;
  mb /= n;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < n; i++) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) ** 2;
    sbb += (b[i] - mb) ** 2;
  }
  return saa > 0 && sbb > 0 ? sab / Math.sqrt(saa * sbb) : 0;
}

export async function scoreInversion(result: InversionResult, reference: Dataset, judge?: Model): Promise<InversionScore> {
  const n = result.classes.length;
  const size = result.images.data.length / Math.max(1, n);
  const means = classMeans(reference, Math.max(reference.classNames.length, ...Array.from(result.classes, (c) => c + 1)));
  const judged = judge ? argmaxRows(await judge.predict(result.images)) : null;
  const judgeProbs = judge ? await judge.predict(result.images) : null;
  const perClass = Array.from(result.classes, (c, i) => {
    const img = result.images.data.subarray(i * size, (i + 1) * size);
    const sims = means.map((m) => correlation(img, m));
    let nearest = 0;
    for (let j = 1; j < sims.length; j++) if (sims[j] > sims[nearest]) nearest = j;
    return {
      class: c,
      similarity: sims[c] ?? 0,
      nearestMean: nearest,
      judged: judged ? judged[i] : null,
      judgeConfidence: judgeProbs ? judgeProbs.data[i * judgeProbs.shape[1] + c] : null,
    };
  });
  return {
    perClass,
    meanSimilarity: perClass.reduce((s, p) => s + p.similarity, 0) / Math.max(1, n),
    nearestMeanRate: perClass.filter((p) => p.nearestMean === p.class).length / Math.max(1, n),
    recognitionRate: judged ? perClass.filter((p) => p.judged === p.class).length / Math.max(1, n) : null,
  };
}
