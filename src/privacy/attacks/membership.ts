import { BulwarkError, Rng, checkInputShape, subset, type Dataset, type Model, type Samples } from '../../core/index.js';
import { membershipMetrics, type MembershipMetrics, type MetricsOptions } from './roc.js';

/**
 * Membership inference: given a model and an example, was the example in its training set?
 * Each attack turns examples into scores (higher: more likely a member) and is judged on
 * known members and non-members by membershipMetrics.
 */

export type MembershipAttackName = 'loss-threshold' | 'lira-online' | 'lira-offline' | 'label-only';

export interface MembershipResult extends MembershipMetrics {
  attack: MembershipAttackName;
  /** Queries the attack made to the target model. */
  queries: number;
  seconds: number;
  notes: string[];
}

/** Known members (from the training set) and non-members (held out) to score the attack on. */
export interface MembershipData {
  members: Dataset;
  nonMembers: Dataset;
}

interface WithLogits {
  predictLogits(x: Samples): Promise<Samples>;
}

function hasLogits(m: Model): m is Model & WithLogits {
  return typeof (m as Partial<WithLogits>).predictLogits === 'function';
}

/**
 * The logit-scaled confidence φ = log p_y − log Σ_{j≠y} p_j of each example (Carlini et
 * al. 2022): a monotone function of the loss, but one that keeps separating examples the
 * model is very sure of, where float32 probabilities all round to 1. From logits where
 * the model offers them, else from its probabilities.
 */
export async function logitConfidence(model: Model, x: Samples, y: Int32Array, from: 'auto' | 'probabilities' = 'auto'): Promise<Float64Array> {
  checkInputShape(model, x, 'membership scores');
  const useLogits = from === 'auto' && hasLogits(model);
  const out = useLogits ? await (model as Model & WithLogits).predictLogits(x) : await model.predict(x);
  const k = out.shape[1];
  const n = y.length;
  const phi = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const row = out.data.subarray(i * k, (i + 1) * k);
    const c = y[i];
    if (useLogits) {
      let max = -Infinity;
      for (let j = 0; j < k; j++) if (j !== c && row[j] > max) max = row[j];
      let sum = 0;
      for (let j = 0; j < k; j++) if (j !== c) sum += Math.exp(row[j] - max);
      phi[i] = row[c] - (max + Math.log(sum));
    } else {
      let others = 0;
      for (let j = 0; j < k; j++) if (j !== c) others += row[j];
      phi[i] = Math.log(Math.max(row[c], 1e-45)) - Math.log(Math.max(others, 1e-45));
    }
  }
  return phi;
}

function joined(data: MembershipData): { x: Samples; y: Int32Array; isMember: Uint8Array } {
  const { members, nonMembers } = data;
  const size = members.x.data.length / Math.max(1, members.y.length);
  if (nonMembers.x.shape.slice(1).join() !== members.x.shape.slice(1).join()) {
    throw new BulwarkError('E_DATA_SHAPE', `members have samples of shape [${members.x.shape.slice(1)}] but non-members [${nonMembers.x.shape.slice(1)}]`);
  }
  const n = members.y.length + nonMembers.y.length;
  const x = new Float32Array(n * size);
  x.set(members.x.data, 0);
  x.set(nonMembers.x.data, members.y.length * size);
  const y = new Int32Array(n);
  y.set(members.y, 0);
  y.set(nonMembers.y, members.y.length);
  const isMember = new Uint8Array(n);
  isMember.fill(1, 0, members.y.length);
  return { x: { data: x, shape: [n, ...members.x.shape.slice(1)] }, y, isMember };
}

/**
 * The loss-threshold attack (Yeom et al. 2018): training examples have lower loss. Needs
 * one prediction per example and nothing else.
 */
