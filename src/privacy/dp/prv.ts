import { BulwarkError } from '../../core/index.js';
import { fft } from './fft.js';
import { rdpEpsilon, type MechanismStep } from './rdp.js';
import { normalCdf, normalSf } from '../../core/special.js';

/**
 * The privacy random variable (PRV) accountant of Gopi, Lee and Wutschitz (2021), "Numerical
 * Composition of Differential Privacy", as Opacus implements it: discretise each step's
 * privacy loss on a fine grid (mean-preserving), compose all steps with one FFT power,
 * and read ε off the composed distribution. The answer is an upper bound within `epsError`
 * of the exact ε (given δ − `deltaError`), which is tighter than RDP's conversion.
 *
 * The privacy loss is that of removing one example under Poisson sampling:
 * Y = log(P(x)/Q(x)) for x ~ P, P = (1 − q)·N(0, σ²) + q·N(1, σ²), Q = N(0, σ²).
 */

export interface PrvOptions {
  /** Allowed error in ε (default 0.01, Opacus's default). */
  epsError?: number;
  /** Allowed error in δ (default δ/1000, Opacus's default). */
  deltaError?: number;
}

export interface PrvEpsilon {
  /** The guarantee: ε such that the history is (ε, δ)-DP. */
  epsilon: number;
  /** A lower bound (the exact ε is at least this). */
  lower: number;
  /** The point estimate. */
  estimate: number;
  epsError: number;
  deltaError: number;
  /** Grid points and spacing of the discretisation. */
  gridSize: number;
  mesh: number;
}

/** Grids larger than this would need gigabytes; RDP is the answer there. */
const MAX_GRID = 1 << 24;

class SubsampledGaussianLoss {
  private readonly logQ: number;
  /** The smallest value the loss takes (log(1 − q)); −∞ without subsampling. */
  readonly floor: number;
  constructor(
    readonly q: number,
    readonly sigma: number,
  ) {
    this.logQ = Math.log(q);
    this.floor = q === 1 ? -Infinity : Math.log1p(-q);
  }

  /** The x at which the loss equals t (the loss is increasing in x). */
  threshold(t: number): number {
    // z = log((e^t − (1 − q))/q), written to keep its digits when t is near log(1 − q).
    const z = this.q === 1 ? t : Math.log(Math.expm1(t) + this.q) - this.logQ;
    return this.sigma * this.sigma * z + 0.5;
  }

  /** P(Y ≤ t), accurate in the lower tail. */
  cdf(t: number): number {
    if (t <= this.floor) return 0;
    if (t === Infinity) return 1;
    const a = this.threshold(t);
    return this.q * normalCdf((a - 1) / this.sigma) + (1 - this.q) * normalCdf(a / this.sigma);
  }

  /** P(Y > t), accurate in the upper tail. */
  sf(t: number): number {
    if (t <= this.floor) return 1;
    if (t === Infinity) return 0;
    const a = this.threshold(t);
    return this.q * normalSf((a - 1) / this.sigma) + (1 - this.q) * normalSf(a / this.sigma);
  }

  /** The loss at x. */
  private loss(x: number): number {
    const u = (2 * x - 1) / (2 * this.sigma * this.sigma);
    if (this.q === 1) return u;
    return u > 0 ? u + Math.log(this.q + (1 - this.q) * Math.exp(-u)) : Math.log1p(this.q * Math.expm1(u));
  }

  private density(x: number): number {
    const s = this.sigma;
    const c = 1 / (s * Math.sqrt(2 * Math.PI));
    return c * (this.q * Math.exp(-0.5 * ((x - 1) / s) ** 2) + (1 - this.q) * Math.exp(-0.5 * (x / s) ** 2));
  }

