import { BulwarkError, Rng, sampleSize, silentProgress, type Model, type Samples } from '../../core/index.js';
import { copySamples, reached, resolveCommon, rowNorm, storeProjected, type AttackOptions, type ClipRange, type EvasionResult } from './common.js';
import { budgetOption, geometryOf, pickRows, predictScores, scoreMargin, type Geometry } from './blackbox.js';

export interface SquareOptions extends AttackOptions {
  /** Model queries allowed per sample, the clean query included. Default 1000. */
  budget?: number;
  /**
   * Share of the input changed by the first squares; shrinks on the paper's schedule.
   * Default 0.3 for small inputs (up to 1,000 values, like 28×28 digits: tuned on them),
   * else the paper's ImageNet settings, 0.05 (L∞) and 0.1 (L2).
   */
  pInit?: number;
}

/**
 * The Square attack (Andriushchenko et al. 2020): random search over square-shaped updates
 * at the corners of the eps-ball, keeping a change when it lowers the margin between the
 * true class and the best other class. Needs only `predict` scores, so it runs against a
 * remote model; it stops at the query budget. Without image structure (a flat row of
 * features) the squares become runs of adjacent features.
 */
export async function square(model: Model, x: Samples, y: Int32Array, opts: SquareOptions): Promise<EvasionResult> {
  const r = resolveCommon('Square', model, x, y, opts);
  const budget = budgetOption('Square', opts.budget ?? 1000);
  const pInit = opts.pInit ?? (sampleSize(x) <= 1000 ? 0.3 : r.norm === 'linf' ? 0.05 : 0.1);
  if (!(pInit > 0 && pInit <= 1)) throw new BulwarkError('E_USAGE', `Square: pInit must be in (0, 1], not ${pInit}`);
  const t0 = performance.now();
  const n = x.shape[0];
  const d = sampleSize(x);
  const geo = geometryOf(x.shape.slice(1));
  const rng = new Rng(r.seed);
  const progress = r.progress ?? silentProgress;
  const target = (i: number): number => (r.targets ? r.targets[i] : -1);

  const best = copySamples(x);
  const queries = new Int32Array(n);
  const margin = new Float64Array(n);
  const clean = await predictScores(model, x, range(n), r.batchSize, queries);
  const cleanPredicted = Int32Array.from(clean.labels);
  const predicted = Int32Array.from(clean.labels);
  const done = Array.from({ length: n }, (_, i) => reached(predicted[i], y[i], target(i)));

  // Initialisation: vertical stripes (L∞) or a grid of bumps (L2) at full size eps.
  let todo = range(n).filter((i) => !done[i] && queries[i] < budget);
  const delta = new Float64Array(d);
  for (const i of todo) {
    if (r.norm === 'linf') initStripes(rng, geo, r.eps, delta);
    else initBumps(rng, geo, r.eps, delta);
    storeProjected(best.data, x.data, i * d, delta, r.eps, r.norm, r.clip);
  }
  if (todo.length > 0) {
    const s = await predictScores(model, pickRows(best, todo), todo, r.batchSize, queries);
    todo.forEach((i, a) => {
      margin[i] = scoreMargin(s.probs, a, y[i], target(i));
      predicted[i] = s.labels[a];
      done[i] = reached(predicted[i], y[i], target(i));
    });
  }

  progress.start('Square', budget);
  const candidate = new Float32Array(n * d);
  for (let it = 0; ; it++) {
    todo = range(n).filter((i) => !done[i] && queries[i] < budget);
    if (todo.length === 0) break;
    const p = pSelection(pInit, it, budget);
    for (const i of todo) {
      if (r.norm === 'linf') squareStepLinf(rng, geo, x.data, best.data, i * d, r.eps, r.clip, p, delta);
      else squareStepL2(rng, geo, x.data, best.data, i * d, r.eps, p, delta);
      storeProjected(candidate, x.data, i * d, delta, r.eps, r.norm, r.clip);
    }
    const s = await predictScores(model, pickRows({ data: candidate, shape: x.shape }, todo), todo, r.batchSize, queries);
    todo.forEach((i, a) => {
      const m = scoreMargin(s.probs, a, y[i], target(i));
      if (m < margin[i]) {
        margin[i] = m;
        best.data.set(candidate.subarray(i * d, (i + 1) * d), i * d);
        predicted[i] = s.labels[a];
        done[i] = reached(predicted[i], y[i], target(i));
      }
    });
    progress.advance(1, `${todo.length} left`);
  }
  progress.done();

  const norms = new Float64Array(n);
  for (let i = 0; i < n; i++) norms[i] = rowNorm(best.data, x.data, i * d, d, r.norm);
  return {
    attack: 'square',
    norm: r.norm,
    eps: r.eps,
    targeted: r.targets !== null,
    adversarial: best,
    success: done,
    cleanPredicted,
    predicted,
    norms,
    queries,
    seconds: (performance.now() - t0) / 1000,
  };
}

