import { Rng, modelAccuracy, hasCapability, subset, type Chart, type Dataset, type Finding, type Model, type Progress } from '../../core/index.js';
import { TfjsModel } from '../../engines/index.js';
import { freshCopy, invertModel, lossThresholdAttack, membershipSample, planDpModel, trainDpSgd, type MembershipResult } from '../../privacy/index.js';
import { createZooModel, featureStats } from '../../zoo/index.js';
import type { AuditContext, AuditSection } from '../sections.js';

/**
 * What differential privacy buys against membership inference and model inversion: the
 * audited model next to DP-SGD models of the same architecture trained on a subset of
 * its data, attacked the same way. Sized to finish in well under a minute; LiRA (far
 * stronger, minutes) is named in the evidence with the command that runs it.
 */

export interface PrivacyAuditOptions {
  /** Budgets to train DP models at, in order; later ones are skipped when time runs short. */
  epsilons?: number[];
  delta?: number;
  /** Training examples for each DP model (default 4,000). */
  trainSubset?: number;
  epochs?: number;
  /** Members and non-members each for the attacks (default 1,000). */
  evaluate?: number;
  inversionSteps?: number;
}

/** Above this AUC, the loss alone tells members from non-members noticeably. */
const AUC_THRESHOLD = 0.6;

interface Row {
  label: string;
  epsilon: number | null;
  accuracy: number;
  attack: MembershipResult;
  images: { caption: string; pixels: number[] }[];
  trainedOn: number;
}


function imageSize(shape: readonly number[]): [number, number, number] | null {
  if (shape.length === 3 && (shape[2] === 1 || shape[2] === 3)) return [shape[0], shape[1], shape[2]];
  if (shape.length === 2) return [shape[0], shape[1], 1];
  return null;
}

async function inversionImages(model: Model, label: string, steps: number, seed: number): Promise<{ caption: string; pixels: number[] }[]> {
  const dims = imageSize(model.info.inputShape);
  if (!dims || !hasCapability(model, 'classGradient')) return [];
  const classes = Array.from({ length: Math.min(10, model.info.numClasses) }, (_, i) => i);
  const r = await invertModel(model, { classes, steps, seed });
  const [h, w, c] = dims;
  const size = h * w * c;
  return classes.map((k, i) => {
    const grey = Array.from({ length: h * w }, (_, p) => {
      let s = 0;
      for (let ch = 0; ch < c; ch++) s += r.images.data[i * size + p * c + ch];
      return s / c;
    });
    const lo = Math.min(...grey);
    const hi = Math.max(...grey);
    return { caption: `${label}: ${k}`, pixels: grey.map((v) => (hi > lo ? (v - lo) / (hi - lo) : 0)) };
  });
}

/** A DP-trainable copy of the audited model's architecture, or the zoo MLP when it has none DP-SGD can train. */
async function dpCandidate(ctx: AuditContext, train: Dataset, seed: number): Promise<{ model: TfjsModel; what: string }> {
  if (ctx.model instanceof TfjsModel) {
    try {
      planDpModel(ctx.model.net);
      return { model: await freshCopy(ctx.model, seed, 'dp-candidate'), what: "the audited model's architecture" };
    } catch {
      // Falls through to the zoo MLP, and says so.
    }
  }
  const tabular = train.x.shape.length === 2;
  const model = createZooModel('mlp', {
    inputShape: train.x.shape.slice(1),
    numClasses: ctx.model.info.numClasses,
    classNames: train.classNames,
    seed,
    standardize: tabular ? featureStats(train.x) : undefined,
  });
  return { model, what: 'the built-in MLP (the audited model is not a TF.js model DP-SGD can train)' };
}