  /** E[Y · 1{lo < Y ≤ hi}], integrated over x (Gauss–Legendre panels). */
  partialMean(lo: number, hi: number): number {
    const s = this.sigma;
    const xLo = Math.max(lo <= this.floor ? -Infinity : this.threshold(lo), -40 * s);
    const xHi = Math.min(this.threshold(hi), 1 + 40 * s);
    if (!(xHi > xLo)) return 0;
    const panels = Math.max(64, Math.ceil((xHi - xLo) / (s / 32)));
    const w = (xHi - xLo) / panels;
    let sum = 0;
    for (let p = 0; p < panels; p++) {
      const mid = xLo + (p + 0.5) * w;
      for (let k = 0; k < GL_NODES.length; k++) {
        const x = mid + 0.5 * w * GL_NODES[k];
        sum += GL_WEIGHTS[k] * this.loss(x) * this.density(x);
      }
    }
    return 0.5 * w * sum;
  }
}

// 8-point Gauss–Legendre nodes and weights on [−1, 1].
const GL_NODES = [-0.9602898564975363, -0.7966664774136267, -0.525532409916329, -0.1834346424956498, 0.1834346424956498, 0.525532409916329, 0.7966664774136267, 0.9602898564975363];
const GL_WEIGHTS = [0.1012285362903763, 0.2223810344533745, 0.3137066458778873, 0.362683783378362, 0.362683783378362, 0.3137066458778873, 0.2223810344533745, 0.1012285362903763];

/** The composed privacy-loss distribution on a grid: mass[i] at value (i − size/2)·mesh + shift. */
interface Composed {
  mass: Float64Array;
  mesh: number;
  shift: number;
}

function compose(history: readonly MechanismStep[], epsError: number, deltaError: number): Composed {
  const steps = history.reduce((s, h) => s + h.steps, 0);
  // Domain and mesh as Opacus chooses them (Gopi et al., remark 5.6 and theorem 5.5).
  let L = rdpEpsilon(history, deltaError / 4).epsilon;
  for (const h of history) {
    L = Math.max(L, rdpEpsilon([{ ...h, steps: 1 }], deltaError / (8 * steps)).epsilon);
  }
  L = Math.max(L, epsError) + 3;
  const mesh = epsError / Math.sqrt((steps * Math.log(12 / deltaError)) / 2);
  let size = 2;
  while (size * mesh < 2 * L + 2 * mesh) size *= 2;
  if (size > MAX_GRID) {
    throw new BulwarkError(
      'E_USAGE',
      `the PRV accountant would need a grid of ${size} points for ${steps} steps at ε error ${epsError}; use the RDP accountant or allow a larger ε error`,
    );
  }
  const c = size / 2;
  const re = new Float64Array(size);
  const im = new Float64Array(size);
  const accRe = new Float64Array(size).fill(1);
  const accIm = new Float64Array(size);
  let shift = 0;
  for (const h of history) {
    if (h.steps === 0) continue;
    const loss = new SubsampledGaussianLoss(h.sampleRate, h.noiseMultiplier);
    const lo = -c * mesh - mesh / 2;
    const hi = (c - 1) * mesh + mesh / 2;
    // Cell masses from the CDF at the cell edges, truncated to the grid and renormalised.
    // Below the median differences of the CDF keep their digits, above it those of the
    // survival function; each edge needs only the one it is on the side of.
    const inside = 1 - loss.cdf(lo) - loss.sf(hi);
    let upper = loss.cdf(lo) >= 0.5;
    let prevCdf = upper ? NaN : loss.cdf(lo);
    let prevSf = upper ? loss.sf(lo) : NaN;
    let meanDiscrete = 0;
    re.fill(0);
    im.fill(0);
    for (let j = 0; j < size; j++) {
      const right = (j - c) * mesh + mesh / 2;
      if (right <= loss.floor) continue;
      let m: number;
      if (!upper) {
        const cdf = loss.cdf(right);
        if (cdf < 0.5) {
          m = cdf - prevCdf;
          prevCdf = cdf;
        } else {
          upper = true;
          const sf = loss.sf(right);
          m = 1 - prevCdf - sf;
          prevSf = sf;
        }
      } else {
        const sf = loss.sf(right);
        m = prevSf - sf;
        prevSf = sf;
        if (sf === 0 && m === 0) break;
      }
      m /= inside;
      if (m <= 0) continue;
      meanDiscrete += (j - c) * mesh * m;
      // Stored at index (offset mod size), so sums of offsets land where circular convolution puts them.
      re[(j - c + size) % size] = m;
    }
    const meanContinuous = loss.partialMean(lo, hi) / inside;
    const s = meanContinuous - meanDiscrete;
    if (!(Math.abs(s) < mesh / 2)) {
      throw new BulwarkError('E_USAGE', `the PRV discretisation lost the mean of the privacy loss (q=${h.sampleRate}, σ=${h.noiseMultiplier}); use the RDP accountant for these parameters`);
    }
    shift += s * h.steps;
    fft(re, im);
    // The input is real, so the spectrum is Hermitian: raise one half, mirror the other.
    for (let k = 0; k <= c; k++) {
      const r = Math.hypot(re[k], im[k]);
      const rt = Math.pow(r, h.steps);
      let pr = 0;
      let pi = 0;
      if (rt > 0) {
        const th = Math.atan2(im[k], re[k]) * h.steps;
        pr = rt * Math.cos(th);
        pi = rt * Math.sin(th);
      }
      const ar = accRe[k];
      accRe[k] = ar * pr - accIm[k] * pi;
      accIm[k] = ar * pi + accIm[k] * pr;
      if (k > 0 && k < c) {
        accRe[size - k] = accRe[k];
        accIm[size - k] = -accIm[k];
      }
    }
  }
  fft(accRe, accIm, true);
  const mass = new Float64Array(size);
  for (let i = 0; i < size; i++) mass[i] = accRe[(i - c + size) % size] / size;
  return { mass, mesh, shift };
}

