import { Command, InvalidArgumentError, Option } from 'commander';
import path from 'node:path';
import { BulwarkError, checkInputShape, encodeGreyPng, writeDirAtomically, type Dataset, type Model } from '../core/index.js';
import { loadDatasetSpec } from '../data/index.js';
import { initTfjs, loadTfjsModel, openModel, TfjsModel, type ModelCard } from '../engines/index.js';
import {
  invertModel,
  labelOnlyAttack,
  liraAttack,
  lossThresholdAttack,
  membershipSample,
  scoreInversion,
  type MembershipResult,
  type ShadowArchitecture,
} from '../privacy/index.js';
import { createZooModel, defaultEpochs, isZooArchitecture, ZOO_ARCHITECTURES } from '../zoo/index.js';
import { collect, output, parsePositiveInt, pct, requireOption, withCommonOptions } from './common.js';
import { terminalProgress } from './progress-bar.js';

interface TargetFlags {
  model?: string;
  dataset: string;
  label?: string;
  drop?: string[];
  apiKey?: string;
  json?: boolean;
  seed: number;
}

interface MembershipFlags extends TargetFlags {
  attack: 'all' | 'loss' | 'label-only' | 'lira';
  shadows: number;
  shadowModel?: string;
  shadowEpochs?: number;
  evaluate: number;
  workers?: number;
}

interface InvertFlags extends TargetFlags {
  class?: number[];
  out?: string;
  mode: 'auto' | 'gradient' | 'query';
  steps: number;
  queries: number;
  judge?: string;
}

function targetOptions(cmd: Command): Command {
  return cmd
    .option('--model <dir|url>', 'the model: a TF.js model directory, an .onnx file or an http(s) URL')
    .option('--dataset <name|file>', "'digits' or a .csv/.jsonl/.npy file (the model's training split counts as members)", 'digits')
    .option('--label <col>', 'label column of a .csv/.jsonl file (column index for .npy)')
    .option('--drop <cols>', 'columns to leave out of the features', collect)
    .option('--api-key <key>', 'API key for a remote model (or BULWARK_API_KEY)');
}

async function openTarget(flags: TargetFlags): Promise<{ model: Model; card?: ModelCard; close: () => Promise<void> }> {
  const spec = requireOption(flags.model, '--model', 'a model directory, an .onnx file or an http(s) URL');
  // Local models, shadow models and judges all run on TF.js.
  await initTfjs();
  const { model, card } = await openModel(spec, { apiKey: flags.apiKey ?? process.env.BULWARK_API_KEY });
  const close = async () => {
    await (model as { dispose?: () => unknown }).dispose?.();
    await (model as { close?: () => unknown }).close?.();
  };
  return { model, card, close };
}

/** The split the model was trained on: a file is split with the seed recorded in the model card. */
async function targetData(flags: TargetFlags, card: ModelCard | undefined, cmd: Command) {
  const splitSeed = cmd.getOptionValueSource('seed') !== 'cli' && typeof card?.seed === 'number' ? card.seed : flags.seed;
  return loadDatasetSpec(flags.dataset, { label: flags.label, drop: flags.drop, seed: splitSeed });
}

function shadowArchitecture(model: Model, card: ModelCard | undefined, flags: MembershipFlags, tabular: boolean): { arch: ShadowArchitecture; name: string } {
  const named = flags.shadowModel ?? (typeof card?.architecture === 'string' && isZooArchitecture(card.architecture) ? card.architecture : undefined);
  if (named) {
    if (!isZooArchitecture(named)) throw new BulwarkError('E_UNKNOWN_MODEL', `unknown shadow model '${named}'; the built-in models are: ${ZOO_ARCHITECTURES.join(', ')}`);
    return { arch: { kind: 'zoo', architecture: named, standardize: tabular }, name: named };
  }
  if (model instanceof TfjsModel) return { arch: { kind: 'topology', topology: model.net.toJSON(null, false) as object }, name: "the target's own architecture" };
  return { arch: { kind: 'zoo', architecture: 'mlp', standardize: tabular }, name: 'mlp (the target is a black box; --shadow-model picks another)' };
}

function summary(r: MembershipResult) {
  return {
    attack: r.attack,
    auc: r.auc,
    tprAt0_1Fpr: r.tprAt0_1Fpr,
    tprAt1Fpr: r.tprAt1Fpr,
    advantage: r.advantage,
    empiricalEpsilon: r.empiricalEpsilon,
    empiricalDelta: r.empiricalDelta,
    members: r.members,
    nonMembers: r.nonMembers,
    queries: r.queries,
    seconds: r.seconds,
    notes: r.notes,
    roc: r.roc,
  };
}

