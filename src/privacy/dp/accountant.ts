import { BulwarkError } from '../../core/index.js';
import { prvEpsilon } from './prv.js';
import { rdpEpsilon, type MechanismStep } from './rdp.js';

export type AccountantKind = 'rdp' | 'prv';
export const ACCOUNTANTS: readonly AccountantKind[] = ['rdp', 'prv'];

export interface EpsilonOptions {
  sampleRate: number;
  noiseMultiplier: number;
  steps: number;
  delta: number;
  /** Default 'prv' (tighter); 'rdp' matches Opacus's RDPAccountant exactly. */
  accountant?: AccountantKind;
  /** PRV only: allowed error in ε (default 0.01). */
  epsError?: number;
}

export interface CalibrateOptions {
  targetEpsilon: number;
  delta: number;
  sampleRate: number;
  steps: number;
  accountant?: AccountantKind;
  epsError?: number;
}

function usage(message: string): never {
  throw new BulwarkError('E_USAGE', message);
}

export function checkDelta(delta: number): void {
  if (!(delta > 0 && delta < 1)) usage(`δ must be in (0, 1), got ${delta}; 1e-5 or below 1/(training set size) is usual`);
}

export function checkSampleRate(q: number): void {
  if (!(q > 0 && q <= 1)) usage(`the sample rate must be in (0, 1] (expected batch size / training set size), got ${q}`);
}

function checkSteps(steps: number): void {
  if (!Number.isInteger(steps) || steps < 0) usage(`steps must be a non-negative integer, got ${steps}`);
}

function checkAccountant(kind: string): asserts kind is AccountantKind {
  if (!(ACCOUNTANTS as readonly string[]).includes(kind)) usage(`unknown accountant '${kind}'; choose one of: ${ACCOUNTANTS.join(', ')}`);
}

function historyEpsilon(history: readonly MechanismStep[], delta: number, kind: AccountantKind, epsError?: number): number {
  if (history.every((h) => h.steps === 0)) return 0;
  return kind === 'rdp' ? rdpEpsilon(history, delta).epsilon : prvEpsilon(history, delta, { epsError }).epsilon;
}

/** ε spent by `steps` steps of the Poisson-subsampled Gaussian mechanism, at δ. */
export function computeEpsilon(o: EpsilonOptions): number {
  const kind = o.accountant ?? 'prv';
  checkAccountant(kind);
  checkSampleRate(o.sampleRate);
  checkDelta(o.delta);
  checkSteps(o.steps);
  if (!(o.noiseMultiplier >= 0) || !Number.isFinite(o.noiseMultiplier)) usage(`the noise multiplier must be a non-negative number, got ${o.noiseMultiplier}`);
  return historyEpsilon([{ sampleRate: o.sampleRate, noiseMultiplier: o.noiseMultiplier, steps: o.steps }], o.delta, kind, o.epsError);
}

/**
 * The smallest noise multiplier σ (to a relative 1e-3) whose ε after `steps` steps is at
 * most `targetEpsilon`. ε falls as σ grows, so a bracketed bisection finds it.
 */