/** ε at which the composed distribution gives exactly δ (the hockey-stick divergence). */
function epsilonAt(d: Composed, delta: number): number {
  const { mass, mesh, shift } = d;
  const size = mass.length;
  const c = size / 2;
  // From the top: d1 = P(Y ≥ t_i), d2 = E[e^{−Y}; Y ≥ t_i]; δ(t_i) = d1 − e^{t_i}·d2.
  let d1 = 0;
  let d2 = 0;
  for (let i = size - 1; i >= 0; i--) {
    const t = (i - c) * mesh + shift;
    const n1 = d1 + mass[i];
    const n2 = d2 + mass[i] * Math.exp(-t);
    if (n1 - Math.exp(t) * n2 > delta) {
      // ε lies in (t_i, t_{i+1}], where the mass above it is exactly {k > i}.
      if (d2 <= 0) return t + mesh;
      return Math.log((d1 - delta) / d2);
    }
    d1 = n1;
    d2 = n2;
  }
  return -Infinity;
}

export function prvEpsilon(history: readonly MechanismStep[], delta: number, opts: PrvOptions = {}): PrvEpsilon {
  const epsError = opts.epsError ?? 0.01;
  const deltaError = opts.deltaError ?? delta / 1000;
  if (!(epsError > 0)) throw new BulwarkError('E_USAGE', `the PRV ε error must be positive, got ${epsError}`);
  if (!(deltaError > 0 && deltaError < delta)) throw new BulwarkError('E_USAGE', `the PRV δ error must be in (0, δ), got ${deltaError}`);
  const active = history.filter((h) => h.steps > 0 && h.sampleRate > 0);
  if (active.length === 0) return { epsilon: 0, lower: 0, estimate: 0, epsError, deltaError, gridSize: 0, mesh: 0 };
  if (active.some((h) => h.noiseMultiplier === 0)) return { epsilon: Infinity, lower: Infinity, estimate: Infinity, epsError, deltaError, gridSize: 0, mesh: 0 };
  const d = compose(active, epsError, deltaError);
  if (Number.EPSILON * d.mass.length > delta - deltaError) {
    throw new BulwarkError('E_USAGE', `δ = ${delta} is too small for the PRV accountant's floating-point precision; use the RDP accountant`);
  }
  const upper = epsilonAt(d, delta - deltaError) + epsError;
  const lower = epsilonAt(d, delta + deltaError) - epsError;
  const estimate = epsilonAt(d, delta);
  return { epsilon: Math.max(0, upper), lower: Math.max(0, lower), estimate: Math.max(0, estimate), epsError, deltaError, gridSize: d.mass.length, mesh: d.mesh };
}