export function registerPrivacyAttackCommands(attack: Command): void {
  withCommonOptions(
    targetOptions(attack.command('membership').description('membership inference: can an attacker tell which examples a model was trained on?'))
      .addOption(new Option('--attack <name>', 'loss (threshold), label-only, lira (shadow models) or all').choices(['all', 'loss', 'label-only', 'lira']).default('all'))
      .option('--shadows <n>', 'LiRA: shadow models (even, ≥ 4)', parsePositiveInt, 16)
      .option('--shadow-model <arch>', 'LiRA: architecture of the shadow models (default: the model card\'s, else the target\'s own for TF.js models, else mlp)')
      .option('--shadow-epochs <n>', 'LiRA: training epochs of each shadow model (default: the architecture\'s default)', parsePositiveInt)
      .option('--evaluate <n>', 'members and non-members each to attack', parsePositiveInt, 1000)
      .option('--workers <n>', 'LiRA: worker threads (default: one per core)', parsePositiveInt),
  ).action(async (flags: MembershipFlags, cmd: Command) => {
    const progress = terminalProgress();
    const { model, card, close } = await openTarget(flags);
    try {
      const data = await targetData(flags, card, cmd);
      checkInputShape(model, data.test.x, `dataset '${data.test.name}'`);
      const ev = membershipSample(data.train, data.test, flags.evaluate, flags.seed);
      const results: MembershipResult[] = [];
      let lira: { shadows: number; workers: number; seconds: number; shadowModel: string } | null = null;
      if (flags.attack === 'all' || flags.attack === 'loss') results.push(await lossThresholdAttack(model, ev));
      if (flags.attack === 'all' || flags.attack === 'label-only') results.push(await labelOnlyAttack(model, ev, { seed: flags.seed }));
      if (flags.attack === 'all' || flags.attack === 'lira') {
        const { arch, name } = shadowArchitecture(model, card, flags, data.train.x.shape.length === 2);
        const epochs = flags.shadowEpochs ?? (arch.kind === 'zoo' ? defaultEpochs[arch.architecture] : 20);
        const r = await liraAttack(model, { train: data.train, test: data.test }, {
          shadows: flags.shadows,
          architecture: arch,
          training: { epochs, batchSize: 128, learningRate: 1e-3 },
          evaluate: flags.evaluate,
          workers: flags.workers,
          seed: flags.seed,
          progress,
        });
        for (const n of r.notes) progress.log(n);
        results.push(r.online, r.offline);
        lira = { shadows: r.shadows, workers: r.workers, seconds: r.seconds, shadowModel: name };
      }
      output(flags, { model: model.info.name, dataset: data.all.name, attacks: results.map(summary), ...(lira ? { lira } : {}) }, () =>
        [
          `membership inference against ${model.info.name} (members: its training split of ${data.all.name}; non-members: the held-out split)`,
          `${'attack'.padEnd(14)} ${'AUC'.padStart(7)} ${'TPR@0.1%FPR'.padStart(12)} ${'TPR@1%FPR'.padStart(10)} ${'ε lower bound'.padStart(14)}`,
          ...results.map((r) => `${r.attack.padEnd(14)} ${r.auc.toFixed(4).padStart(7)} ${pct(r.tprAt0_1Fpr).padStart(12)} ${pct(r.tprAt1Fpr).padStart(10)} ${r.empiricalEpsilon.toFixed(3).padStart(14)}`),
          lira ? `LiRA: ${lira.shadows} shadow models (${lira.shadowModel}) in ${lira.seconds.toFixed(0)} s on ${lira.workers || 1} thread(s)` : '',
          'AUC 0.5 is guessing; the ε lower bound is what any DP guarantee for this model would have to exceed (95% confidence).',
        ].filter(Boolean).join('\n'),
      );
    } finally {
      await close();
    }
  });

  withCommonOptions(
    targetOptions(attack.command('invert').description('model inversion: reconstruct what each class looks like from the model alone'))
      .option('--class <k>', 'class index to reconstruct (repeatable; default: all)', (v: string, prev: number[] = []) => {
        const n = Number(v);
        if (!/^\d+$/.test(v.trim())) throw new InvalidArgumentError(`a class index is a whole number, got '${v}'.`);
        return [...prev, n];
      })
      .option('--out <dir>', 'directory for the reconstructions (class-K.png, inversion.json)')
      .addOption(new Option('--mode <mode>', 'gradient (white-box), query (black-box) or auto').choices(['auto', 'gradient', 'query']).default('auto'))
      .option('--steps <n>', 'gradient ascent steps', parsePositiveInt, 300)
      .option('--queries <n>', 'query mode: model queries per class', parsePositiveInt, 20_000)
      .option('--judge <dir|none>', "model that judges the reconstructions (default: a logistic model trained here on the dataset; 'none' to skip)"),
  ).action(async (flags: InvertFlags, cmd: Command) => {
    const progress = terminalProgress();
    const out = requireOption(flags.out, '--out', 'the directory to write the reconstructions to');
    const { model, card, close } = await openTarget(flags);
    let judge: TfjsModel | null = null;
    try {
      const data = await targetData(flags, card, cmd);
      checkInputShape(model, data.test.x, `dataset '${data.test.name}'`);
      let lo = Infinity;
      let hi = -Infinity;
      for (const v of data.train.x.data) {
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      const result = await invertModel(model, { classes: flags.class, mode: flags.mode, steps: flags.steps, queries: flags.queries, range: [lo, hi], seed: flags.seed, progress });
      judge = await makeJudge(flags, data.train, model.info.numClasses);
      const score = await scoreInversion(result, data.train, judge ?? undefined);
      const files = inversionFiles(result.images.data, result.images.shape, result.classes, [lo, hi]);
      const report = { model: model.info.name, dataset: data.all.name, mode: result.mode, queries: result.queries, seconds: result.seconds, confidence: Array.from(result.confidence), ...score };
      files['inversion.json'] = JSON.stringify(report, null, 2) + '\n';
      await writeDirAtomically(out, files);
      output(flags, { out, files: Object.keys(files).sort().map((f) => path.join(out, f)), ...report }, () =>
        [
          `reconstructed ${result.classes.length} class(es) of ${model.info.name} by ${result.mode === 'gradient' ? 'gradient ascent' : `${result.queries} queries`} in ${result.seconds.toFixed(1)} s; written to ${out}`,
          `similarity to the real class mean: ${score.meanSimilarity.toFixed(3)} (correlation); closest to their own class mean: ${pct(score.nearestMeanRate)}`,
          score.recognitionRate === null ? '' : `recognised by an independently trained model: ${pct(score.recognitionRate)}`,
        ].filter(Boolean).join('\n'),
      );
    } finally {
      judge?.dispose();
      await close();
    }
  });
}

/** An independent judge: the user's, or a logistic model trained here on a different seed. */
async function makeJudge(flags: InvertFlags, train: Dataset, numClasses: number): Promise<TfjsModel | null> {
  if (flags.judge === 'none') return null;
  if (flags.judge) return (await loadTfjsModel(flags.judge)).model;
  const judge = createZooModel('logistic', { inputShape: train.x.shape.slice(1), numClasses, classNames: train.classNames, seed: flags.seed + 1, name: 'judge' });
  await judge.fit(train, { epochs: 5, seed: flags.seed + 1 });
  return judge;
}

/** PNGs for images (contrast-stretched per image so faint reconstructions are visible), JSON vectors otherwise. */
function inversionFiles(data: Float32Array, shape: readonly number[], classes: Int32Array, range: [number, number]): Record<string, string | Uint8Array> {
  const files: Record<string, string | Uint8Array> = {};
  const size = data.length / Math.max(1, classes.length);
  const [h, w, c] = shape.length === 4 ? [shape[1], shape[2], shape[3]] : shape.length === 3 ? [shape[1], shape[2], 1] : [0, 0, 0];
  classes.forEach((k, i) => {
    const img = data.subarray(i * size, (i + 1) * size);
    if (h > 0 && (c === 1 || c === 3)) {
      const grey = new Float32Array(h * w);
      for (let p = 0; p < h * w; p++) {
        let s = 0;
        for (let ch = 0; ch < c; ch++) s += img[p * c + ch];
        grey[p] = s / c;
      }
      files[`class-${k}.png`] = encodeGreyPng(w, h, stretch(grey));
    } else {
      files[`class-${k}.json`] = JSON.stringify({ class: k, range, values: Array.from(img) }) + '\n';
    }
  });
  return files;
}

export function stretch(v: Float32Array): Float32Array {
  let lo = Infinity;
  let hi = -Infinity;
  for (const x of v) {
    if (x < lo) lo = x;
    if (x > hi) hi = x;
  }
  return hi > lo ? Float32Array.from(v, (x) => (x - lo) / (hi - lo)) : new Float32Array(v.length);
}
