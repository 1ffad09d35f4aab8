import { randomBytes } from 'node:crypto';
import { BulwarkError, Rng, type Samples } from '../core/index.js';

/**
 * What a client gets back for one row of class probabilities. Every policy returns rows that
 * still sum to 1 (within float32 rounding), so a client reading "probabilities" — Bulwark's own
 * `connectHttpModel` included — takes the answer as it is instead of re-normalising it.
 */
export type OutputPolicy =
  /** The model's probabilities unchanged. */
  | { kind: 'full' }
  /** Each probability rounded to `decimals` places, by largest remainder so the row still sums to exactly 1. */
  | { kind: 'round'; decimals: number }
  /** The `k` largest probabilities kept (ties to the lower class index), the rest zeroed; rescaled to sum to 1 unless `renormalize` is false. */
  | { kind: 'top-k'; k: number; renormalize?: boolean }
  /** Only the predicted class: a one-hot row at the argmax. */
  | { kind: 'label' }
  /**
   * Gaussian noise N(0, sigma²) added to each probability, then clipped at 0 and rescaled.
   * `randomness: 'seeded'` (the default) draws from core's Rng with `seed` (default 42): repeatable,
   * for experiments. 'crypto' draws from the operating system's generator: what a server should use,
   * since a seeded stream can be replayed by anyone who learns the seed.
   */
  | { kind: 'gaussian'; sigma: number; seed?: number; randomness?: 'seeded' | 'crypto' }
  /**
   * Reverse sigmoid (Lee et al., "Defending Against NN Model Stealing Attacks Using Deceptive
   * Perturbations", IEEE S&P Workshops 2019): p' ∝ clip(p − β(σ(γ·logit p) − ½), 0, 1). The top
   * class rarely changes, but the scores stop being the model's, which poisons a surrogate's
   * training signal. Defaults β = 1, γ = 0.1 (as IBM ART's ReverseSigmoid).
   */
  | { kind: 'reverse-sigmoid'; beta?: number; gamma?: number };

export type OutputPolicyKind = OutputPolicy['kind'];
export const OUTPUT_POLICY_KINDS: readonly OutputPolicyKind[] = ['full', 'round', 'top-k', 'label', 'gaussian', 'reverse-sigmoid'];

/** A standard-normal source; swap in another mechanism (the privacy area's) by passing one. */
export type NormalSource = () => number;

/** Standard normals from the operating system's CSPRNG (Box–Muller over 53-bit uniforms). */
export function cryptoNormal(): NormalSource {
  let pool = Buffer.alloc(0);
  let at = 0;
  const uniform = (): number => {
    if (at + 8 > pool.length) {
      pool = randomBytes(4096);
      at = 0;
    }
    const hi = pool.readUInt32BE(at) >>> 5; // 27 bits
    const lo = pool.readUInt32BE(at + 4) >>> 6; // 26 bits
    at += 8;
    return (hi * 67108864 + lo) / 9007199254740992;
  };
  let spare: number | null = null;
  return () => {
    if (spare !== null) {
      const v = spare;
      spare = null;
      return v;
    }
    let u = 0;
    while (u === 0) u = uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    const t = 2 * Math.PI * uniform();
    spare = r * Math.sin(t);
    return r * Math.cos(t);
  };
}

/** The normal source a gaussian policy asks for. */
export function normalSourceFor(policy: { seed?: number; randomness?: 'seeded' | 'crypto' }): NormalSource {
  if (policy.randomness === 'crypto') return cryptoNormal();
  const rng = new Rng(policy.seed ?? 42);
  return () => rng.normal();
}

function bad(message: string): BulwarkError {
  return new BulwarkError('E_USAGE', `output policy: ${message}`);
}

/** Checks a policy's parameters; throws E_USAGE naming the field. */
export function checkOutputPolicy(p: OutputPolicy): OutputPolicy {
  if (p === null || typeof p !== 'object' || !OUTPUT_POLICY_KINDS.includes(p.kind)) {
    throw bad(`kind must be one of ${OUTPUT_POLICY_KINDS.join(', ')}, not ${JSON.stringify((p as { kind?: unknown } | null)?.kind)}`);
  }
  const int = (v: unknown, name: string, min: number, max: number): void => {
    if (!Number.isInteger(v) || (v as number) < min || (v as number) > max) throw bad(`${p.kind}.${name} must be an integer from ${min} to ${max}, not ${String(v)}`);
  };
  const positive = (v: unknown, name: string): void => {
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw bad(`${p.kind}.${name} must be a positive number, not ${String(v)}`);
  };
  switch (p.kind) {
    case 'round':
      int(p.decimals, 'decimals', 0, 6);
      break;
    case 'top-k':
      int(p.k, 'k', 1, 1_000_000);
      break;
    case 'gaussian':
      positive(p.sigma, 'sigma');
      if (p.seed !== undefined) int(p.seed, 'seed', 0, 2 ** 32 - 1);
      if (p.randomness !== undefined && p.randomness !== 'seeded' && p.randomness !== 'crypto') throw bad(`gaussian.randomness must be 'seeded' or 'crypto'`);
      break;
    case 'reverse-sigmoid':
      if (p.beta !== undefined) positive(p.beta, 'beta');
      if (p.gamma !== undefined) positive(p.gamma, 'gamma');
      break;
  }
  return p;
}

/** A short human description, for metadata and reports: "top-2", "round(2)", … */
export function describeOutputPolicy(p: OutputPolicy): string {
  switch (p.kind) {
    case 'round':
      return `round(${p.decimals})`;
    case 'top-k':
      return `top-${p.k}${p.renormalize === false ? ' (raw)' : ''}`;
    case 'gaussian':
      return `gaussian(σ=${p.sigma})`;
    case 'reverse-sigmoid':
      return `reverse-sigmoid(β=${p.beta ?? 1}, γ=${p.gamma ?? 0.1})`;
    default:
      return p.kind;
  }
}

