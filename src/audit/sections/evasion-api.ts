import { Rng, hasCapability, subset, type Dataset, type Finding } from '../../core/index.js';
import { hopSkipJump, square, summarizeEvasion, type EvasionResult } from '../../evasion/index.js';
import type { AuditContext, AuditSection } from '../sections.js';

const SCORE_EPS = 0.1;
const LABEL_EPS = 2;
/** Share of the section's queries that go to the score-based attack; the rest to the label-only one. */
const SCORE_SHARE = 0.75;
/** Fewer queries per sample than this and neither attack says anything. */
const MIN_PER_SAMPLE = 100;

interface AttackSize {
  samples: number;
  perSample: number;
}

const FULL = { score: { samples: 50, perSample: 1000 }, label: { samples: 20, perSample: 1000 } };
const QUICK = { score: { samples: 20, perSample: 300 }, label: { samples: 10, perSample: 300 } };
const LEAST = { score: { samples: 10, perSample: MIN_PER_SAMPLE }, label: { samples: 5, perSample: MIN_PER_SAMPLE } };

const cost = (s: AttackSize) => s.samples * s.perSample;

/**
 * Fits an attack into `allowance` queries. Depth per sample comes first (a score-based attack
 * that stops at 100 queries turns a fraction of what it turns at 1,000), up to what a full run
 * uses, for the fewest samples that still give a rate; what is left buys more samples.
 */
export function fitAttack(allowance: number, want: AttackSize, least: AttackSize): AttackSize {
  const perSample = Math.max(MIN_PER_SAMPLE, Math.min(want.perSample, Math.floor(allowance / least.samples)));
  const samples = Math.min(want.samples, Math.floor(allowance / perSample));
  return { samples, perSample };
}

/**
 * Evasion through the predictions alone, for a model that gives no gradients (an ONNX file,
 * a URL): the score-based Square attack (L∞) and the label-only HopSkipJump attack (L2),
 * sized to the section's share of the query budget.
 */
export const evasionApiSection: AuditSection = {
  id: 'evasion-api',
  title: 'Evasion through the API (score-based and label-only)',
  threat: 'evasion',
  about: {
    tested: 'whether someone who can only query the model can turn its answers with small input changes',
    how: `the Square attack searches with the returned scores (L∞, ε = ${SCORE_EPS}) and HopSkipJump with the returned labels alone (L2, ε = ${LABEL_EPS}), each within a fixed number of queries per sample taken from the audit's query budget`,
  },
  needs: {
    capabilities: ['predict'],
    queries: (ctx) => {
      const size = ctx.quick ? QUICK : FULL;
      return { min: cost(LEAST.score) + cost(LEAST.label), want: cost(size.score) + cost(size.label) };
    },
  },
  estimate: { full: 60, quick: 15 },
  applies(ctx) {
    if (hasCapability(ctx.model, 'lossGradient')) {
      return 'the model gives gradients, so the white-box evasion section attacks it with stronger attacks (its Square attack is the score-based one)';
    }
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of ctx.test.x.data) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    if (lo < 0 || hi > 1) {
      return `the inputs run from ${lo} to ${hi}, not [0, 1], so the size of a perturbation has no agreed scale; run 'bulwark attack evasion --attack square --clip MIN,MAX --eps E' with this data's valid range`;
    }
    return true;
  },
  async run(ctx: AuditContext): Promise<Finding[]> {
    const size = ctx.quick ? QUICK : FULL;
    const allowance = ctx.queries ?? cost(size.score) + cost(size.label);
    const scoreSize = fitAttack(Math.floor(allowance * SCORE_SHARE), size.score, LEAST.score);
    const rng = new Rng(ctx.seed);
    const order = rng.permutation(ctx.test.y.length);
    const scoreData = subset(ctx.test, order.subarray(0, Math.min(scoreSize.samples, order.length)));
    const findings: Finding[] = [];

    const s = await square(ctx.model, scoreData.x, scoreData.y, { eps: SCORE_EPS, budget: scoreSize.perSample, seed: ctx.seed, progress: ctx.progress });
    findings.push(attackFinding('score', s, scoreData, scoreSize));
    // Square stops a sample at its first success: what it left unused goes to HopSkipJump.
    const spent = s.queries ? s.queries.reduce((a, b) => a + b, 0) : cost(scoreSize);
    const labelSize = fitAttack(allowance - spent, size.label, LEAST.label);
    const labelData = subset(ctx.test, order.subarray(scoreData.y.length, Math.min(scoreData.y.length + labelSize.samples, order.length)));
    if (labelData.y.length > 0) {
      const h = await hopSkipJump(ctx.model, labelData.x, labelData.y, { eps: LABEL_EPS, budget: labelSize.perSample, seed: ctx.seed, progress: ctx.progress });
      findings.push(attackFinding('label', h, labelData, labelSize));
    }
    return findings;
  },
};

function attackFinding(kind: 'score' | 'label', r: EvasionResult, data: Dataset, size: AttackSize): Finding {
  const s = summarizeEvasion(r, data.y);
  const used = r.queries ? r.queries.reduce((a, b) => a + b, 0) : 0;
  const pct = (v: number) => (Number.isFinite(v) ? `${(v * 100).toFixed(1)}%` : '—');
  const score = kind === 'score';
  const what = score ? `Square (scores, L∞, ε = ${SCORE_EPS})` : `HopSkipJump (labels only, L2, ε = ${LABEL_EPS})`;
  return {
    area: 'evasion',
    id: score ? 'evasion.score-robust-accuracy' : 'evasion.label-robust-accuracy',
    title: score ? `Robust accuracy under a score-based attack (Square, L∞, ε = ${SCORE_EPS})` : `Robust accuracy under a label-only attack (HopSkipJump, L2, ε = ${LABEL_EPS})`,
    severity: 'info',
    metric: score ? `robust accuracy under Square (L∞, ε = ${SCORE_EPS})` : `robust accuracy under HopSkipJump (L2, ε = ${LABEL_EPS})`,
    value: s.robustAccuracy,
    evidence: [
      `${what} on ${data.y.length} held-out samples, at most ${size.perSample} queries each (the clean query included): accuracy ${pct(s.cleanAccuracy)} → ${pct(s.robustAccuracy)}; ` +
        `${pct(s.successRate)} of the correctly classified samples turned${s.medianQueriesSuccessful ? `, with a median of ${s.medianQueriesSuccessful} queries` : ''}`,
      `${used} queries sent in all`,
      score
        ? `more queries do more: bulwark attack evasion --model MODEL --attack square --eps ${SCORE_EPS} --budget 5000`
        : `more queries do more: bulwark attack evasion --model MODEL --attack hsj --eps ${LABEL_EPS} --budget 5000`,
    ],
    chart: {
      kind: 'bar',
      title: `${what}: accuracy before and after`,
      labels: ['clean', 'under attack'],
      values: [s.cleanAccuracy, s.robustAccuracy],
      unit: 'accuracy',
      max: 1,
    },
  };
}
