import { Rng, sampleSize, subset, type Chart, type Dataset, type Finding, type Model, type Samples, type Severity } from '../../core/index.js';
import {
  FeatureSqueezingDetector,
  canTakeGradients,
  certifiedAccuracy,
  certify,
  fgsm,
  normPpf,
  pgd,
  square,
  summarizeEvasion,
  type EvasionResult,
} from '../../evasion/index.js';
import { TfjsModel } from '../../engines/index.js';
import type { AuditContext, AuditSection } from '../sections.js';

/** Robust accuracy at ε = 0.1 (L∞, inputs in [0, 1]) below which the model counts as fragile. */
const MIN_ROBUST = 0.5;
const HEADLINE_EPS = 0.1;
const EPS_GRID = [0.02, 0.05, 0.1, 0.15, 0.2, 0.3];
const QUICK_EPS_GRID = [0.05, 0.1, 0.2];
const SIGMA = 0.25;
const RADII = [0, 0.1, 0.25, 0.5, 0.75];

/**
 * Evasion: how far small input changes move the model. On a subset of the test data (the
 * whole section must stay within seconds): FGSM and PGD robust accuracy against ε, example
 * adversarial digits, a score-only Square attack, the feature-squeezing detector's rates and
 * randomized-smoothing certificates. The CLI runs each at full size.
 */