export async function lossThresholdAttack(model: Model, data: MembershipData, opts: MetricsOptions = {}): Promise<MembershipResult> {
  const t0 = performance.now();
  const { x, y, isMember } = joined(data);
  const scores = await logitConfidence(model, x, y);
  return {
    attack: 'loss-threshold',
    ...membershipMetrics(scores, isMember, opts),
    queries: y.length,
    seconds: (performance.now() - t0) / 1000,
    notes: ['score: the logit-scaled confidence in the true class (a monotone function of the loss)'],
  };
}

export interface LabelOnlyOptions extends MetricsOptions {
  /** Noisy copies of each example (default 24). */
  copies?: number;
  /** Standard deviation of the Gaussian noise, relative to the data's own (default 1.0). */
  noise?: number;
  seed?: number;
}

/**
 * The label-only attack of Choquette-Choo et al. (2021), noise-robustness variant: an API
 * that answers with labels alone still leaks membership, because the model keeps its
 * answer for a training example under larger perturbations. Score: the share of noisy
 * copies still given the true label.
 */
export async function labelOnlyAttack(model: Model, data: MembershipData, opts: LabelOnlyOptions = {}): Promise<MembershipResult> {
  const t0 = performance.now();
  const copies = opts.copies ?? 24;
  if (!Number.isInteger(copies) || copies < 1) throw new BulwarkError('E_USAGE', `copies must be a positive integer, got ${copies}`);
  const { x, y, isMember } = joined(data);
  const n = y.length;
  const size = x.data.length / n;
  let mean = 0;
  for (const v of x.data) mean += v;
  mean /= x.data.length;
  let sd = 0;
  for (const v of x.data) sd += (v - mean) ** 2;
  sd = Math.sqrt(sd / x.data.length) || 1;
  const scale = (opts.noise ?? 1.0) * sd;
  const rng = new Rng(opts.seed ?? 42);
  const hits = new Float64Array(n);
  // In chunks of examples, all copies of a chunk in one query batch.
  const chunk = Math.max(1, Math.floor(4096 / copies));
  for (let start = 0; start < n; start += chunk) {
    const m = Math.min(chunk, n - start);
    const batch = new Float32Array(m * copies * size);
    for (let i = 0; i < m; i++) {
      const src = x.data.subarray((start + i) * size, (start + i + 1) * size);
      for (let c = 0; c < copies; c++) {
        const off = (i * copies + c) * size;
        for (let j = 0; j < size; j++) batch[off + j] = src[j] + scale * rng.normal();
      }
    }
    const p = await model.predict({ data: batch, shape: [m * copies, ...x.shape.slice(1)] });
    const k = p.shape[1];
    for (let i = 0; i < m; i++) {
      for (let c = 0; c < copies; c++) {
        const row = (i * copies + c) * k;
        let best = 0;
        for (let j = 1; j < k; j++) if (p.data[row + j] > p.data[row + best]) best = j;
        if (best === y[start + i]) hits[start + i]++;
      }
    }
  }
  for (let i = 0; i < n; i++) hits[i] /= copies;
  return {
    attack: 'label-only',
    ...membershipMetrics(hits, isMember, opts),
    queries: n * copies,
    seconds: (performance.now() - t0) / 1000,
    notes: [`score: share of ${copies} Gaussian-noised copies (σ = ${scale.toPrecision(3)}) still given the true label; only labels are used`],
  };
}

/** A balanced evaluation set: `count` members from `train` and `count` non-members from `test`, chosen with the seed. */
export function membershipSample(train: Dataset, test: Dataset, count: number, seed: number): MembershipData & { memberIndices: Int32Array } {
  const m = Math.min(count, train.y.length, test.y.length);
  if (m < 1) throw new BulwarkError('E_USAGE', 'membership inference needs training and held-out examples');
  const rng = new Rng(seed);
  const memberIndices = rng.permutation(train.y.length).slice(0, m);
  const nonIdx = rng.permutation(test.y.length).slice(0, m);
  return { members: subset(train, memberIndices), nonMembers: subset(test, nonIdx), memberIndices };
}