/** The paper's schedule: the square shrinks by half at fixed fractions of the budget. */
export function pSelection(pInit: number, it: number, budget: number): number {
  const i = Math.floor((it / budget) * 10000);
  const cuts = [10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000];
  let p = pInit;
  for (const c of cuts) if (i > c) p /= 2;
  return p;
}

function initStripes(rng: Rng, g: Geometry, eps: number, delta: Float64Array): void {
  // One sign per column and channel: vertical stripes, which the paper found best.
  for (let w = 0; w < g.w; w++) {
    for (let c = 0; c < g.c; c++) {
      const v = rng.next() < 0.5 ? -eps : eps;
      for (let h = 0; h < g.h; h++) delta[(h * g.w + w) * g.c + c] = v;
    }
  }
}

function initBumps(rng: Rng, g: Geometry, eps: number, delta: Float64Array): void {
  delta.fill(0);
  const sh = Math.max(1, Math.floor(g.h / 5));
  const sw = Math.max(1, Math.floor(g.w / 5));
  const rows = Math.floor(g.h / sh);
  const cols = Math.floor(g.w / sw);
  const h0 = Math.floor((g.h - sh * rows) / 2);
  const w0 = Math.floor((g.w - sw * cols) / 2);
  for (let a = 0; a < rows; a++) {
    for (let b = 0; b < cols; b++) {
      const bump = metaPseudoGaussian(rng, sh, sw);
      for (let c = 0; c < g.c; c++) {
        const sign = rng.next() < 0.5 ? -1 : 1;
        for (let u = 0; u < sh; u++) for (let v = 0; v < sw; v++) delta[((h0 + a * sh + u) * g.w + w0 + b * sw + v) * g.c + c] += sign * bump[u * sw + v];
      }
    }
  }
  scaleTo(delta, eps);
}

/** Side lengths of the square (or of the run of features, for flat inputs) at share p. */
function windowSize(g: Geometry, p: number, min: number): [number, number] {
  if (g.h === 1) return [1, Math.max(1, Math.min(g.w - 1, Math.max(min, Math.round(p * g.w))))];
  const s = Math.round(Math.sqrt(p * g.h * g.w));
  const side = Math.max(1, Math.min(Math.min(g.h, g.w) - 1, Math.max(min, s)));
  return [side, side];
}

function squareStepLinf(rng: Rng, g: Geometry, x: Float32Array, best: Float32Array, start: number, eps: number, clip: ClipRange, p: number, delta: Float64Array): void {
  const d = delta.length;
  for (let j = 0; j < d; j++) delta[j] = best[start + j] - x[start + j];
  const [sh, sw] = windowSize(g, p, 1);
  const h0 = rng.int(Math.max(1, g.h - sh));
  const w0 = rng.int(Math.max(1, g.w - sw));
  // Re-draw a few times when the new square would change nothing (it already sits there).
  for (let tries = 0; tries < 10; tries++) {
    let changed = false;
    for (let c = 0; c < g.c; c++) {
      const v = rng.next() < 0.5 ? -eps : eps;
      for (let u = 0; u < sh; u++) {
        for (let w = 0; w < sw; w++) {
          const j = ((h0 + u) * g.w + w0 + w) * g.c + c;
          delta[j] = v;
          let nv = x[start + j] + v;
          if (clip !== null) nv = Math.max(clip[0], Math.min(clip[1], nv));
          if (Math.abs(nv - best[start + j]) > 1e-7) changed = true;
        }
      }
    }
    if (changed) break;
  }
}