export const evasionSection: AuditSection = {
  id: 'evasion',
  title: 'Evasion (adversarial examples)',
  threat: 'evasion',
  about: {
    tested: 'how far small, bounded changes to an input move the model: robust accuracy against the size of the change, and what detection and certification recover',
    how: 'white-box FGSM and PGD (L∞) over a grid of ε on a seeded subset of the held-out data, a score-only Square attack, the feature-squeezing detector and randomized-smoothing certificates',
  },
  needs: { capabilities: ['lossGradient'] },
  estimate: { full: 5, quick: 3 },
  applies(ctx) {
    if (!canTakeGradients(ctx.model)) {
      return (
        `white-box attacks need gradients, which ${ctx.model.info.name} (${ctx.model.info.engine}) does not offer; ` +
        `attack it through its answers with 'bulwark attack evasion --model ${ctx.model.info.name} --attack square --eps 0.1' (scores) or '--attack hsj' (labels only)`
      );
    }
    const [lo, hi] = valueRange(ctx.test.x);
    if (lo < 0 || hi > 1) {
      return `the inputs run from ${lo} to ${hi}, not [0, 1], so the size of a perturbation has no agreed scale; run 'bulwark attack evasion --clip MIN,MAX --eps E' with this data's valid range`;
    }
    return true;
  },
  async run(ctx: AuditContext): Promise<Finding[]> {
    const rng = new Rng(ctx.seed);
    const model = ctx.model;
    const order = rng.permutation(ctx.test.y.length);
    // A convolutional model (~1.5 ms per digit, against ~0.1 for the MLP) gets fewer samples and
    // steps so that the section keeps its time; decided from the architecture, not a timing, so
    // that the same seed gives the same report. The evidence states which were used.
    const slow = Boolean(ctx.quick) || (model instanceof TfjsModel && model.net.layers.some((l) => /conv/i.test(l.getClassName())));
    const count = Math.min(slow ? 100 : 200, order.length);
    const steps = slow ? 10 : 20;
    const grid = ctx.quick ? QUICK_EPS_GRID : EPS_GRID;
    const data = subset(ctx.test, order.subarray(0, count));
    const spare = subset(ctx.test, order.subarray(count, Math.min(order.length, 2 * count)));

    ctx.progress.start('evasion: FGSM and PGD', grid.length * 2);
    const fgsmCurve: [number, number][] = [];
    const pgdCurve: [number, number][] = [];
    let headline: EvasionResult | undefined;
    let clean = NaN;
    for (const eps of grid) {
      const f = summarizeEvasion(await fgsm(model, data.x, data.y, { eps, seed: ctx.seed }), data.y);
      ctx.progress.advance(1);
      const r = await pgd(model, data.x, data.y, { eps, steps, seed: ctx.seed });
      const p = summarizeEvasion(r, data.y);
      ctx.progress.advance(1);
      clean = p.cleanAccuracy;
      fgsmCurve.push([eps, f.robustAccuracy]);
      pgdCurve.push([eps, p.robustAccuracy]);
      if (eps === HEADLINE_EPS) headline = r;
    }
    ctx.progress.done();
    // The built-in target's adversarially trained twin, attacked with the very same PGD.
    let hardenedCurve: [number, number][] | undefined;
    let hardenedClean = NaN;
    if (ctx.hardened) {
      const twin = await ctx.hardened();
      try {
        ({ curve: hardenedCurve, clean: hardenedClean } = await pgdCurveOf(twin.model, data, grid, steps, ctx));
      } finally {
        (twin.model as Model & { dispose?: () => void }).dispose?.();
      }
    }
    const findings: Finding[] = [];
    const h = summarizeEvasion(headline!, data.y);
    const fragile = h.robustAccuracy < MIN_ROBUST;
    const severity: Severity = !fragile ? 'info' : h.robustAccuracy < 0.2 ? 'high' : 'medium';
    findings.push({
      area: 'evasion',
      id: 'evasion.pgd-robust-accuracy',
      title: `Robust accuracy under PGD (L∞, ε = ${HEADLINE_EPS})`,
      severity,
      metric: 'robust accuracy',
      value: h.robustAccuracy,
      threshold: MIN_ROBUST,
      passed: !fragile,
      evidence: [
        `PGD with ${steps} steps (step 2.5·ε/${steps}, random start) on ${count} test samples: accuracy falls from ${pct(clean)} to ${pct(h.robustAccuracy)}; ` +
          `${pct(h.successRate)} of the correctly classified samples were turned by changing no pixel by more than ${HEADLINE_EPS}`,
        `FGSM (one step) at the same ε leaves ${pct(fgsmCurve.find(([e]) => e === HEADLINE_EPS)![1])}`,
        `robust accuracy by ε (PGD): ${pgdCurve.map(([e, a]) => `${e}: ${pct(a)}`).join(', ')}`,
        `full size: bulwark attack evasion --model MODEL --attack pgd --eps ${HEADLINE_EPS} --steps 40 --restarts 5`,
        ...(hardenedCurve
          ? [
              `the same MLP after fast adversarial training (FGSM from a random start at ε = ${HEADLINE_EPS}, Wong et al. 2020) keeps ${pct(hardenedCurve.find(([e]) => e === HEADLINE_EPS)![1])} ` +
                `under the same PGD (clean ${pct(hardenedClean)}): train your own with bulwark train --model mlp --adversarial fgsm-rs --eps ${HEADLINE_EPS} --out models/mlp-adv`,
            ]
          : [
              `an adversarially trained model to compare with (about a minute for the digits MLP): ` +
                `bulwark train --model mlp --adversarial fgsm-rs --eps ${HEADLINE_EPS} --out models/mlp-adv, then bulwark audit --model models/mlp-adv`,
            ]),
      ],
      chart: {
        kind: 'line',
        title: `Accuracy under attack against ε (L∞, ${count} test samples)`,
        xLabel: 'ε (largest change per input value)',
        yLabel: 'accuracy',
        series: [
          { name: 'FGSM', points: [[0, clean], ...fgsmCurve] },
          { name: `PGD-${steps}`, points: [[0, clean], ...pgdCurve] },
          ...(hardenedCurve ? [{ name: `PGD-${steps}, adversarially trained`, points: [[0, hardenedClean], ...hardenedCurve] as [number, number][] }] : []),
        ],
      },
    });

    const images = exampleImages(data, headline!);
    if (images) {
      findings.push({
        area: 'evasion',
        id: 'evasion.adversarial-examples',
        title: `Adversarial examples (PGD, ε = ${HEADLINE_EPS})`,
        severity: 'info',
        metric: 'median L2 size of a successful perturbation',
        value: h.medianPerturbation === null ? 'none' : round(medianL2(data.x, headline!)),
        evidence: ['each row: the clean input and its class, the adversarial input and the class the model now gives, and the perturbation (grey is no change)'],
        chart: images,
      });
    }

    findings.push(await squareFinding(ctx, data, rng));
    findings.push(await squeezingFinding(ctx, data, spare.y.length > 0 ? spare : data, headline!));
    findings.push(await smoothingFinding(ctx, subset(data, range(Math.min(slow ? 30 : 60, count))), ctx.quick ? 200 : 500));
    return findings;
  },
};