export async function privacyAuditFindings(ctx: AuditContext, opts: PrivacyAuditOptions = {}): Promise<Finding[]> {
  const train = ctx.train!;
  const epsilons = opts.epsilons ?? [3, 1, 8];
  const delta = opts.delta ?? 1e-5;
  // A predict-only target is asked for the members, the non-members and the accuracy
  // sample; all three shrink together to fit the section's queries.
  const wantEvaluate = opts.evaluate ?? 1000;
  const fit = fitQueries(ctx.queries ?? null, wantEvaluate, ctx.test.y.length);
  const evaluate = fit.evaluate;
  const test = fit.test < ctx.test.y.length ? subset(ctx.test, new Rng(ctx.seed).permutation(ctx.test.y.length).subarray(0, fit.test)) : ctx.test;
  const steps = opts.inversionSteps ?? 100;
  const progress = ctx.progress;

  progress.start('privacy: membership inference', 1);
  const sample = membershipSample(train, test, evaluate, ctx.seed);
  const base = await lossThresholdAttack(ctx.model, sample);
  progress.advance(1);
  progress.done();
  const rows: Row[] = [
    {
      label: 'undefended',
      epsilon: null,
      accuracy: await modelAccuracy(ctx.model, test),
      attack: base,
      images: await inversionImages(ctx.model, 'undefended', steps, ctx.seed),
      trainedOn: train.y.length,
    },
  ];

  const n = Math.min(train.y.length, opts.trainSubset ?? 4000);
  const dpTrain = subset(train, new Rng(ctx.seed).permutation(train.y.length).slice(0, n), `${train.name} (DP subset)`);
  const batchSize = Math.min(256, Math.max(16, Math.floor(n / 16)));
  let what = '';
  const skipped: number[] = [];
  for (const eps of epsilons) {
    const candidate = await dpCandidate(ctx, dpTrain, ctx.seed + 1);
    what = candidate.what;
    try {
      // The bar still moves, but per-epoch log lines stay out of the audit's output.
      const quiet: Progress = {
        start: (label, total) => progress.start(label, total),
        advance: (steps, status) => progress.advance(steps, status),
        done: () => progress.done(),
        log: () => {},
      };
      const r = await trainDpSgd(candidate.model, dpTrain, { targetEpsilon: eps, delta, epochs: opts.epochs ?? 10, batchSize, seed: ctx.seed, progress: quiet });
      const attack = await lossThresholdAttack(candidate.model, membershipSample(dpTrain, ctx.test, evaluate, ctx.seed));
      rows.push({
        label: `DP ε=${eps}`,
        epsilon: r.epsilon,
        accuracy: await modelAccuracy(candidate.model, ctx.test),
        attack,
        images: await inversionImages(candidate.model, `ε=${eps}`, steps, ctx.seed),
        trainedOn: n,
      });
    } finally {
      candidate.model.dispose();
    }
  }
  return findings(rows, { what, skipped, delta, n, evaluate: sample.members.y.length, dims: imageSize(ctx.model.info.inputShape) });
}

/** Members and non-members (each) and test samples for the accuracy, within `queries` predictions. */
export function fitQueries(queries: number | null, evaluate: number, testRows: number): { evaluate: number; test: number } {
  if (queries === null || 2 * evaluate + testRows <= queries) return { evaluate, test: testRows };
  const test = Math.min(testRows, Math.max(100, Math.floor(queries / 5)));
  return { evaluate: Math.max(1, Math.min(evaluate, Math.floor((queries - test) / 2))), test };
}

