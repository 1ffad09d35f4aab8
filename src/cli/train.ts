import { Command, Option } from 'commander';
import { promises as fs } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { BulwarkError, checkInputShape, modelAccuracy, type Dataset } from '../core/index.js';
import { loadDatasetFile, loadDatasetSpec } from '../data/index.js';
import { initTfjs, openModel, saveOnnx, saveTfjsModel, TfjsModel } from '../engines/index.js';
import { ZOO_ARCHITECTURES, createZooModel, featureStats, defaultEpochs, isZooArchitecture } from '../zoo/index.js';
import { collect, output, parseFraction, parsePositiveInt, parsePositiveNumber, pct, requireOption, withCommonOptions } from './common.js';
import { terminalProgress } from './progress-bar.js';
import { adversarialTrain } from '../evasion/index.js';
import { adversarialFit, adversarialTrainOptions, type AdversarialTrainFlags } from './evasion.js';
import { dpFit, dpRequested, dpTrainOptions, type DpTrainFlags } from './privacy.js';

interface TrainFlags extends AdversarialTrainFlags, DpTrainFlags {
  dataset: string;
  model: string;
  out?: string;
  epochs?: number;
  dropout?: number;
  batchSize: number;
  learningRate: number;
  validationSplit: number;
  patience: number;
  label?: string;
  drop?: string[];
  json?: boolean;
  seed: number;
}

