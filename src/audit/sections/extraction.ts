import { Rng, subset, type Finding, type Progress } from '../../core/index.js';
import { extract } from '../../extraction/index.js';
import type { AuditContext, AuditSection } from '../sections.js';

const SIZES = {
  full: { budget: 5000, holdout: 1000, checkpoints: [500, 2000] as number[] | undefined },
  quick: { budget: 1000, holdout: 300, checkpoints: [500] },
};
/** Fewer than this and the curve says nothing. */
const LEAST = { budget: 500, holdout: 200 };

/**
 * Model extraction: how much of the model a user with API access can copy. A surrogate MLP is
 * trained only on the model's answers to natural inputs the attacker holds (the training
 * data, unlabelled, when given; else held-out rows kept apart from the holdout), and
 * compared with the model on a holdout as the queries grow.
 */
export const extractionSection: AuditSection = {
  id: 'extraction',
  title: 'Model extraction (stealing through the API)',
  threat: 'extraction',
  about: {
    tested: "how closely a copy trained only on the model's answers agrees with it, for the number of queries an API user could send",
    how: 'natural inputs are sent to the model, a surrogate MLP is trained on its answers at each checkpoint, and its agreement with the model (fidelity) and its accuracy are measured on held-out rows it never queried',
  },
  needs: {
    queries: (ctx) => {
      const s = ctx.quick ? SIZES.quick : SIZES.full;
      return { min: LEAST.budget + LEAST.holdout, want: s.budget + Math.min(s.holdout, ctx.test.y.length) };
    },
  },
  estimate: { full: 15, quick: 6 },
  applies(ctx) {
    if (ctx.test.y.length < 2 * LEAST.holdout && !ctx.train) return `needs at least ${2 * LEAST.holdout} rows of data (a holdout and natural inputs to query with), or --train-data`;
    return true;
  },
  async run(ctx: AuditContext): Promise<Finding[]> {
    const s = ctx.quick ? SIZES.quick : SIZES.full;
    const allowance = ctx.queries ?? s.budget + s.holdout;
    // A predict-only target is asked about the holdout too: it comes out of the allowance.
    const share = ctx.queries == null ? s.holdout : Math.max(LEAST.holdout, Math.floor(allowance * 0.2));
    const holdoutRows = Math.min(s.holdout, share, ctx.test.y.length - (ctx.train ? 0 : LEAST.holdout));
    const budget = Math.max(1, Math.min(s.budget, allowance - holdoutRows));
    const order = new Rng(ctx.seed).permutation(ctx.test.y.length);
    const holdout = subset(ctx.test, order.subarray(0, holdoutRows), `${ctx.test.name} (holdout)`);
    const pool = ctx.train ? ctx.train.x : subset(ctx.test, order.subarray(holdoutRows)).x;
    const quiet: Progress = { ...ctx.progress, log: () => {} };
    const r = await extract(ctx.model, { budget, holdout, pool, strategy: 'natural', checkpoints: s.checkpoints, seed: ctx.seed, progress: quiet });
    r.surrogate.dispose();
    const pct = (v: number) => `${(v * 100).toFixed(1)}%`;
    return [
      {
        area: 'extraction',
        id: 'extraction.fidelity',
        title: `A copy trained on ${r.queriesAnswered} answers`,
        severity: 'info',
        metric: `agreement of a stolen copy with the model after ${r.queriesAnswered} queries`,
        value: r.fidelity,
        evidence: [
          `${r.queriesUsed} natural inputs (${ctx.train ? 'the training data, unlabelled' : 'held-out rows outside the holdout'}) sent to the model; it answered ${r.queriesAnswered} with ${r.answerKind}; a surrogate MLP trained on the answers alone`,
          `on ${holdoutRows} held-out rows the copy agrees with the model on ${pct(r.fidelity)} and is right on ${pct(r.accuracy)} (the model: ${pct(r.targetAccuracy)})`,
          `by queries: ${r.curve.map((p) => `${p.queries}: ${pct(p.fidelity)}`).join(', ')}`,
          ...(r.refusal ? [`the target refused after ${r.queriesAnswered} answers (HTTP ${r.refusal.status}): ${r.refusal.message}`] : []),
          ...r.notes,
          `full size: bulwark attack extract --target MODEL --budget 20000 (a larger budget copies more)`,
        ],
        chart: {
          kind: 'line',
          title: 'What a stolen copy achieves against the queries it cost',
          xLabel: 'queries answered',
          yLabel: 'share of holdout rows',
          series: [
            { name: 'fidelity (agrees with the model)', points: r.curve.map((p) => [p.queries, p.fidelity] as [number, number]) },
            { name: 'accuracy of the copy', points: r.curve.map((p) => [p.queries, p.accuracy] as [number, number]) },
            { name: "the model's accuracy", points: r.curve.map((p) => [p.queries, r.targetAccuracy] as [number, number]) },
          ],
        },
      },
    ];
  },
};