async function pgdCurveOf(model: Model, data: Dataset, grid: number[], steps: number, ctx: AuditContext): Promise<{ curve: [number, number][]; clean: number }> {
  ctx.progress.start('evasion: PGD on the adversarially trained model', grid.length);
  const curve: [number, number][] = [];
  let clean = NaN;
  for (const eps of grid) {
    const s = summarizeEvasion(await pgd(model, data.x, data.y, { eps, steps, seed: ctx.seed }), data.y);
    clean = s.cleanAccuracy;
    curve.push([eps, s.robustAccuracy]);
    ctx.progress.advance(1);
  }
  ctx.progress.done();
  return { curve, clean };
}

async function squareFinding(ctx: AuditContext, data: Dataset, rng: Rng): Promise<Finding> {
  const few = subset(data, range(Math.min(ctx.quick ? 20 : 50, data.y.length)));
  const budget = ctx.quick ? 300 : 1000;
  const r = await square(ctx.model, few.x, few.y, { eps: HEADLINE_EPS, budget, seed: rng.nextUint32() >>> 1, progress: ctx.progress });
  const s = summarizeEvasion(r, few.y);
  return {
    area: 'evasion',
    id: 'evasion.square-success-rate',
    title: `Black-box attack through the predictions (Square, ε = ${HEADLINE_EPS})`,
    severity: 'info',
    metric: 'success rate',
    value: s.successRate,
    evidence: [
      `the Square attack uses only the model's scores, as anyone with API access could: with at most ${budget} queries per sample it turned ${pct(s.successRate)} of ${few.y.length} correctly classified test samples (median ${s.medianQueriesSuccessful ?? '—'} queries when it succeeded)`,
      `robust accuracy ${pct(s.robustAccuracy)}; a larger budget does more: bulwark attack evasion --model MODEL --attack square --eps ${HEADLINE_EPS} --budget 5000`,
    ],
  };
}

async function squeezingFinding(ctx: AuditContext, data: Dataset, calibration: Dataset, pgdResult: EvasionResult): Promise<Finding> {
  const fpr = 0.05;
  const detector = new FeatureSqueezingDetector(ctx.model);
  ctx.progress.start('evasion: feature squeezing', 2);
  await detector.calibrate(calibration.x, fpr);
  ctx.progress.advance(1);
  const [onAdv, onClean] = [await detector.detect(pgdResult.adversarial), await detector.detect(data.x)];
  ctx.progress.done();
  const turned = range(data.y.length).filter((i) => pgdResult.success[i] && pgdResult.cleanPredicted[i] === data.y[i]);
  const detected = turned.length ? turned.filter((i) => onAdv.flagged[i]).length / turned.length : NaN;
  const falsePositives = onClean.flagged.filter(Boolean).length / data.y.length;
  return {
    area: 'evasion',
    id: 'evasion.feature-squeezing',
    title: 'Feature-squeezing detector',
    severity: 'info',
    metric: `detection rate of PGD examples at ${pct(fpr)} false positives`,
    value: Number.isFinite(detected) ? detected : 'no adversarial examples',
    evidence: [
      `squeezers: ${detector.squeezers.map((s) => s.name).join(', ')}; score: largest L1 change of the prediction; threshold ${round(detector.threshold!)} set on ${calibration.y.length} other clean test samples at ${pct(fpr)} false positives`,
      `flags ${pct(detected)} of ${turned.length} successful PGD examples (ε = ${HEADLINE_EPS}) and ${pct(falsePositives)} of the ${data.y.length} clean samples they came from`,
      'an attacker who knows the detector can adapt to it; treat this rate as an upper bound',
    ],
    chart: { kind: 'bar', title: 'Feature squeezing: share flagged', labels: ['PGD examples', 'clean samples'], values: [Number.isFinite(detected) ? detected : 0, falsePositives], unit: 'share flagged', max: 1 },
  };
}

