import { Command, InvalidArgumentError, Option } from 'commander';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { BulwarkError, Rng, checkInputShape, subset, writeFileAtomically, type Dataset, type FitOptions, type Model } from '../core/index.js';
import { loadDatasetFile, loadDatasetSpec, writeNpy } from '../data/index.js';
import { initTfjs, openModel } from '../engines/index.js';
import {
  ADVERSARIAL_TRAINING_ATTACKS,
  ATTACK_LOSSES,
  BLACK_BOX_ATTACKS,
  EVASION_ATTACKS,
  NORMS,
  adversarialTransform,
  certifiedAccuracy,
  certify,
  runEvasionAttack,
  summarizeEvasion,
  type AdversarialTrainingAttack,
  type AdversarialTrainingOptions,
  type AttackLoss,
  type ClipRange,
  type EvasionAttack,
  type EvasionResult,
  type Norm,
} from '../evasion/index.js';
import { collect, output, parsePositiveInt, parsePositiveNumber, pct, requireOption, withCommonOptions } from './common.js';
import { terminalProgress } from './progress-bar.js';

interface DataFlags {
  model?: string;
  dataset: string;
  label?: string;
  drop?: string[];
  samples?: number;
  apiKey?: string;
  json?: boolean;
  seed: number;
}

interface AttackFlags extends DataFlags {
  attack: EvasionAttack;
  eps?: number;
  norm?: Norm;
  budget?: number;
  steps: number;
  stepSize?: number;
  restarts: number;
  loss?: AttackLoss;
  target?: number;
  clip?: ClipRange;
  batchSize: number;
  save?: string;
}

interface CertifyFlags extends DataFlags {
  sigma?: number;
  n: number;
  n0: number;
  alpha: number;
  radii: number[];
  batchSize: number;
}

const BLACK_BOX_SAMPLES = 100;

