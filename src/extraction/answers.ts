import { BulwarkError, isBulwarkError, type Samples } from '../core/index.js';

/** What a target's answers reveal: the richer, the more a surrogate learns per query. */
export type AnswerKind = 'probabilities' | 'rounded' | 'top-k' | 'labels';

export interface AnswerShape {
  kind: AnswerKind;
  /** 'rounded': the decimals every value is a multiple of. */
  decimals?: number;
  /** 'top-k': the most classes with a non-zero score in any row. */
  k?: number;
}

const MAX_DECIMALS = 4;

/**
 * Reads what kind of answer came back from the [n, classes] rows seen so far. Decided over all
 * rows, because one row alone cannot tell a confident probability vector from a label.
 * Order matters: one-hot rows are also "rounded" and "top-1".
 */
export function detectAnswerKind(answers: Samples): AnswerShape {
  const [n, k] = answers.shape;
  const d = answers.data;
  if (n === 0) return { kind: 'probabilities' };
  let maxNonZero = 0;
  let allOneHot = true;
  const nonZero = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let nz = 0;
    let ones = 0;
    for (let j = 0; j < k; j++) {
      const v = d[i * k + j];
      if (v !== 0) nz++;
      if (Math.abs(v - 1) < 1e-6) ones++;
    }
    nonZero[i] = nz;
    if (nz > maxNonZero) maxNonZero = nz;
    if (!(nz === 1 && ones === 1)) allOneHot = false;
  }
  if (allOneHot) return { kind: 'labels' };
  for (let decimals = 0; decimals <= MAX_DECIMALS; decimals++) {
    if (allMultiplesOf(d, 10 ** decimals)) return { kind: 'rounded', decimals };
  }
  // A confident softmax can underflow a few classes to exactly 0, so top-k needs most rows,
  // not just the widest one, to stop at the same count.
  if (maxNonZero < k) {
    let atK = 0;
    for (let i = 0; i < n; i++) if (nonZero[i] === maxNonZero) atK++;
    if (atK >= n / 2) return { kind: 'top-k', k: maxNonZero };
  }
  return { kind: 'probabilities' };
}

function allMultiplesOf(d: Float32Array, scale: number): boolean {
  for (let i = 0; i < d.length; i++) {
    // Float32 stores 0.3 as 0.30000001: tolerate the representation, not real scores.
    if (Math.abs(d[i] - Math.round(d[i] * scale) / scale) > 1e-6) return false;
  }
  return true;
}

export function describeAnswers(a: AnswerShape): string {
  switch (a.kind) {
    case 'rounded':
      return `scores rounded to ${a.decimals} decimal${a.decimals === 1 ? '' : 's'}`;
    case 'top-k':
      return `the top ${a.k} scores`;
    case 'labels':
      return 'labels only';
    default:
      return 'full probabilities';
  }
}

const REFUSAL = /answered (401|403)\b|\((429)\)/;

/**
 * The HTTP status of a refusal from a remote target (a revoked, suspended or throttled key, a
 * spent budget), or null for any other failure. The http engine reports these as E_REMOTE with
 * the status in the message; that is all it exposes.
 */
export function refusalStatus(e: unknown): number | null {
  if (!isBulwarkError(e) || e.code !== 'E_REMOTE') return null;
  const m = REFUSAL.exec(e.message);
  return m ? Number(m[1] ?? m[2]) : null;
}

/** Throws when an answer is not [rows, classes] of finite, non-negative scores. */
export function checkAnswers(answers: Samples, rows: number, k: number, target: string): void {
  if (answers.shape.length !== 2 || answers.shape[0] !== rows || answers.shape[1] !== k) {
    throw new BulwarkError('E_REMOTE', `target '${target}' answered ${rows} rows with shape [${answers.shape.join(', ')}], not [${rows}, ${k}]`);
  }
  for (let i = 0; i < answers.data.length; i++) {
    const v = answers.data[i];
    if (!Number.isFinite(v) || v < 0) {
      throw new BulwarkError('E_REMOTE', `target '${target}' answered a score of ${v} (row ${Math.floor(i / k)}); scores must be finite and non-negative`);
    }
  }
}