async function smoothingFinding(ctx: AuditContext, data: Dataset, n: number): Promise<Finding> {
  const alpha = 0.001;
  const r = await certify(ctx.model, data.x, { sigma: SIGMA, n, n0: 50, alpha, seed: ctx.seed, progress: ctx.progress });
  const curve: [number, number][] = RADII.map((rad) => [rad, certifiedAccuracy(r, data.y, rad)]);
  const at = (rad: number) => curve.find(([x]) => x === rad)![1];
  // The best lower bound n unanimous votes can give is alpha^(1/n): no radius beyond σ·Φ⁻¹ of it.
  const cap = SIGMA * normPpf(Math.pow(alpha, 1 / n));
  return {
    area: 'evasion',
    id: 'evasion.certified-accuracy',
    title: `Certified robustness (randomized smoothing, σ = ${SIGMA})`,
    severity: 'info',
    metric: 'certified accuracy at L2 radius 0.25',
    value: at(0.25),
    evidence: [
      `the smoothed classifier (majority vote under Gaussian noise σ = ${SIGMA}) is right on ${pct(at(0))} of ${data.y.length} test samples and abstains on ${pct(r.predicted.filter((c) => c < 0).length / data.y.length)}; ` +
        `${pct(at(0.25))} are right with a certified L2 radius of at least 0.25 (confidence ${1 - alpha})`,
      `with ${n} noisy copies per sample no radius above ${round(cap)} can be certified; more copies and a model trained on noise certify more: bulwark certify --model MODEL --sigma ${SIGMA} --n 10000 --samples 500`,
    ],
    chart: { kind: 'line', title: `Certified accuracy against L2 radius (σ = ${SIGMA}, n = ${n})`, xLabel: 'L2 radius', yLabel: 'certified accuracy', series: [{ name: `σ = ${SIGMA}`, points: curve }] },
  };
}

/** Up to four turned samples: clean, adversarial, and the perturbation mapped to grey. */
function exampleImages(data: Dataset, r: EvasionResult): Chart | undefined {
  const shape = data.x.shape.slice(1);
  if (!(shape.length === 2 || (shape.length === 3 && (shape[2] === 1 || shape[2] === 3)))) return undefined;
  const [h, w, c] = [shape[0], shape[1], shape[2] ?? 1];
  const d = sampleSize(data.x);
  const names = data.classNames;
  const picks = range(data.y.length)
    .filter((i) => r.success[i] && r.cleanPredicted[i] === data.y[i])
    .slice(0, 4);
  if (picks.length === 0) return undefined;
  const eps = r.eps ?? 1;
  const grey = (src: Float32Array, off: number, f: (v: number, j: number) => number) =>
    Array.from({ length: h * w }, (_, p) => {
      let s = 0;
      for (let ch = 0; ch < c; ch++) s += f(src[off + p * c + ch], off + p * c + ch);
      return Math.min(1, Math.max(0, s / c));
    });
  const images = picks.flatMap((i) => [
    { caption: `clean: ${names[data.y[i]] ?? data.y[i]}`, pixels: grey(data.x.data, i * d, (v) => v) },
    { caption: `adversarial: ${names[r.predicted[i]] ?? r.predicted[i]}`, pixels: grey(r.adversarial.data, i * d, (v) => v) },
    { caption: 'perturbation', pixels: grey(r.adversarial.data, i * d, (v, j) => 0.5 + (v - data.x.data[j]) / (2 * eps)) },
  ]);
  return { kind: 'images', title: `Adversarial examples (PGD, ε = ${eps}): clean, adversarial, perturbation`, width: w, height: h, images };
}

function medianL2(x: Samples, r: EvasionResult): number {
  const d = sampleSize(x);
  const sizes: number[] = [];
  for (let i = 0; i < x.shape[0]; i++) {
    if (!r.success[i]) continue;
    let s = 0;
    for (let j = i * d; j < (i + 1) * d; j++) s += (r.adversarial.data[j] - x.data[j]) ** 2;
    sizes.push(Math.sqrt(s));
  }
  sizes.sort((a, b) => a - b);
  return sizes.length ? sizes[Math.floor(sizes.length / 2)] : NaN;
}

function valueRange(x: Samples): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of x.data) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

function pct(x: number): string {
  return Number.isFinite(x) ? `${(x * 100).toFixed(1)}%` : '—';
}

function round(x: number): number {
  return Number(x.toPrecision(3));
}