/** Adds `attack evasion` to the attack group and the top-level `certify` command. */
export function registerEvasionCommands(program: Command, attack: Command): void {
  withCommonOptions(
    dataOptions(attack.command('evasion').description('craft adversarial examples against a model and measure its robust accuracy'))
      .addOption(new Option('--attack <name>', 'fgsm, pgd (need gradients), square (scores) or hsj (labels only)').choices([...EVASION_ATTACKS]).default('pgd'))
      .option('--eps <e>', 'largest perturbation, in input units (e.g. 0.1 for L∞ on [0,1] images); optional for hsj', parsePositiveNumber)
      .addOption(new Option('--norm <norm>', 'perturbation norm (default: linf; l2 for hsj)').choices([...NORMS]))
      .option('--budget <q>', 'square/hsj: model queries per sample', parsePositiveInt)
      .option('--steps <n>', 'pgd: gradient steps', parsePositiveInt, 40)
      .option('--step-size <x>', 'pgd: step size (default 2.5·eps/steps)', parsePositiveNumber)
      .option('--restarts <n>', 'pgd: runs from random starts', parsePositiveInt, 1)
      .addOption(new Option('--loss <loss>', 'fgsm/pgd: what the attack climbs: ce (cross-entropy, default) or margin (difference of logits, Carlini-Wagner; needs class gradients)').choices([...ATTACK_LOSSES]))
      .option('--target <class>', 'targeted attack: push every sample into this class (samples of that class are left out)', parseClassIndex)
      .option('--clip <min,max>', "valid input range (default 0,1 for data in [0,1]); 'none' for unbounded inputs", parseClip)
      .option('--batch-size <n>', 'samples per model call', parsePositiveInt, 256)
      .option('--save <dir>', 'write the adversarial examples (adversarial.npy, labels.npy, …) to this directory'),
  ).action(async (flags: AttackFlags) => {
    const progress = terminalProgress();
    const blackBox = BLACK_BOX_ATTACKS.includes(flags.attack);
    if (flags.attack !== 'hsj' && flags.eps === undefined) {
      throw new BulwarkError('E_USAGE', `--eps is required for ${flags.attack}: the largest perturbation allowed, e.g. --eps 0.1 with --norm linf on [0, 1] inputs`);
    }
    if (flags.budget !== undefined && !blackBox) {
      throw new BulwarkError('E_USAGE', `--budget counts queries of the black-box attacks (${BLACK_BOX_ATTACKS.join(', ')}); ${flags.attack} takes --steps instead`);
    }
    if (flags.loss !== undefined && blackBox) throw new BulwarkError('E_USAGE', `--loss chooses what fgsm and pgd climb; ${flags.attack} uses no gradients and takes no loss`);
    if (flags.save) await refuseFile(flags.save);
    const { model, data, close } = await openTarget(flags, blackBox ? BLACK_BOX_SAMPLES : Infinity);
    try {
      let test = data;
      if (flags.target !== undefined) {
        if (flags.target >= model.info.numClasses) {
          throw new BulwarkError('E_USAGE', `--target ${flags.target} is not a class of the model (0..${model.info.numClasses - 1})`);
        }
        const keep = Array.from(test.y.keys()).filter((i) => test.y[i] !== flags.target);
        if (keep.length === 0) throw new BulwarkError('E_USAGE', `every sample is already of class ${flags.target}; nothing to attack`);
        test = subset(test, keep);
      }
      const clip = resolveClip(flags.clip, test);
      const result = await runEvasionAttack(flags.attack, model, test.x, test.y, {
        eps: flags.eps as number,
        norm: flags.norm,
        clip,
        budget: flags.budget,
        steps: flags.steps,
        stepSize: flags.stepSize,
        restarts: flags.restarts,
        loss: flags.loss,
        targets: flags.target !== undefined ? new Int32Array(test.y.length).fill(flags.target) : undefined,
        seed: flags.seed,
        batchSize: flags.batchSize,
        progress,
      });
      const summary = summarizeEvasion(result, test.y);
      if (flags.save) await saveAdversarial(flags.save, result, test, summary);
      const report = { model: model.info.name, engine: model.info.engine, dataset: test.name, ...summary, clip, saved: flags.save ?? null };
      output(flags, report, () => humanAttack(report, result));
    } finally {
      await close();
    }
  });

  withCommonOptions(
    dataOptions(
      program.command('certify').description('certify L2 robustness radii with randomized smoothing (Cohen et al.): a smoothed classifier that may abstain'),
      '100',
      'the base model to smooth (predictions only, so a URL works too)',
    )
      .option('--sigma <s>', 'standard deviation of the Gaussian noise, in input units (e.g. 0.25)', parsePositiveNumber)
      .option('--n <n>', 'noisy copies per sample for the certificate', parsePositiveInt, 1000)
      .option('--n0 <n>', 'noisy copies per sample to pick the class', parsePositiveInt, 100)
      .option('--alpha <a>', 'chance that a certificate is wrong', parseAlpha, 0.001)
      .option('--radii <list>', 'radii to report certified accuracy at', parseRadii, [0, 0.25, 0.5, 0.75, 1])
      .option('--batch-size <n>', 'noisy copies per model call', parsePositiveInt, 500),
  ).action(async (flags: CertifyFlags) => {
    const sigma = requireOption(flags.sigma, '--sigma', 'the noise level to smooth with, e.g. --sigma 0.25');
    const progress = terminalProgress();
    const { model, data, close } = await openTarget(flags, 100);
    try {
      const r = await certify(model, data.x, { sigma, n: flags.n, n0: flags.n0, alpha: flags.alpha, batchSize: flags.batchSize, seed: flags.seed, progress });
      const samples = data.y.length;
      const certifiedRadii = Array.from(r.radius).filter((v, i) => r.predicted[i] === data.y[i]);
      const result = {
        model: model.info.name,
        engine: model.info.engine,
        dataset: data.name,
        sigma,
        n: flags.n,
        n0: flags.n0,
        alpha: flags.alpha,
        samples,
        accuracy: certifiedAccuracy(r, data.y, 0),
        abstained: r.predicted.filter((c) => c < 0).length / samples,
        meanCertifiedRadius: certifiedRadii.length ? certifiedRadii.reduce((a, b) => a + b, 0) / certifiedRadii.length : 0,
        // "1.0", not "1": integer-like keys would be listed first, out of order.
        certifiedAccuracy: Object.fromEntries(flags.radii.map((rad) => [radiusKey(rad), certifiedAccuracy(r, data.y, rad)])),
        seconds: r.seconds,
      };
      output(flags, result, () =>
        [
          `randomized smoothing of ${result.model} on ${samples} samples of ${result.dataset}: σ = ${sigma}, n = ${flags.n}, confidence ${1 - flags.alpha}`,
          `smoothed accuracy ${pct(result.accuracy)}, abstained on ${pct(result.abstained)}`,
          ...flags.radii.map((rad) => `certified accuracy at L2 radius ${rad}: ${pct(result.certifiedAccuracy[radiusKey(rad)])}`),
        ].join('\n'),
      );
    } finally {
      await close();
    }
  });
}

