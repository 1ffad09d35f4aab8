import { BulwarkError, logGamma } from '../../core/index.js';

/**
 * How well membership scores separate members from non-members: the ROC curve, its area,
 * the true-positive rate at low false-positive rates (what Carlini et al. 2022 argue
 * matters: confidently identifying a few members), and the ε that any (ε, δ)-DP training
 * would have to exceed for an attack this good to exist.
 */

export interface MembershipMetrics {
  auc: number;
  /** TPR at FPR ≤ 0.1% and ≤ 1%. */
  tprAt0_1Fpr: number;
  tprAt1Fpr: number;
  /** Largest TPR − FPR over thresholds (the membership advantage). */
  advantage: number;
  /** ROC points [fpr, tpr], thinned for a chart (log-spaced at low FPR). */
  roc: [number, number][];
  /**
   * Lower bound on ε implied by the attack at δ, from Clopper–Pearson bounds on each
   * threshold's error rates at `confidence` (Jagielski et al. 2020). 0 when the attack is
   * no better than guessing.
   */
  empiricalEpsilon: number;
  empiricalDelta: number;
  confidence: number;
  members: number;
  nonMembers: number;
}

export interface MetricsOptions {
  delta?: number;
  /** Confidence of the Clopper–Pearson bounds (default 0.95). */
  confidence?: number;
}

/** The full ROC: counts of true and false positives at each distinct threshold, scores high = member. */
export function rocCounts(scores: ArrayLike<number>, isMember: ArrayLike<number | boolean>): { tp: Int32Array; fp: Int32Array; pos: number; neg: number } {
  const n = scores.length;
  if (isMember.length !== n) throw new BulwarkError('E_DATA_SHAPE', `${n} scores but ${isMember.length} membership labels`);
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scoreOf(scores, b) - scoreOf(scores, a));
  let pos = 0;
  for (let i = 0; i < n; i++) if (isMember[i]) pos++;
  const neg = n - pos;
  const tp: number[] = [0];
  const fp: number[] = [0];
  let t = 0;
  let f = 0;
  for (let i = 0; i < n; i++) {
    if (isMember[order[i]]) t++;
    else f++;
    // Tied scores are one threshold: emit a point only where the score changes.
    if (i === n - 1 || scoreOf(scores, order[i + 1]) !== scoreOf(scores, order[i])) {
      tp.push(t);
      fp.push(f);
    }
  }
  return { tp: Int32Array.from(tp), fp: Int32Array.from(fp), pos, neg };
}

/** NaN scores rank last (an attack that cannot score an example claims nothing about it). */
function scoreOf(scores: ArrayLike<number>, i: number): number {
  const s = scores[i];
  return Number.isNaN(s) ? -Infinity : s;
}

export function membershipMetrics(scores: ArrayLike<number>, isMember: ArrayLike<number | boolean>, opts: MetricsOptions = {}): MembershipMetrics {
  const delta = opts.delta ?? 1e-5;
  const confidence = opts.confidence ?? 0.95;
  const { tp, fp, pos, neg } = rocCounts(scores, isMember);
  if (pos === 0 || neg === 0) throw new BulwarkError('E_DATA_SHAPE', `membership metrics need both members and non-members (got ${pos} and ${neg})`);
  let auc = 0;
  let advantage = 0;
  let tpr01 = 0;
  let tpr1 = 0;
  for (let i = 1; i < tp.length; i++) {
    const x0 = fp[i - 1] / neg;
    const x1 = fp[i] / neg;
    const y0 = tp[i - 1] / pos;
    const y1 = tp[i] / pos;
    auc += ((x1 - x0) * (y0 + y1)) / 2;
    advantage = Math.max(advantage, y1 - x1);
    if (x1 <= 0.001) tpr01 = Math.max(tpr01, y1);
    if (x1 <= 0.01) tpr1 = Math.max(tpr1, y1);
  }
  return {
    auc,
    tprAt0_1Fpr: tpr01,
    tprAt1Fpr: tpr1,
    advantage,
    roc: thin(tp, fp, pos, neg),
    empiricalEpsilon: empiricalEpsilon(tp, fp, pos, neg, delta, confidence),
    empiricalDelta: delta,
    confidence,
    members: pos,
    nonMembers: neg,
  };
}

/** At most ~150 points: every point below 1% FPR that changes the curve, then an even grid. */
function thin(tp: Int32Array, fp: Int32Array, pos: number, neg: number): [number, number][] {
  const out: [number, number][] = [];
  let lastX = -1;
  let lastY = -1;
  for (let i = 0; i < tp.length; i++) {
    const x = fp[i] / neg;
    const y = tp[i] / pos;
    const keep = i === 0 || i === tp.length - 1 || (x <= 0.01 ? y !== lastY && out.length < 50 : x - lastX >= 0.01 || y - lastY >= 0.01);
    if (keep) {
      out.push([round(x), round(y)]);
      lastX = x;
      lastY = y;
    }
  }
  return out;
}

const round = (v: number) => Math.round(v * 1e5) / 1e5;

function empiricalEpsilon(tp: Int32Array, fp: Int32Array, pos: number, neg: number, delta: number, confidence: number): number {
  const alpha = 1 - confidence;
  const fprHi = new Map<number, number>();
  const fnrHi = new Map<number, number>();
  const upper = (cache: Map<number, number>, k: number, n: number) => {
    let v = cache.get(k);
    if (v === undefined) {
      v = clopperPearsonUpper(k, n, alpha);
      cache.set(k, v);
    }
    return v;
  };
  let best = 0;
  for (let i = 0; i < tp.length; i++) {
    // A test with false-positive rate a and false-negative rate b against an (ε, δ)-DP
    // mechanism must have a + e^ε·b ≥ 1 − δ and e^ε·a + b ≥ 1 − δ (Kairouz et al. 2015).
    const a = upper(fprHi, fp[i], neg);
    const b = upper(fnrHi, pos - tp[i], pos);
    if (b > 0 && 1 - delta - a > 0) best = Math.max(best, Math.log((1 - delta - a) / b));
    if (a > 0 && 1 - delta - b > 0) best = Math.max(best, Math.log((1 - delta - b) / a));
  }
  return best;
}

/** One-sided upper confidence bound for a binomial proportion with k successes of n. */
export function clopperPearsonUpper(k: number, n: number, alpha: number): number {
  if (k >= n) return 1;
  // The p with P(Bin(n, p) ≤ k) = α, i.e. the (1 − α) quantile of Beta(k + 1, n − k).
  let lo = k / n;
  let hi = 1;
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    if (regularizedBeta(mid, k + 1, n - k) < 1 - alpha) lo = mid;
    else hi = mid;
  }
  return hi;
}

/** I_x(a, b), the regularized incomplete beta function (continued fraction, Numerical Recipes §6.4). */
export function regularizedBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log1p(-x));
  if (x < (a + 1) / (a + b + 2)) return (front * betaFraction(x, a, b)) / a;
  return 1 - (front * betaFraction(1 - x, b, a)) / b;
}

function betaFraction(x: number, a: number, b: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  d = Math.abs(d) < tiny ? tiny : d;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 1000; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((a - 1 + m2) * (a + m2));
    d = 1 + aa * d;
    d = Math.abs(d) < tiny ? tiny : d;
    c = 1 + aa / c;
    c = Math.abs(c) < tiny ? tiny : c;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + 1 + m2));
    d = 1 + aa * d;
    d = Math.abs(d) < tiny ? tiny : d;
    c = 1 + aa / c;
    c = Math.abs(c) < tiny ? tiny : c;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-15) break;
  }
  return h;
}
