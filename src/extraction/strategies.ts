import { type Rng, type Samples, sampleCount, takeSamples } from '../core/index.js';
import type { TfjsModel } from '../engines/index.js';
import type { Oracle } from './oracle.js';
import { answerLabels, jacobianAugment, leastConfident, noisyCopies, randomQueries, type Range } from './queries.js';

export const EXTRACTION_STRATEGIES = ['natural', 'random', 'jacobian', 'active'] as const;
export type ExtractionStrategy = (typeof EXTRACTION_STRATEGIES)[number];

export interface StrategyContext {
  oracle: Oracle;
  rng: Rng;
  pool?: Samples;
  range: Range;
  sampleShape: readonly number[];
  /** Ascending, the budget last. */
  checkpoints: readonly number[];
  /** λ already in input units. */
  jacobian: { seeds: number; lambda: number; tau: number };
  /** Retrains the surrogate on every answer so far and adds a point to the curve. */
  train(): Promise<TfjsModel>;
  notes: string[];
}

/** Noise of near-copies once the pool is spent, as a share of the value range. */
const COPY_SIGMA = 0.1;
/** Candidates scored per active-learning round: bounds the cost of a large pool. */
const ACTIVE_CANDIDATES = 20_000;

/** Queries the next `count` rows of `source` (a function of how many are wanted), stopping at the budget or a refusal. */
async function askUpTo(ctx: StrategyContext, until: number, next: (count: number) => Samples): Promise<void> {
  while (!ctx.oracle.closed && ctx.oracle.used < until) {
    const want = Math.min(until, ctx.oracle.budget) - ctx.oracle.used;
    const x = next(want);
    if (sampleCount(x) === 0) return;
    const got = await ctx.oracle.ask(x);
    if (got < sampleCount(x)) return;
  }
}

/** Pool rows in a seeded random order without repeats; near-copies once they run out. */
function poolStream(ctx: StrategyContext): (count: number) => Samples {
  const pool = ctx.pool!;
  const order = ctx.rng.permutation(sampleCount(pool));
  let at = 0;
  return (count) => {
    if (at >= order.length) return copies(ctx, count, order.length);
    const take = order.subarray(at, Math.min(order.length, at + count));
    at += take.length;
    return takeSamples(pool, take);
  };
}

async function natural(ctx: StrategyContext): Promise<void> {
  const next = poolStream(ctx);
  for (const c of ctx.checkpoints) {
    await askUpTo(ctx, c, next);
    if (ctx.oracle.used > 0) await ctx.train();
    if (ctx.oracle.closed) return;
  }
}

async function random(ctx: StrategyContext): Promise<void> {
  const next = (count: number) => randomQueries(count, ctx.sampleShape, ctx.range, ctx.rng);
  for (const c of ctx.checkpoints) {
    await askUpTo(ctx, c, next);
    if (ctx.oracle.used > 0) await ctx.train();
    if (ctx.oracle.closed) return;
  }
}

/**
 * Active learning by uncertainty: a random first checkpoint's worth of pool rows, then at each
 * checkpoint the unasked rows the current surrogate is least sure of.
 */
async function active(ctx: StrategyContext): Promise<void> {
  const pool = ctx.pool!;
  const n = sampleCount(pool);
  const order = ctx.rng.permutation(n);
  const asked = new Uint8Array(n);
  let queue: Int32Array = order;
  let surrogate: TfjsModel | null = null;
  for (const c of ctx.checkpoints) {
    if (surrogate) {
      // Scored once per round: the surrogate does not change within it.
      const unasked = order.filter((i) => asked[i] === 0);
      const candidates = unasked.subarray(0, ACTIVE_CANDIDATES);
      queue = await leastConfident(surrogate, pool, candidates, Math.max(0, c - ctx.oracle.used));
    }
    let at = 0;
    await askUpTo(ctx, c, (count) => {
      const take: number[] = [];
      while (take.length < count && at < queue.length) {
        const i = queue[at++];
        if (asked[i] === 0) take.push(i);
      }
      for (const i of take) asked[i] = 1;
      if (take.length > 0) return takeSamples(pool, take);
      return copies(ctx, count, n);
    });
    if (ctx.oracle.used > 0) surrogate = await ctx.train();
    if (ctx.oracle.closed) return;
  }
}

function copies(ctx: StrategyContext, count: number, poolSize: number): Samples {
  const note = `the pool's ${poolSize} inputs were all sent; later queries are noisy copies of them (σ = ${COPY_SIGMA} of the value range)`;
  if (!ctx.notes.includes(note)) ctx.notes.push(note);
  return noisyCopies(ctx.pool!, count, COPY_SIGMA, ctx.range, ctx.rng);
}

/**
 * Papernot et al.'s substitute training: a small natural seed set, then rounds that each add,
 * for every point so far, its step along the surrogate's gradient sign for the target's label
 * (λ's sign flipping every τ rounds), until the budget is spent. Retrains after each round.
 */
async function jacobian(ctx: StrategyContext): Promise<void> {
  const pool = ctx.pool!;
  const { seeds, lambda, tau } = ctx.jacobian;
  const order = ctx.rng.permutation(sampleCount(pool));
  await ctx.oracle.ask(takeSamples(pool, order.subarray(0, Math.min(seeds, order.length, ctx.oracle.remaining))));
  if (ctx.oracle.used === 0) return;
  let surrogate = await ctx.train();
  for (let round = 0; !ctx.oracle.closed; round++) {
    const { x, answers } = ctx.oracle.collected(ctx.sampleShape);
    const labels = answerLabels(answers);
    const step = tau > 0 && Math.floor(round / tau) % 2 === 1 ? -lambda : lambda;
    let points = x;
    let pointLabels = labels;
    // Past the budget, a random subset of this round's points is all that can be asked.
    const room = ctx.oracle.remaining;
    if (sampleCount(x) > room) {
      const chosen = ctx.rng.permutation(sampleCount(x)).subarray(0, room);
      points = takeSamples(x, chosen);
      pointLabels = Int32Array.from(chosen, (i) => labels[i]);
    }
    const augmented = await jacobianAugment(surrogate, points, pointLabels, step, ctx.range);
    const before = ctx.oracle.used;
    await ctx.oracle.ask(augmented);
    if (ctx.oracle.used === before) break;
    surrogate = await ctx.train();
  }
}

export const STRATEGIES: Record<ExtractionStrategy, (ctx: StrategyContext) => Promise<void>> = { natural, random, jacobian, active };