function dataOptions(cmd: Command, samplesDefault = 'all test samples; 100 for square/hsj', model = 'the model to attack'): Command {
  return cmd
    .option('--model <dir|file.onnx|url>', model)
    .option('--dataset <name|file>', "'digits' (its test split) or a .csv/.jsonl/.npy file (all of it)", 'digits')
    .option('--label <col>', 'label column of a .csv/.jsonl file (column index for .npy)')
    .option('--drop <cols>', 'columns to leave out of the features', collect)
    .option('--samples <n>', `how many samples to use, chosen with the seed (default: ${samplesDefault})`, parsePositiveInt)
    .option('--api-key <key>', 'API key for a remote model (or BULWARK_API_KEY)');
}

async function openTarget(flags: DataFlags, defaultSamples: number): Promise<{ model: Model; data: Dataset; close: () => Promise<void> }> {
  const spec = requireOption(flags.model, '--model', 'a model directory, an .onnx file or an http(s) URL');
  const all = flags.dataset === 'digits' ? (await loadDatasetSpec('digits')).test : await loadDatasetFile(flags.dataset, { label: flags.label, drop: flags.drop });
  if (!/^https?:/i.test(spec) && !/\.onnx$/i.test(spec)) await initTfjs();
  const { model } = await openModel(spec, { apiKey: flags.apiKey ?? process.env.BULWARK_API_KEY });
  const close = async () => {
    await (model as { dispose?: () => unknown }).dispose?.();
    await (model as { close?: () => unknown }).close?.();
  };
  try {
    checkInputShape(model, all.x, `dataset '${all.name}'`);
    if (all.classNames.length > model.info.numClasses) {
      throw new BulwarkError('E_DATA_SHAPE', `dataset '${all.name}' has ${all.classNames.length} classes but model '${model.info.name}' outputs ${model.info.numClasses}`);
    }
    const want = Math.min(flags.samples ?? defaultSamples, all.y.length);
    const data = want >= all.y.length ? all : subset(all, Int32Array.from(new Rng(flags.seed).permutation(all.y.length).subarray(0, want)).sort());
    return { model, data, close };
  } catch (e) {
    await close();
    throw e;
  }
}

/** [0, 1] when the data fits in it; otherwise the user has to say what the valid range is. */
function resolveClip(clip: ClipRange | undefined, data: Dataset): ClipRange {
  if (clip !== undefined) return clip;
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of data.x.data) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (lo < 0 || hi > 1) {
    throw new BulwarkError(
      'E_USAGE',
      `the values of '${data.name}' run from ${lo} to ${hi}, outside [0, 1], so the model's valid input range is unknown: ` +
        `give it with --clip MIN,MAX (or --clip none for unbounded inputs); eps is measured in the same units`,
    );
  }
  return [0, 1];
}

async function saveAdversarial(dir: string, r: EvasionResult, data: Dataset, summary: object): Promise<void> {
  await fs.mkdir(dir, { recursive: true }).catch((e: Error) => {
    throw new BulwarkError('E_OUTPUT', `cannot create ${dir}: ${e.message}`);
  });
  const n = data.y.length;
  await writeNpy(path.join(dir, 'adversarial.npy'), r.adversarial.data, [...r.adversarial.shape]);
  await writeNpy(path.join(dir, 'labels.npy'), Int32Array.from(data.y), [n]);
  await writeNpy(path.join(dir, 'predicted.npy'), Int32Array.from(r.predicted), [n]);
  await writeNpy(path.join(dir, 'success.npy'), Uint8Array.from(r.success, Number), [n]);
  await writeNpy(path.join(dir, 'norms.npy'), Float64Array.from(r.norms), [n]);
  if (r.queries) await writeNpy(path.join(dir, 'queries.npy'), Int32Array.from(r.queries), [n]);
  await writeFileAtomically(path.join(dir, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
}

async function refuseFile(dir: string): Promise<void> {
  const st = await fs.stat(dir).catch(() => null);
  if (st && !st.isDirectory()) throw new BulwarkError('E_USAGE', `--save ${dir} is a file; give a directory for the adversarial examples`);
}

function humanAttack(r: ReturnType<typeof summarizeEvasion> & { model: string; dataset: string; saved: string | null }, result: EvasionResult): string {
  const lines = [
    `${r.attack} (${r.norm}${r.eps !== null ? `, eps ${r.eps}` : ''}${r.targeted ? ', targeted' : ''}) against ${r.model} on ${r.samples} samples of ${r.dataset}`,
    `clean accuracy   ${pct(r.cleanAccuracy)}`,
    `robust accuracy  ${pct(r.robustAccuracy)}`,
    `success rate     ${pct(r.successRate)} of the correctly classified samples`,
  ];
  if (r.medianPerturbation !== null) lines.push(`median perturbation ${r.medianPerturbation.toPrecision(3)} (${r.norm}) of the successful attacks`);
  if (result.queries) lines.push(`queries per sample: mean ${r.meanQueries?.toFixed(1)}, median ${r.medianQueries}`);
  lines.push(`${r.seconds.toFixed(1)} s${r.saved ? `; adversarial examples saved to ${r.saved}` : ''}`);
  return lines.join('\n');
}

function radiusKey(r: number): string {
  return Number.isInteger(r) ? r.toFixed(1) : String(r);
}

function parseClip(value: string): ClipRange {
  if (value.trim().toLowerCase() === 'none') return null;
  const parts = value.split(',').map((s) => Number(s.trim()));
  if (parts.length !== 2 || parts.some((v) => !Number.isFinite(v)) || !(parts[0] < parts[1])) {
    throw new InvalidArgumentError(`'${value}' is not MIN,MAX with MIN < MAX (or 'none').`);
  }
  return [parts[0], parts[1]];
}

function parseClassIndex(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) throw new InvalidArgumentError(`'${value}' is not a class index (0, 1, …).`);
  return n;
}

function parseAlpha(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !(n > 0 && n < 0.5)) throw new InvalidArgumentError(`'${value}' is not a probability in (0, 0.5).`);
  return n;
}

