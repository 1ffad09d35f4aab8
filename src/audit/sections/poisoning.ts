import { Rng, subset, type Chart, type Finding } from '../../core/index.js';
import {
  backdoorMetrics,
  cleanAccuracy,
  detectionRates,
  neuralCleanse,
  poison,
  rocAuc,
  spectralSignatures,
  triggerImage,
  type Trigger,
} from '../../poisoning/index.js';
import { createZooModel } from '../../zoo/index.js';
import type { AuditContext, AuditSection } from '../sections.js';

const TRAIN_ROWS = 4000;
const TEST_ROWS = 1000;
const EPOCHS = 8;
const RATE = 0.1;
const TARGET = 0;
/** Attack success after the defence above which the defence counts as failed. */
const MAX_ASR_AFTER = 0.05;
const NC_STEPS = 200;
/** --quick leaves out Neural Cleanse only: fewer rows or epochs leave the backdoor too weak for spectral signatures to see, which would grade the defence on a broken experiment. */

const FULL_RUN =
  "full size: 'bulwark attack poison --dataset digits --kind badnets --rate 0.1 --target 0 --out poisoned.csv', " +
  "'bulwark train --dataset poisoned.csv --label label --drop poisoned --out poisoned-model', then " +
  "'bulwark model scan-backdoor --model poisoned-model --dataset poisoned.csv --label label --drop poisoned --trigger-out trigger.png'";

/**
 * Poisoning, shown end to end on a copy of the training data: a BadNets backdoor is planted
 * in a subset, an MLP trained on it, the attack measured, spectral signatures run on the
 * training rows, the model retrained on what they keep, and the attack measured again, with
 * BackdoorBench's names (clean accuracy, attack success rate, robust accuracy; detection
 * TPR/FPR and AUROC). Neural Cleanse then reverse-engineers the trigger if time allows.
 * The audited model itself is not retrained: this measures the defence, on this data.
 */
