import { BulwarkError, type Model, type Samples } from '../core/index.js';
import { type AttackOptions, type EvasionResult } from './attacks/common.js';
import { fgsm, pgd, type PgdOptions } from './attacks/gradient.js';
import { square, type SquareOptions } from './attacks/square.js';
import { hopSkipJump, type HsjOptions } from './attacks/hsj.js';

export const EVASION_ATTACKS = ['fgsm', 'pgd', 'square', 'hsj'] as const;
export type EvasionAttack = (typeof EVASION_ATTACKS)[number];
/** Attacks that need only `predict`. */
export const BLACK_BOX_ATTACKS: readonly EvasionAttack[] = ['square', 'hsj'];

export type AnyAttackOptions = AttackOptions & Omit<PgdOptions, keyof AttackOptions> & Omit<SquareOptions, keyof AttackOptions> & Omit<HsjOptions, keyof AttackOptions>;

/** Runs one attack by name. */
export async function runEvasionAttack(attack: EvasionAttack, model: Model, x: Samples, y: Int32Array, opts: AnyAttackOptions): Promise<EvasionResult> {
  switch (attack) {
    case 'fgsm':
      return fgsm(model, x, y, opts);
    case 'pgd':
      return pgd(model, x, y, opts);
    case 'square':
      return square(model, x, y, opts);
    case 'hsj':
      return hopSkipJump(model, x, y, opts);
    default:
      throw new BulwarkError('E_USAGE', `unknown attack '${String(attack)}'; the evasion attacks are: ${EVASION_ATTACKS.join(', ')}`);
  }
}

/** The figures a report needs from one attack run. */
export interface EvasionSummary {
  attack: string;
  norm: string;
  eps: number | null;
  targeted: boolean;
  samples: number;
  /** Share of clean inputs classified correctly. */
  cleanAccuracy: number;
  /** Share of inputs still classified correctly under attack (within eps). */
  robustAccuracy: number;
  /** Share of the correctly classified inputs the attack turned (into the target, when targeted). */
  successRate: number;
  /** Mean and median perturbation size of the successful attacks, in the attack's norm. */
  meanPerturbation: number | null;
  medianPerturbation: number | null;
  /** Black-box attacks: queries per sample. */
  meanQueries?: number;
  medianQueries?: number;
  /** Black-box attacks: median queries of the successful attacks. */
  medianQueriesSuccessful?: number | null;
  seconds: number;
}

export function summarizeEvasion(result: EvasionResult, y: Int32Array): EvasionSummary {
  const n = y.length;
  let clean = 0;
  let robust = 0;
  let turned = 0;
  const sizes: number[] = [];
  const winQueries: number[] = [];
  for (let i = 0; i < n; i++) {
    const correct = result.cleanPredicted[i] === y[i];
    if (correct) clean++;
    // A sample counts as robust when the input the attack leaves within eps is still right:
    // the adversarial one where the attack succeeded, the clean one where it found nothing within eps.
    const withinEps = result.eps !== null && result.norms[i] <= result.eps;
    const kept = result.success[i] || withinEps ? result.predicted[i] === y[i] : correct;
    if (kept) robust++;
    if (correct && result.success[i]) {
      turned++;
      sizes.push(result.norms[i]);
      if (result.queries) winQueries.push(result.queries[i]);
    }
  }
  const summary: EvasionSummary = {
    attack: result.attack,
    norm: result.norm,
    eps: result.eps,
    targeted: result.targeted,
    samples: n,
    cleanAccuracy: n ? clean / n : NaN,
    robustAccuracy: n ? robust / n : NaN,
    successRate: clean ? turned / clean : 0,
    meanPerturbation: sizes.length ? sizes.reduce((a, b) => a + b, 0) / sizes.length : null,
    medianPerturbation: median(sizes),
    seconds: result.seconds,
  };
  if (result.queries) {
    const q = Array.from(result.queries);
    summary.meanQueries = q.reduce((a, b) => a + b, 0) / Math.max(1, q.length);
    summary.medianQueries = median(q) ?? undefined;
    summary.medianQueriesSuccessful = median(winQueries);
  }
  return summary;
}

export function median(v: number[]): number | null {
  if (v.length === 0) return null;
  const s = [...v].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