function parseRadii(value: string): number[] {
  const parts = value.split(',').map((s) => Number(s.trim()));
  if (parts.length === 0 || parts.some((v) => !Number.isFinite(v) || v < 0)) throw new InvalidArgumentError(`'${value}' is not a list of non-negative radii.`);
  return parts;
}

function parseRatio(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !(n > 0 && n <= 1)) throw new InvalidArgumentError(`'${value}' is not a share in (0, 1].`);
  return n;
}

/** The adversarial-training flags of `bulwark train`. */
export function adversarialTrainOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option('--adversarial <attack>', 'train on adversarial examples made against the current weights: pgd (Madry et al., PGD-10), fgsm-rs (fast: FGSM from a random start, ~10x cheaper, Wong et al.), fgsm').choices([...ADVERSARIAL_TRAINING_ATTACKS]),
    )
    .option('--eps <e>', 'with --adversarial: L∞ size of the training perturbations, for inputs in [0, 1]', parsePositiveNumber)
    .option('--adv-ratio <f>', 'with --adversarial: share of each batch made adversarial (default 1; 0.5 mixes clean and adversarial)', parseRatio);
}

export interface AdversarialTrainFlags {
  adversarial?: AdversarialTrainingAttack;
  eps?: number;
  advRatio?: number;
  seed: number;
}

/**
 * Checks the adversarial-training flags and returns what `fit` needs, plus a description for
 * the result and the model card; nothing when --adversarial is absent.
 */
export function adversarialFit(
  flags: AdversarialTrainFlags,
  model: Model,
  train: Dataset,
):
  | { transformBatch: NonNullable<FitOptions['transformBatch']>; described: Record<string, string | number>; fast?: AdversarialTrainingOptions }
  | undefined {
  if (!flags.adversarial) {
    if (flags.eps !== undefined || flags.advRatio !== undefined) throw new BulwarkError('E_USAGE', `--eps and --adv-ratio only apply with --adversarial ${ADVERSARIAL_TRAINING_ATTACKS.join('|')}`);
    return undefined;
  }
  const eps = requireOption(flags.eps, '--eps', `the size of the adversarial perturbations, e.g. --adversarial ${flags.adversarial} --eps 0.1`);
  resolveClip(undefined, train);
  if (eps >= 1) throw new BulwarkError('E_USAGE', `--eps ${eps} covers the whole [0, 1] input range; adversarial training uses small sizes such as 0.1 or 0.3`);
  const steps = flags.adversarial === 'pgd' ? 10 : 1;
  const ratio = flags.advRatio ?? 1;
  return {
    transformBatch: adversarialTransform(model, { attack: flags.adversarial, eps, ratio, steps, seed: flags.seed }),
    described: { attack: flags.adversarial, eps, norm: 'linf', steps, ratio },
    ...(flags.adversarial === 'fgsm-rs' ? { fast: { attack: 'fgsm-rs' as const, eps, ratio, seed: flags.seed } } : {}),
  };
}