/**
 * Applies one policy to [n, k] probabilities, returning a new array. `noise` is consulted
 * only by 'gaussian' (defaults to the policy's own source, created per call).
 */
export function applyOutputPolicy(probs: Samples, policy: OutputPolicy, noise?: NormalSource): Samples {
  if (probs.shape.length !== 2) throw new BulwarkError('E_DATA_SHAPE', `output policies take [n, classes] probabilities, not shape [${probs.shape.join(', ')}]`);
  const [n, k] = probs.shape;
  const out = new Float32Array(probs.data);
  const rows = (f: (row: Float32Array) => void): void => {
    for (let i = 0; i < n; i++) f(out.subarray(i * k, (i + 1) * k));
  };
  switch (policy.kind) {
    case 'full':
      break;
    case 'round':
      rows((r) => roundRow(r, policy.decimals));
      break;
    case 'top-k':
      rows((r) => topKRow(r, policy.k, policy.renormalize ?? true));
      break;
    case 'label':
      rows(labelRow);
      break;
    case 'gaussian': {
      const draw = noise ?? normalSourceFor(policy);
      rows((r) => gaussianRow(r, policy.sigma, draw));
      break;
    }
    case 'reverse-sigmoid':
      rows((r) => reverseSigmoidRow(r, policy.beta ?? 1, policy.gamma ?? 0.1));
      break;
    default:
      throw bad(`unknown kind ${JSON.stringify((policy as { kind: unknown }).kind)}`);
  }
  return { data: out, shape: [n, k] };
}

function argmax(r: ArrayLike<number>): number {
  let best = 0;
  for (let j = 1; j < r.length; j++) if (r[j] > r[best]) best = j;
  return best;
}

/** Rescales to sum 1; a row with nothing left becomes one-hot at `fallback`. */
function normalize(r: Float32Array, fallback: number): void {
  let sum = 0;
  for (let j = 0; j < r.length; j++) sum += r[j];
  if (!(sum > 0) || !Number.isFinite(sum)) {
    r.fill(0);
    r[fallback] = 1;
    return;
  }
  for (let j = 0; j < r.length; j++) r[j] /= sum;
}

/**
 * Largest-remainder (Hamilton) rounding in units of 10^-decimals: floor every value, then hand
 * the units still missing to the largest remainders (ties to the lower index). The result is a
 * multiple of the unit and sums to exactly 1, where plain rounding can sum to 0.97 or 1.04.
 */
export function roundRow(r: Float32Array, decimals: number): void {
  const scale = 10 ** decimals;
  const k = r.length;
  let total = 0;
  for (let j = 0; j < k; j++) total += Math.max(0, r[j]);
  if (!(total > 0)) {
    labelRow(r);
    return;
  }
  const units = new Int32Array(k);
  const rem = new Float64Array(k);
  let used = 0;
  for (let j = 0; j < k; j++) {
    // Scaled by the row's own sum so float32 rows that sum to 0.9999999 still get all the units.
    const exact = (Math.max(0, r[j]) / total) * scale;
    units[j] = Math.floor(exact + 1e-9);
    rem[j] = exact - units[j];
    used += units[j];
  }
  const order = Array.from({ length: k }, (_, j) => j).sort((a, b) => rem[b] - rem[a] || a - b);
  for (let i = 0; used < scale && i < k; i++, used++) units[order[i]] += 1;
  for (let j = 0; j < k; j++) r[j] = units[j] / scale;
}

export function topKRow(r: Float32Array, k: number, renormalize: boolean): void {
  if (k >= r.length) return;
  const order = Array.from({ length: r.length }, (_, j) => j).sort((a, b) => r[b] - r[a] || a - b);
  const top = argmax(r);
  for (let i = k; i < order.length; i++) r[order[i]] = 0;
  if (renormalize) normalize(r, top);
}

export function labelRow(r: Float32Array): void {
  const top = argmax(r);
  r.fill(0);
  r[top] = 1;
}

/**
 * Misinformation for a key caught stealing the model (the PRADA paper's "deceptive answers";
 * Kariyappa & Qureshi's adaptive misinformation): the top two classes trade places. The answer
 * keeps its shape and its confidence profile, and the same input always gets the same wrong
 * answer, so the thief cannot tell; what it learns from here on is the runner-up class.
 */
export function misinformRow(r: Float32Array): void {
  if (r.length < 2) return;
  const first = argmax(r);
  let second = first === 0 ? 1 : 0;
  for (let j = 0; j < r.length; j++) if (j !== first && r[j] > r[second]) second = j;
  const top = r[first];
  r[first] = r[second];
  r[second] = top;
}

export function gaussianRow(r: Float32Array, sigma: number, draw: NormalSource): void {
  for (let j = 0; j < r.length; j++) r[j] += sigma * draw();
  const top = argmax(r);
  for (let j = 0; j < r.length; j++) if (r[j] < 0) r[j] = 0;
  normalize(r, top);
}

const CLIP = 1e-9;

export function reverseSigmoidRow(r: Float32Array, beta: number, gamma: number): void {
  const top = argmax(r);
  for (let j = 0; j < r.length; j++) {
    const p = Math.min(1 - CLIP, Math.max(CLIP, r[j]));
    const logit = Math.log(p / (1 - p));
    const perturbation = beta * (1 / (1 + Math.exp(-gamma * logit)) - 0.5);
    r[j] = Math.min(1, Math.max(0, p - perturbation));
  }
  normalize(r, top);
}