function findings(rows: Row[], o: { what: string; skipped: number[]; delta: number; n: number; evaluate: number; dims: [number, number, number] | null }): Finding[] {
  const [base, ...dp] = rows;
  const pctOf = (v: number) => `${(v * 100).toFixed(2)}%`;
  const lira = 'LiRA with shadow models is far stronger at low false-positive rates and takes minutes: bulwark attack membership --model DIR --dataset D --shadows 16';
  const roc: Chart = {
    kind: 'line',
    title: 'Membership inference ROC (loss threshold)',
    xLabel: 'false-positive rate',
    yLabel: 'true-positive rate',
    series: [...rows.map((r) => ({ name: r.label, points: r.attack.roc })), { name: 'guessing', points: [[0, 0], [1, 1]] as [number, number][] }],
  };
  const out: Finding[] = [
    {
      area: 'privacy',
      id: 'privacy.membership-auc',
      title: 'Membership inference (loss threshold)',
      severity: base.attack.auc > 0.75 ? 'high' : base.attack.auc > AUC_THRESHOLD ? 'medium' : 'info',
      metric: 'attack ROC AUC',
      value: base.attack.auc,
      threshold: AUC_THRESHOLD,
      passed: base.attack.auc <= AUC_THRESHOLD,
      evidence: [
        `${o.evaluate} training examples against ${o.evaluate} held-out ones: AUC ${base.attack.auc.toFixed(3)}, TPR ${pctOf(base.attack.tprAt0_1Fpr)} at 0.1% FPR and ${pctOf(base.attack.tprAt1Fpr)} at 1% FPR`,
        `implied ε lower bound ${base.attack.empiricalEpsilon.toFixed(2)} (95% confidence): no DP guarantee below that could hold for this model`,
        lira,
      ],
      chart: roc,
    },
    {
      area: 'privacy',
      id: 'privacy.membership-tpr-low-fpr',
      title: 'Membership inference at a low false-positive rate',
      severity: 'info',
      metric: 'membership TPR at 0.1% FPR',
      value: base.attack.tprAt0_1Fpr,
      evidence: [
        `at the loss threshold that flags 0.1% of the ${o.evaluate} non-members, ${pctOf(base.attack.tprAt0_1Fpr)} of the ${o.evaluate} members are flagged (guessing: 0.1%)`,
        `with ${o.evaluate} non-members the rate is resolved to ${pctOf(1 / o.evaluate)}; ${lira}`,
      ],
    },
  ];
  if (dp.length > 0) {
    out.push({
      area: 'privacy',
      id: 'privacy.dp-sgd',
      title: 'Differentially private training (DP-SGD)',
      severity: 'info',
      metric: `test accuracy at ε=${dp[0].epsilon!.toFixed(2)}`,
      value: dp[0].accuracy,
      evidence: [
        `DP-SGD models of ${o.what}, each trained on ${o.n} examples for the audit (δ = ${o.delta}, Poisson sampling, PRV accountant)`,
        ...rows.map((r) => `${r.label}: test accuracy ${pctOf(r.accuracy)}, membership AUC ${r.attack.auc.toFixed(3)}, TPR@0.1%FPR ${pctOf(r.attack.tprAt0_1Fpr)}${r.epsilon === null ? ` (trained on ${r.trainedOn})` : ''}`),
        ...(o.skipped.length ? [`ε = ${o.skipped.join(', ')} skipped to keep the audit short; train one with: bulwark train --dp-epsilon E --out DIR`] : []),
        'train the full model privately with: bulwark train --dataset D --model mlp --dp-epsilon 3 --out DIR',
      ],
      chart: { kind: 'bar', title: 'Test accuracy: undefended vs DP-SGD', labels: rows.map((r) => r.label), values: rows.map((r) => r.accuracy), unit: 'accuracy', max: 1 },
    });
    const violated = dp.filter((r) => r.attack.empiricalEpsilon > r.epsilon!);
    out.push({
      area: 'privacy',
      id: 'privacy.dp-accounting',
      title: 'Privacy accounting is consistent with the attack',
      severity: violated.length ? 'high' : 'info',
      metric: 'DP models whose empirical ε exceeds the accounted ε',
      value: violated.length,
      threshold: 0,
      passed: violated.length === 0,
      evidence: dp.map((r) => `${r.label}: accounted ε ${r.epsilon!.toFixed(3)}, attack's ε lower bound ${r.attack.empiricalEpsilon.toFixed(3)}`),
    });
  }
  const images = rows.flatMap((r) => r.images);
  if (images.length > 0 && o.dims) {
    out.push({
      area: 'privacy',
      id: 'privacy.model-inversion',
      title: 'Model inversion (gradient ascent per class)',
      severity: 'info',
      metric: 'classes reconstructed',
      value: base.images.length,
      evidence: [
        'each image maximises one class\'s probability from a blank start, with a smoothness prior (MIFace-style); rows: undefended, then each DP model',
        'score them and write PNGs with: bulwark attack invert --model DIR --out DIR',
      ],
      chart: { kind: 'images', title: 'What each class looks like to the model', width: o.dims[1], height: o.dims[0], images },
    });
  }
  return out;
}

export const privacySection: AuditSection = {
  id: 'privacy',
  title: 'Privacy: membership inference, inversion and DP-SGD',
  threat: 'privacy',
  about: {
    tested: 'whether the model gives away which examples it was trained on, and what each class looks like to it; and what DP-SGD training would buy',
    how: 'a loss-threshold membership attack on training members against held-out non-members; DP-SGD models of the same architecture trained on a subset and attacked the same way; gradient-ascent inversion per class where gradients exist',
  },
  needs: {
    trainingData: true,
    queries: (ctx) => ({ min: 300, want: 2 * (ctx.quick ? 500 : 1000) + ctx.test.y.length }),
  },
  estimate: { full: 25, quick: 6 },
  applies(ctx) {
    if (!ctx.train) return "membership inference needs the model's training data; give the dataset it was trained on";
    return true;
  },
  run: (ctx) => privacyAuditFindings(ctx, ctx.quick ? { epsilons: [3], trainSubset: 2000, epochs: 5, evaluate: 500, inversionSteps: 50 } : {}),
};
