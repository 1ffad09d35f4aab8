import { logAdd, logErfc, logSub } from '../../core/special.js';

/**
 * Rényi-DP accounting for the Poisson-subsampled Gaussian mechanism (Mironov, Talwar and
 * Zhang 2019, "Rényi Differential Privacy of the Sampled Gaussian Mechanism"), with the
 * orders and the RDP → (ε, δ) conversion Opacus uses (Balle et al. 2020, Theorem 21), so
 * that the two agree to rounding.
 */

/** Opacus's DEFAULT_ALPHAS: 1.1, 1.2, …, 10.9, then 12 … 63. */
export const DEFAULT_RDP_ORDERS: readonly number[] = [
  ...Array.from({ length: 99 }, (_, i) => 1 + (i + 1) / 10.0),
  ...Array.from({ length: 52 }, (_, i) => 12 + i),
];

/** One stretch of training: `steps` steps at the same sample rate and noise multiplier. */
export interface MechanismStep {
  sampleRate: number;
  noiseMultiplier: number;
  steps: number;
}

function logAForIntegerOrder(q: number, sigma: number, alpha: number): number {
  let logA = -Infinity;
  let logBinom = 0; // log C(alpha, i), built up term by term
  for (let i = 0; i <= alpha; i++) {
    if (i > 0) logBinom += Math.log(alpha - i + 1) - Math.log(i);
    const s = logBinom + i * Math.log(q) + (alpha - i) * Math.log1p(-q) + (i * i - i) / (2 * sigma * sigma);
    logA = logAdd(logA, s);
  }
  return logA;
}

function logAForFractionalOrder(q: number, sigma: number, alpha: number): number {
  let logA0 = -Infinity;
  let logA1 = -Infinity;
  const z0 = sigma * sigma * Math.log(1 / q - 1) + 0.5;
  let coef = 1; // C(alpha, i) for real alpha, by the product recurrence
  for (let i = 0; ; i++) {
    if (i > 0) coef *= (alpha - i + 1) / i;
    const logCoef = Math.log(Math.abs(coef));
    const j = alpha - i;
    const logT0 = logCoef + i * Math.log(q) + j * Math.log1p(-q);
    const logT1 = logCoef + j * Math.log(q) + i * Math.log1p(-q);
    const logE0 = Math.log(0.5) + logErfc((i - z0) / (Math.SQRT2 * sigma));
    const logE1 = Math.log(0.5) + logErfc((z0 - j) / (Math.SQRT2 * sigma));
    const logS0 = logT0 + (i * i - i) / (2 * sigma * sigma) + logE0;
    const logS1 = logT1 + (j * j - j) / (2 * sigma * sigma) + logE1;
    if (coef > 0) {
      logA0 = logAdd(logA0, logS0);
      logA1 = logAdd(logA1, logS1);
    } else {
      logA0 = logSub(logA0, logS0);
      logA1 = logSub(logA1, logS1);
    }
    if (Math.max(logS0, logS1) < -30 || i > 10_000) break;
  }
  return logAdd(logA0, logA1);
}

/** RDP of one step of the subsampled Gaussian at order `alpha`. */
export function rdpOneStep(q: number, sigma: number, alpha: number): number {
  if (q === 0) return 0;
  if (sigma === 0) return Infinity;
  if (q === 1) return alpha / (2 * sigma * sigma);
  if (!Number.isFinite(alpha)) return Infinity;
  const logA = Number.isInteger(alpha) ? logAForIntegerOrder(q, sigma, alpha) : logAForFractionalOrder(q, sigma, alpha);
  return logA / (alpha - 1);
}

/** RDP of a whole history at each order (composition adds RDP). */
export function computeRdp(history: readonly MechanismStep[], orders: readonly number[] = DEFAULT_RDP_ORDERS): Float64Array {
  const rdp = new Float64Array(orders.length);
  for (const h of history) {
    if (h.steps === 0) continue;
    orders.forEach((a, i) => {
      rdp[i] += rdpOneStep(h.sampleRate, h.noiseMultiplier, a) * h.steps;
    });
  }
  return rdp;
}

/**
 * The smallest ε over the orders at which the RDP curve guarantees (ε, δ)-DP, with the
 * conversion ε = rdp − (log δ + log α)/(α − 1) + log((α − 1)/α).
 */
export function rdpToEpsilon(rdp: ArrayLike<number>, delta: number, orders: readonly number[] = DEFAULT_RDP_ORDERS): { epsilon: number; order: number } {
  let best = Infinity;
  let bestOrder = NaN;
  for (let i = 0; i < orders.length; i++) {
    const a = orders[i];
    const eps = rdp[i] - (Math.log(delta) + Math.log(a)) / (a - 1) + Math.log((a - 1) / a);
    if (Number.isFinite(eps) && eps < best) {
      best = eps;
      bestOrder = a;
    }
  }
  return { epsilon: best, order: bestOrder };
}

export function rdpEpsilon(history: readonly MechanismStep[], delta: number, orders: readonly number[] = DEFAULT_RDP_ORDERS): { epsilon: number; order: number } {
  return rdpToEpsilon(computeRdp(history, orders), delta, orders);
}
