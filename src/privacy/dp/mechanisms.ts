import { BulwarkError } from '../../core/index.js';
import { checkDelta } from './accountant.js';
import { seededNoise, type NoiseSource } from './noise.js';
import { logNormalCdf, normalCdf } from '../../core/special.js';

/**
 * Mechanisms for releasing numbers (statistics, model outputs) with differential privacy.
 * Each takes the values, the sensitivity (how much one person can move them) and the
 * budget, and returns the noisy values with the guarantee they carry.
 *
 * Noise is seeded by default so a run repeats; pass `noise: secureNoise()` for a release
 * an adversary must not be able to reproduce. Floating-point Laplace noise leaks through
 * its low bits (Mironov 2012); these mechanisms suit model outputs and reports, not a
 * hostile setting where the raw doubles are published.
 */

export interface Release {
  mechanism: 'laplace' | 'gaussian';
  values: Float64Array;
  epsilon: number;
  delta: number;
  /** Laplace: the scale b; Gaussian: the standard deviation σ. */
  scale: number;
  sensitivity: number;
  noise: 'seeded' | 'secure';
}

export interface LaplaceOptions {
  /** L1 sensitivity of the whole vector of values. */
  sensitivity: number;
  epsilon: number;
  noise?: NoiseSource;
  seed?: number;
}

export interface GaussianOptions {
  /** L2 sensitivity of the whole vector of values. */
  sensitivity: number;
  epsilon: number;
  delta: number;
  noise?: NoiseSource;
  seed?: number;
}

function positive(name: string, v: number): void {
  if (!(v > 0) || !Number.isFinite(v)) throw new BulwarkError('E_USAGE', `${name} must be a positive number, got ${v}`);
}

/** Adds Laplace(sensitivity/ε) noise to each value: ε-DP (δ = 0). */
export function laplaceMechanism(values: ArrayLike<number>, o: LaplaceOptions): Release {
  positive('sensitivity', o.sensitivity);
  positive('ε', o.epsilon);
  const noise = o.noise ?? seededNoise(o.seed ?? 42);
  const b = o.sensitivity / o.epsilon;
  const out = Float64Array.from(values as ArrayLike<number>);
  for (let i = 0; i < out.length; i++) {
    const u = noise.uniform() - 0.5;
    out[i] -= b * Math.sign(u) * Math.log1p(-2 * Math.abs(u));
  }
  return { mechanism: 'laplace', values: out, epsilon: o.epsilon, delta: 0, scale: b, sensitivity: o.sensitivity, noise: noise.kind };
}

/**
 * δ of the Gaussian mechanism with noise σ at ε, exactly (Balle and Wang 2018, theorem 8):
 * δ = Φ(Δ/2σ − εσ/Δ) − e^ε·Φ(−Δ/2σ − εσ/Δ).
 */
export function gaussianDelta(sigma: number, sensitivity: number, epsilon: number): number {
  const a = sensitivity / (2 * sigma);
  const b = (epsilon * sigma) / sensitivity;
  return Math.max(0, normalCdf(a - b) - Math.exp(epsilon + logNormalCdf(-a - b)));
}

/** The smallest σ for which the Gaussian mechanism is (ε, δ)-DP (the analytic calibration, valid for every ε). */
export function gaussianSigma(sensitivity: number, epsilon: number, delta: number): number {
  positive('sensitivity', sensitivity);
  positive('ε', epsilon);
  checkDelta(delta);
  let hi = sensitivity;
  while (gaussianDelta(hi, sensitivity, epsilon) > delta) hi *= 2;
  let lo = hi / 2;
  while (gaussianDelta(lo, sensitivity, epsilon) <= delta && lo > 1e-12) {
    hi = lo;
    lo /= 2;
  }
  for (let i = 0; i < 100 && (hi - lo) / hi > 1e-12; i++) {
    const mid = (lo + hi) / 2;
    if (gaussianDelta(mid, sensitivity, epsilon) <= delta) hi = mid;
    else lo = mid;
  }
  return hi;
}

/** The ε a Gaussian release with noise σ carries at δ. */
export function gaussianEpsilon(sigma: number, sensitivity: number, delta: number): number {
  positive('σ', sigma);
  positive('sensitivity', sensitivity);
  checkDelta(delta);
  if (gaussianDelta(sigma, sensitivity, 0) <= delta) return 0;
  let hi = 1;
  while (gaussianDelta(sigma, sensitivity, hi) > delta) hi *= 2;
  let lo = 0;
  for (let i = 0; i < 200 && hi - lo > 1e-12 * hi; i++) {
    const mid = (lo + hi) / 2;
    if (gaussianDelta(sigma, sensitivity, mid) <= delta) hi = mid;
    else lo = mid;
  }
  return hi;
}

/** Adds N(0, σ²) noise to each value, σ calibrated exactly for (ε, δ). */
export function gaussianMechanism(values: ArrayLike<number>, o: GaussianOptions): Release {
  const sigma = gaussianSigma(o.sensitivity, o.epsilon, o.delta);
  const noise = o.noise ?? seededNoise(o.seed ?? 42);
  const out = Float64Array.from(values as ArrayLike<number>);
  for (let i = 0; i < out.length; i++) out[i] += sigma * noise.normal();
  return { mechanism: 'gaussian', values: out, epsilon: o.epsilon, delta: o.delta, scale: sigma, sensitivity: o.sensitivity, noise: noise.kind };
}