export const poisoningSection: AuditSection = {
  id: 'poisoning',
  title: 'Data poisoning and backdoors',
  threat: 'poisoning',
  about: {
    tested: 'whether a backdoor planted in this training data would survive, and whether the defences find it',
    how: 'a BadNets patch is planted in 10% of a seeded copy of the training data; an MLP trained on it, spectral signatures run on its rows, the model retrained on the rows they keep, and the attack measured before and after; Neural Cleanse then reverse-engineers the trigger',
  },
  needs: { trainingData: true },
  estimate: { full: 12, quick: 7 },
  applies(ctx) {
    if (!ctx.train) return "the training data are not known, so no poisoned copy can be made; scan a dataset with 'bulwark data scan FILE --label COL'";
    if (ctx.train.x.shape.length < 3) return "a patch trigger needs image inputs; scan tabular data with 'bulwark data scan FILE --label COL' and try 'bulwark attack poison --kind label-flip'";
    if (ctx.train.classNames.length < 3) return 'backdoor detection compares classes: it needs at least 3';
    return true;
  },
  async run(ctx: AuditContext): Promise<Finding[]> {
    const train = ctx.train!;
    const rng = new Rng(ctx.seed);
    const ds = subset(train, rng.permutation(train.y.length).subarray(0, Math.min(TRAIN_ROWS, train.y.length)));
    const test = subset(ctx.test, rng.permutation(ctx.test.y.length).subarray(0, Math.min(TEST_ROWS, ctx.test.y.length)));
    const p = await poison(ds, { kind: 'badnets', rate: RATE, target: TARGET, seed: ctx.seed });
    const trigger = p.trigger!;
    const targetOf = p.targetOf!;
    const n = ds.y.length;
    const truth = new Uint8Array(n);
    for (const i of p.poisonedIndices) truth[i] = 1;
    const inputShape = ds.x.shape.slice(1);
    const k = ds.classNames.length;
    const what = `${n} training rows of '${train.name}' (seeded subset), ${p.poisonedIndices.length} poisoned (${p.description}); MLP, ${EPOCHS} epochs; measured on ${test.y.length} test rows`;

    ctx.progress.start('poisoning: training on poisoned data', 1);
    const poisoned = createZooModel('mlp', { inputShape, numClasses: k, seed: ctx.seed });
    let retrained: ReturnType<typeof createZooModel> | null = null;
    try {
      await poisoned.fit(p.dataset, { epochs: EPOCHS, seed: ctx.seed });
      ctx.progress.done();
      const before = { cacc: await cleanAccuracy(poisoned, test), ...(await backdoorMetrics(poisoned, test, trigger, targetOf)) };

      const spectral = await spectralSignatures(poisoned, p.dataset, { seed: ctx.seed, progress: ctx.progress });
      const rates = detectionRates(spectral.flagged, truth);
      const auroc = rocAuc(spectral.score, truth);
      const keep = [...spectral.flagged.keys()].filter((i) => !spectral.flagged[i]);

      ctx.progress.start('poisoning: retraining on the rows kept', 1);
      retrained = createZooModel('mlp', { inputShape, numClasses: k, seed: ctx.seed });
      await retrained.fit(subset(p.dataset, keep), { epochs: EPOCHS, seed: ctx.seed });
      ctx.progress.done();
      const after = { cacc: await cleanAccuracy(retrained, test), ...(await backdoorMetrics(retrained, test, trigger, targetOf)) };

      const className = ds.classNames[TARGET];
      const findings: Finding[] = [
        {
          area: 'poisoning',
          id: 'poisoning.backdoor-planted',
          title: `A BadNets backdoor planted in ${pctOf(RATE)} of the training data`,
          severity: before.asr >= 0.5 ? 'high' : 'info',
          metric: 'attack success rate (no defence)',
          value: before.asr,
          evidence: [
            what,
            `clean accuracy (C-Acc) ${pctOf(before.cacc)}; attack success rate (ASR) ${pctOf(before.asr)} of ${before.evaluated} triggered test inputs classified '${className}'; robust accuracy (RA) ${pctOf(before.robustAccuracy)}`,
            'a model trained on data nobody checked can carry a trigger its accuracy does not reveal',
            FULL_RUN,
          ],
          chart: imagesChart('The planted trigger', [{ caption: `planted: ${trigger.description}`, trigger }]),
        },
        {
          area: 'poisoning',
          id: 'poisoning.detection-recall',
          title: 'Spectral signatures find the poisoned training rows',
          severity: rates.recall >= 0.9 ? 'info' : 'medium',
          metric: 'detection TPR (share of poisoned rows found)',
          value: rates.recall,
          threshold: 0.9,
          passed: rates.recall >= 0.9,
          evidence: [
            `representations at layer '${spectral.layer}', centred per class, projected on the top singular vector; classes judged infected: ${spectral.infectedClasses.map((c) => `'${ds.classNames[c]}'`).join(', ') || 'none'}`,
            `TPR ${pctOf(rates.tpr)} (${rates.tp} of ${rates.positives} poisoned rows), FPR ${pctOf(rates.fpr)} (${rates.fp} of ${rates.negatives} clean rows), AUROC ${rocAuc(spectral.score, truth).toFixed(3)}`,
            ...spectral.classes.filter((c) => c.infected).map((c) => `class '${c.className}': suspect end ${c.suspectRows} of ${c.rows} rows, ${pctOf(c.suspectPersistence)} of its superimposed copies keep the class against ${pctOf(c.otherPersistence)} for the rest`),
          ],
        },
        {
          area: 'poisoning',
          id: 'poisoning.asr-after-defence',
          title: 'Attack success after removing the flagged rows and retraining',
          severity: after.asr <= MAX_ASR_AFTER ? 'info' : 'high',
          metric: 'attack success rate (after defence)',
          value: after.asr,
          threshold: MAX_ASR_AFTER,
          passed: after.asr <= MAX_ASR_AFTER,
          evidence: [
            `${keep.length} of ${n} rows kept; retrained the same way`,
            `ASR ${pctOf(before.asr)} → ${pctOf(after.asr)}; C-Acc ${pctOf(before.cacc)} → ${pctOf(after.cacc)}; RA ${pctOf(before.robustAccuracy)} → ${pctOf(after.robustAccuracy)}`,
            `detection AUROC ${auroc.toFixed(3)}`,
          ],
          chart: {
            kind: 'bar',
            title: 'Before and after spectral-signature filtering',
            labels: ['C-Acc before', 'C-Acc after', 'ASR before', 'ASR after'],
            values: [before.cacc, after.cacc, before.asr, after.asr],
            unit: 'share of test inputs',
            max: 1,
          },
        },
      ];

      if (!ctx.quick) {
        const nc = await neuralCleanse(poisoned, test, { steps: NC_STEPS, batchSize: 16, seed: ctx.seed, progress: ctx.progress });
        const worst = [...nc.triggers].sort((a, b) => b.anomalyIndex - a.anomalyIndex)[0];
        const namesTarget = nc.flagged.length === 1 && nc.flagged[0] === TARGET;
        findings.push({
          area: 'poisoning',
          id: 'poisoning.neural-cleanse',
          title: 'Neural Cleanse reverse-engineers the trigger',
          severity: namesTarget ? 'info' : 'low',
          metric: 'classes flagged (anomaly index > 2)',
          value: nc.flagged.map((c) => ds.classNames[c]).join(', ') || 'none',
          evidence: [
            `smallest mask moving 95% of clean inputs to each class, ${NC_STEPS} steps of 16 inputs per class on the poisoned model (the CLI runs 300 of 32)`,
            `mask L1 per class: ${nc.triggers.map((t) => `'${t.className}' ${t.maskL1.toFixed(1)} (index ${t.anomalyIndex.toFixed(2)})`).join(', ')}`,
            namesTarget ? `it names class '${className}', the planted target, and no other` : `the planted target was '${className}'`,
          ],
          chart: imagesChart('Trigger as planted and as reverse-engineered', [
            { caption: 'planted', trigger },
            { caption: `reverse-engineered for '${worst.className}'`, trigger: worst.trigger },
          ]),
        });
      } else {
        findings.push({
          area: 'poisoning',
          id: 'poisoning.neural-cleanse',
          title: 'Neural Cleanse: not run',
          severity: 'info',
          metric: 'status',
          value: 'skipped',
          evidence: ["not run with --quick; run it with 'bulwark model scan-backdoor --methods nc'"],
        });
      }
      return findings;
    } finally {
      poisoned.dispose();
      retrained?.dispose();
    }
  },
};

function imagesChart(title: string, items: { caption: string; trigger: Trigger }[]): Chart | undefined {
  const images = items.map((it) => ({ caption: it.caption, image: triggerImage(it.trigger) })).filter((x) => x.image);
  if (images.length === 0) return undefined;
  const { width, height } = images[0].image!;
  return { kind: 'images', title, width, height, images: images.map((x) => ({ caption: x.caption, pixels: x.image!.pixels })) };
}

function pctOf(v: number): string {
  return `${(v * 100).toFixed(1)}%`;
}