export function calibrateNoise(o: CalibrateOptions): number {
  const kind = o.accountant ?? 'prv';
  checkAccountant(kind);
  if (!(o.targetEpsilon > 0) || !Number.isFinite(o.targetEpsilon)) usage(`the target ε must be a positive number, got ${o.targetEpsilon}`);
  checkSampleRate(o.sampleRate);
  checkDelta(o.delta);
  checkSteps(o.steps);
  if (o.steps === 0) return 0;
  const eps = (sigma: number): number => {
    try {
      return historyEpsilon([{ sampleRate: o.sampleRate, noiseMultiplier: sigma, steps: o.steps }], o.delta, kind, o.epsError);
    } catch (e) {
      // The PRV grid for a tiny σ can be unaffordably large: such a σ is far too small anyway.
      if (e instanceof BulwarkError && sigma < 1) return Infinity;
      throw e;
    }
  };
  // Start from RDP's answer: it is cheap and, for PRV, an upper bound on the σ needed.
  const start = kind === 'prv' ? calibrateNoise({ ...o, accountant: 'rdp' }) : 1;
  let hi = start;
  let fHi = eps(hi) - o.targetEpsilon;
  while (fHi > 0) {
    hi *= 2;
    if (hi > 1e6) usage(`no noise multiplier up to 1e6 reaches ε = ${o.targetEpsilon} at δ = ${o.delta} in ${o.steps} steps; raise ε or δ`);
    fHi = eps(hi) - o.targetEpsilon;
  }
  let lo = hi * 0.75;
  let fLo = eps(lo) - o.targetEpsilon;
  while (fLo <= 0) {
    hi = lo;
    fHi = fLo;
    lo /= 2;
    if (lo < 1e-6) return hi;
    fLo = eps(lo) - o.targetEpsilon;
  }
  // Illinois regula falsi: ε(σ) is smooth, so this needs a handful of (costly, for PRV)
  // evaluations where bisection needs a dozen; hi always satisfies the budget.
  const tolerance = kind === 'prv' ? 1e-3 : 1e-5;
  let side = 0;
  for (let i = 0; i < 100 && (hi - lo) / hi > tolerance; i++) {
    let mid = Number.isFinite(fLo) ? (lo * fHi - hi * fLo) / (fHi - fLo) : (lo + hi) / 2;
    if (!(mid > lo && mid < hi)) mid = (lo + hi) / 2;
    // Keep the new point off the ends so the bracket shrinks on both sides.
    mid = Math.min(Math.max(mid, lo + (hi - lo) * 1e-3), hi - (hi - lo) * 1e-3);
    const f = eps(mid) - o.targetEpsilon;
    if (f <= 0) {
      hi = mid;
      fHi = f;
      if (side === -1) fLo /= 2;
      side = -1;
    } else {
      lo = mid;
      fLo = f;
      if (side === 1) fHi /= 2;
      side = 1;
    }
  }
  return hi;
}

/** The most steps at σ that stay within `targetEpsilon` (0 if not even one does). */
export function maxStepsWithin(o: Omit<CalibrateOptions, 'steps'> & { noiseMultiplier: number; maxSteps: number }): number {
  const kind = o.accountant ?? 'prv';
  const eps = (steps: number) => historyEpsilon([{ sampleRate: o.sampleRate, noiseMultiplier: o.noiseMultiplier, steps }], o.delta, kind, o.epsError);
  if (eps(o.maxSteps) <= o.targetEpsilon) return o.maxSteps;
  let lo = 0;
  let hi = o.maxSteps;
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (eps(mid) <= o.targetEpsilon) lo = mid;
    else hi = mid;
  }
  return lo;
}

/**
 * Keeps the history of a training run and answers "how much ε so far". Consecutive steps
 * with the same parameters are merged, so a run of any length is a short history.
 */
export class PrivacyAccountant {
  private readonly entries: MechanismStep[] = [];

  constructor(
    readonly kind: AccountantKind = 'prv',
    private readonly epsError?: number,
  ) {
    checkAccountant(kind);
  }

  step(sampleRate: number, noiseMultiplier: number, count = 1): void {
    checkSampleRate(sampleRate);
    const last = this.entries.at(-1);
    if (last && last.sampleRate === sampleRate && last.noiseMultiplier === noiseMultiplier) last.steps += count;
    else this.entries.push({ sampleRate, noiseMultiplier, steps: count });
  }

  get history(): readonly MechanismStep[] {
    return this.entries.map((e) => ({ ...e }));
  }

  get steps(): number {
    return this.entries.reduce((s, e) => s + e.steps, 0);
  }

  getEpsilon(delta: number): number {
    checkDelta(delta);
    return historyEpsilon(this.entries, delta, this.kind, this.epsError);
  }
}