export function trainCommands(program: Command): void {
  withCommonOptions(
    dpTrainOptions(adversarialTrainOptions(program
      .command('train')
      .description('train a built-in model on a dataset and save it')
      .option('--dataset <name|file>', "'digits' or a .csv/.jsonl/.npy file", 'digits')
      .addOption(new Option('--model <arch>', 'architecture').choices([...ZOO_ARCHITECTURES]).default('mlp'))
      .option('--out <dir>', 'directory to save the trained model in (TF.js format)')
      .option('--epochs <n>', 'training epochs (default: 20 for mlp/logistic, 12 for cnn)', parsePositiveInt)
      .option('--dropout <rate>', 'dropout rate of the hidden layer, 0 to under 1 (default: 0.3 for mlp, 0.25 for cnn)', parseFraction)
      .option('--batch-size <n>', 'examples per step', parsePositiveInt, 128)
      .option('--learning-rate <x>', 'Adam learning rate', parsePositiveNumber, 1e-3)
      .option('--validation-split <f>', 'share held out for early stopping (0: none)', parseFraction, 0)
      .option('--patience <n>', 'epochs without validation improvement before stopping', parsePositiveInt, 3)
      .option('--label <col>', 'label column of a .csv/.jsonl file (column index for .npy)')
      .option('--drop <cols>', 'columns to leave out of the features (comma-separated, repeatable)', collect))),
  ).action(async (flags: TrainFlags, cmd: Command) => {
    const progress = terminalProgress();
    if (flags.out) await refuseFileAsDir(flags.out);
    const data = await loadDatasetSpec(flags.dataset, { label: flags.label, drop: flags.drop, seed: flags.seed });
    await initTfjs();
    const before = tf.memory().numTensors;
    const arch = flags.model;
    if (!isZooArchitecture(arch)) throw new BulwarkError('E_UNKNOWN_MODEL', `unknown model '${arch}'`);
    const model = createZooModel(arch, {
      inputShape: data.train.x.shape.slice(1),
      numClasses: data.all.classNames.length,
      classNames: data.all.classNames,
      seed: flags.seed,
      name: flags.out ?? arch,
      standardize: data.train.x.shape.length === 2 ? featureStats(data.train.x) : undefined,
      dropout: flags.dropout,
    });
    try {
      const adversarial = adversarialFit(flags, model, data.train);
      const epochs = flags.epochs ?? defaultEpochs[arch];
      if (adversarial && dpRequested(flags)) throw new BulwarkError('E_USAGE', 'DP-SGD and adversarial training cannot be combined; choose one');
      const dp = dpRequested(flags) ? await dpFit(model, data.train, flags, cmd, progress) : null;
      const fitOptions = {
        epochs,
        batchSize: flags.batchSize,
        learningRate: flags.learningRate,
        validationSplit: flags.validationSplit,
        patience: flags.patience,
        seed: flags.seed,
        progress,
      };
      // fgsm-rs trains through adversarialTrain, which checks PGD accuracy after every epoch
      // and stops at catastrophic overfitting; the fit hook alone cannot stop training.
      const fit = dp
        ? dp.fit
        : adversarial?.fast
          ? await adversarialTrain(model, data.train, { ...adversarial.fast, fit: fitOptions })
          : await model.fit(data.train, { ...fitOptions, transformBatch: adversarial?.transformBatch });
      const testAccuracy = await modelAccuracy(model, data.test);
      const result = {
        model: arch,
        dataset: data.all.name,
        trainSamples: data.train.y.length,
        testSamples: data.test.y.length,
        epochs: fit.epochs.length,
        stoppedEarly: fit.stoppedEarly,
        trainAccuracy: fit.epochs.at(-1)?.accuracy ?? NaN,
        testAccuracy,
        trainSeconds: fit.seconds,
        out: flags.out ?? null,
        ...(flags.dropout !== undefined ? { dropout: flags.dropout } : {}),
        ...(adversarial ? { adversarial: adversarial.described } : {}),
        ...(dp ? dp.privacy : {}),
      };
      if (flags.out) {
        await saveTfjsModel(model, flags.out, {
          classNames: [...data.all.classNames],
          featureNames: data.all.featureNames ? [...data.all.featureNames] : undefined,
          dataset: flags.dataset,
          architecture: arch,
          seed: flags.seed,
          metrics: { testAccuracy, trainSeconds: fit.seconds },
          ...(adversarial ? { adversarial: adversarial.described } : {}),
          ...(dp ? { privacy: dp.privacy } : {}),
          createdAt: new Date().toISOString(),
        });
      }
      output(flags, result, () =>
        [
          `trained ${arch} on ${data.all.name}: ${result.epochs} epochs in ${fit.seconds.toFixed(1)} s${fit.stoppedEarly ? ' (stopped early)' : ''}`,
          `test accuracy ${pct(testAccuracy)} on ${result.testSamples} held-out samples`,
          ...(dp ? [`differentially private: ε = ${dp.result.epsilon.toFixed(3)} at δ = ${dp.result.delta} (noise multiplier ${dp.result.noiseMultiplier.toFixed(3)}, clipping norm ${dp.result.maxGradNorm}, ${dp.result.accountant} accountant)`] : []),
          flags.out ? `saved to ${flags.out}` : 'not saved (give --out DIR to keep it)',
        ].join('\n'),
      );
    } finally {
      model.dispose();
      if (tf.memory().numTensors !== before) progress.log(`warning: ${tf.memory().numTensors - before} tensors were not released`);
    }
  });

  withCommonOptions(
    program
      .command('eval')
      .description("measure a model's accuracy (on the test split of digits, or on a whole file)")
      .option('--model <dir|file.onnx|url>', 'the model to evaluate')
      .option('--dataset <name|file>', "'digits' or a .csv/.jsonl/.npy file", 'digits')
      .option('--label <col>', 'label column of a .csv/.jsonl file (column index for .npy)')
      .option('--drop <cols>', 'columns to leave out of the features', collect)
      .option('--api-key <key>', 'API key for a remote model (or BULWARK_API_KEY)'),
  ).action(async (flags: { model?: string; dataset: string; label?: string; drop?: string[]; apiKey?: string; json?: boolean; seed: number }) => {
    const spec = requireOption(flags.model, '--model', 'a model directory, an .onnx file or an http(s) URL');
    // Built-in data has a fixed test split; a user's file is taken as test data in full.
    const test = flags.dataset === 'digits' ? (await loadDatasetSpec('digits')).test : await loadDatasetFile(flags.dataset, { label: flags.label, drop: flags.drop });
    if (!/^https?:/i.test(spec) && !/\.onnx$/i.test(spec)) await initTfjs();
    const { model, card } = await openModel(spec, { apiKey: flags.apiKey ?? process.env.BULWARK_API_KEY });
    try {
      checkInputShape(model, test.x, `dataset '${test.name}'`);
      checkSameFeatures(card?.featureNames, test);
      if (test.classNames.length > model.info.numClasses) {
        throw new BulwarkError('E_DATA_SHAPE', `dataset '${test.name}' has ${test.classNames.length} classes but model '${model.info.name}' outputs ${model.info.numClasses}`);
      }
      const acc = await modelAccuracy(model, test);
      output(flags, { accuracy: acc, samples: test.y.length, dataset: test.name, model: model.info.name, engine: model.info.engine }, () => `accuracy ${pct(acc)} on ${test.y.length} samples of ${test.name}`);
    } finally {
      await (model as { dispose?: () => unknown; close?: () => unknown }).dispose?.();
      await (model as { close?: () => unknown }).close?.();
    }
  });

  withCommonOptions(
    program
      .command('export')
      .description('export a TF.js model to another format (ONNX)')
      .option('--model <dir>', 'the TF.js model directory')
      .addOption(new Option('--format <fmt>', 'target format').choices(['onnx']).default('onnx'))
      .option('--out <file>', 'where to write the exported model'),
  ).action(async (flags: { model?: string; out?: string; json?: boolean }) => {
    const spec = requireOption(flags.model, '--model', 'the TF.js model directory to export');
    const out = requireOption(flags.out, '--out', 'the .onnx file to write');
    await initTfjs();
    const { model } = await openModel(spec);
    if (!(model instanceof TfjsModel)) throw new BulwarkError('E_USAGE', `${spec} is not a TF.js model; only TF.js models can be exported`);
    try {
      await saveOnnx(model.net, out);
      const size = (await fs.stat(out)).size;
      output(flags, { out, format: 'onnx', bytes: size }, () => `wrote ${out} (${size} bytes)`);
    } finally {
      model.dispose();
    }
  });
}


async function refuseFileAsDir(out: string): Promise<void> {
  const st = await fs.stat(out).catch(() => null);
  if (st && !st.isDirectory()) throw new BulwarkError('E_USAGE', `--out ${out} is a file; give a directory to save the model in`);
}

/**
 * One-hot columns depend on the categories a file happens to contain, so equal widths do
 * not prove equal meaning: compare against the feature names saved at training time.
 */
function checkSameFeatures(trained: unknown, test: Dataset): void {
  if (!Array.isArray(trained) || !test.featureNames) return;
  const now = test.featureNames;
  const i = trained.findIndex((name, j) => name !== now[j]);
  if (i >= 0 || trained.length !== now.length) {
    const at = i >= 0 ? i : Math.min(trained.length, now.length);
    throw new BulwarkError(
      'E_DATA_SHAPE',
      `dataset '${test.name}' encodes its features differently from the model's training data: feature ${at + 1} is '${now[at] ?? '(none)'}' here but was '${trained[at] ?? '(none)'}' in training (a category missing from one file, or columns in another order)`,
    );
  }
}