function squareStepL2(rng: Rng, g: Geometry, x: Float32Array, best: Float32Array, start: number, eps: number, p: number, delta: Float64Array): void {
  const d = delta.length;
  for (let j = 0; j < d; j++) delta[j] = best[start + j] - x[start + j];
  let [sh, sw] = windowSize(g, p, 3);
  if (g.h > 1 && sh % 2 === 0 && sh + 1 < Math.min(g.h, g.w)) sh = sw = sh + 1;
  const a1 = rng.int(Math.max(1, g.h - sh));
  const b1 = rng.int(Math.max(1, g.w - sw));
  const a2 = rng.int(Math.max(1, g.h - sh));
  const b2 = rng.int(Math.max(1, g.w - sw));
  const inW1 = (h: number, w: number) => h >= a1 && h < a1 + sh && w >= b1 && w < b1 + sw;
  const inW2 = (h: number, w: number) => h >= a2 && h < a2 + sh && w >= b2 && w < b2 + sw;
  let imageSq = 0;
  for (let j = 0; j < d; j++) imageSq += delta[j] * delta[j];
  const bump = metaPseudoGaussian(rng, sh, sw);
  const fresh = new Float64Array(sh * sw);
  for (let c = 0; c < g.c; c++) {
    // Mass taken from both windows is moved into window 1, plus what the budget has left.
    let w1Sq = 0;
    let bothSq = 0;
    for (let h = 0; h < g.h; h++) {
      for (let w = 0; w < g.w; w++) {
        const v = delta[(h * g.w + w) * g.c + c];
        if (inW1(h, w)) w1Sq += v * v;
        if (inW1(h, w) || inW2(h, w)) bothSq += v * v;
      }
    }
    const sign = rng.next() < 0.5 ? -1 : 1;
    let freshSq = 0;
    for (let u = 0; u < sh; u++) {
      for (let v = 0; v < sw; v++) {
        const old = delta[((a1 + u) * g.w + b1 + v) * g.c + c] / (1e-10 + Math.sqrt(w1Sq));
        fresh[u * sw + v] = sign * bump[u * sw + v] + old;
        freshSq += fresh[u * sw + v] ** 2;
      }
    }
    const target = Math.sqrt(Math.max(eps * eps - imageSq, 0) / g.c + bothSq);
    const scale = freshSq > 0 ? target / Math.sqrt(freshSq) : 0;
    for (let u = 0; u < sh; u++) for (let v = 0; v < sw; v++) delta[((a2 + u) * g.w + b2 + v) * g.c + c] = 0;
    for (let u = 0; u < sh; u++) for (let v = 0; v < sw; v++) delta[((a1 + u) * g.w + b1 + v) * g.c + c] = fresh[u * sw + v] * scale;
  }
  scaleTo(delta, eps);
}

function scaleTo(delta: Float64Array, eps: number): void {
  let s = 0;
  for (const v of delta) s += v * v;
  const len = Math.sqrt(s);
  if (len > 0) for (let j = 0; j < delta.length; j++) delta[j] *= eps / len;
}

/** Concentric rectangles weighted 1/k², unit L2 norm (the paper's pseudo-Gaussian bump). */
function pseudoGaussian(h: number, w: number): Float64Array {
  const out = new Float64Array(h * w);
  if (h === 0 || w === 0) return out;
  const ch = Math.floor(h / 2) + 1;
  const cw = Math.floor(w / 2) + 1;
  let r0 = ch - 1;
  let c0 = cw - 1;
  for (let k = 0; k < Math.max(ch, cw); k++) {
    for (let u = Math.max(r0, 0); u < Math.min(r0 + 2 * k + 1, h); u++) {
      for (let v = Math.max(c0, 0); v < Math.min(c0 + 2 * k + 1, w); v++) out[u * w + v] += 1 / (k + 1) ** 2;
    }
    r0--;
    c0--;
  }
  scaleTo(out, 1);
  return out;
}

/** Two pseudo-Gaussian halves of opposite sign, split along a random axis of a square. */
function metaPseudoGaussian(rng: Rng, h: number, w: number): Float64Array {
  const out = new Float64Array(h * w);
  const transpose = h === w && rng.next() > 0.5;
  if (h >= 2) {
    const top = pseudoGaussian(Math.floor(h / 2), w);
    const bottom = pseudoGaussian(h - Math.floor(h / 2), w);
    const split = Math.floor(h / 2) * w;
    out.set(top, 0);
    for (let j = 0; j < bottom.length; j++) out[split + j] = -bottom[j];
  } else {
    const half = Math.floor(w / 2);
    const left = pseudoGaussian(1, half);
    const right = pseudoGaussian(1, w - half);
    for (let v = 0; v < half; v++) out[v] = left[v];
    for (let v = half; v < w; v++) out[v] = -right[v - half];
  }
  scaleTo(out, 1);
  if (!transpose) return out;
  const t = new Float64Array(h * w);
  for (let u = 0; u < h; u++) for (let v = 0; v < w; v++) t[v * h + u] = out[u * w + v];
  return t;
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}
