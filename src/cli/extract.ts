import { Command, InvalidArgumentError, Option } from 'commander';
import { Rng, subset } from '../core/index.js';
import { loadDatasetSpec } from '../data/index.js';
import { initTfjs, openModel, saveTfjsModel } from '../engines/index.js';
import { EXTRACTION_STRATEGIES, describeAnswers, extract, type ExtractionResult, type ExtractionStrategy } from '../extraction/index.js';
import { ZOO_ARCHITECTURES, type ZooArchitecture } from '../zoo/index.js';
import { collect, output, parsePositiveInt, pct, requireOption, withCommonOptions } from './common.js';
import { terminalProgress } from './progress-bar.js';

interface ExtractFlags {
  target?: string;
  key?: string;
  budget?: number;
  strategy: ExtractionStrategy;
  surrogate: ZooArchitecture;
  dataset: string;
  label?: string;
  drop?: string[];
  evaluate: number;
  checkpoints?: number[];
  batchSize: number;
  out?: string;
  json?: boolean;
  seed: number;
}

function parseCheckpoints(value: string, previous: number[] = []): number[] {
  const parts = value.split(',').map((s) => s.trim()).filter(Boolean);
  for (const p of parts) {
    if (!/^\d+$/.test(p) || Number(p) < 1) throw new InvalidArgumentError(`'${p}' is not a positive query count.`);
  }
  return [...previous, ...parts.map(Number)];
}

/** Adds `attack extract` (model stealing) to the attack group. */
export function extractCommand(attack: Command): void {
  withCommonOptions(
    attack
      .command('extract')
      .description('model extraction: train a surrogate from a model\'s answers alone and measure how faithfully it copies the model')
      .option('--target <dir|file|url>', 'the model to steal: a TF.js model directory, an .onnx file or an http(s) URL')
      .option('--key <key>', 'API key for a remote target (or BULWARK_API_KEY)')
      .option('--budget <n>', 'rows the attacker may send to the target (never exceeded)', parsePositiveInt)
      .addOption(new Option('--strategy <name>', 'natural (dataset inputs), random (noise), jacobian (Papernot augmentation) or active (least-confident first)').choices([...EXTRACTION_STRATEGIES]).default('natural'))
      .addOption(new Option('--surrogate <arch>', 'architecture of the stolen model').choices([...ZOO_ARCHITECTURES]).default('mlp'))
      .option('--dataset <name|file>', "'digits' or a .csv/.jsonl/.npy file: its train split is the attacker's unlabelled pool, its test split the holdout", 'digits')
      .option('--label <col>', 'label column of a .csv/.jsonl file (column index for .npy)')
      .option('--drop <cols>', 'columns to leave out of the features', collect)
      .option('--evaluate <n>', 'holdout rows on which fidelity is measured (sent to the target once, outside the budget)', parsePositiveInt, 1000)
      .option('--checkpoints <n,n,…>', 'query counts at which to retrain and measure (default 250,500,1000,2000,5000,10000,…)', parseCheckpoints)
      .option('--batch-size <n>', 'rows per request to the target', parsePositiveInt, 100)
      .option('--out <dir>', 'save the stolen model here (a TF.js model directory)'),
  ).action(async (flags: ExtractFlags) => {
    const spec = requireOption(flags.target, '--target', 'a model directory, an .onnx file or an http(s) URL');
    const budget = requireOption(flags.budget, '--budget', 'how many rows the attacker may send, e.g. --budget 2000');
    const progress = terminalProgress();
    const data = await loadDatasetSpec(flags.dataset, { label: flags.label, drop: flags.drop, seed: flags.seed });
    await initTfjs();
    const { model } = await openModel(spec, { apiKey: flags.key ?? process.env.BULWARK_API_KEY });
    let result: ExtractionResult | null = null;
    try {
      const n = data.test.y.length;
      const holdout = flags.evaluate >= n ? data.test : subset(data.test, new Rng(flags.seed).permutation(n).subarray(0, flags.evaluate));
      result = await extract(model, {
        budget,
        strategy: flags.strategy,
        surrogate: flags.surrogate,
        pool: data.train.x,
        holdout,
        checkpoints: flags.checkpoints,
        batchSize: flags.batchSize,
        seed: flags.seed,
        progress,
      });
      for (const note of result.notes) progress.log(note);
      if (flags.out) {
        await saveTfjsModel(result.surrogate, flags.out, {
          classNames: [...(model.info.classNames ?? Array.from({ length: model.info.numClasses }, (_, i) => String(i)))],
          dataset: data.all.name,
          architecture: result.surrogateArchitecture,
          seed: flags.seed,
          metrics: { fidelity: result.fidelity, accuracy: result.accuracy },
          extractedFrom: model.info.name,
          extractionQueries: result.queriesUsed,
        });
      }
      const r = result;
      output(flags, summary(r, model.info.name, data.all.name, flags.out), () => human(r, model.info.name, flags.out));
    } finally {
      result?.surrogate.dispose();
      await (model as { dispose?: () => unknown }).dispose?.();
      await (model as { close?: () => unknown }).close?.();
    }
  });
}

function summary(r: ExtractionResult, target: string, dataset: string, out: string | undefined) {
  return {
    target,
    dataset,
    strategy: r.strategy,
    surrogate: r.surrogateArchitecture,
    budget: r.budget,
    queries: r.queriesUsed,
    answered: r.queriesAnswered,
    evaluationQueries: r.evaluationQueries,
    fidelity: r.fidelity,
    accuracy: r.accuracy,
    targetAccuracy: r.targetAccuracy,
    answerKind: r.answerKind,
    answers: r.answers,
    stoppedBy: r.stoppedBy,
    ...(r.refusal ? { refusal: r.refusal } : {}),
    curve: r.curve,
    seconds: r.seconds,
    notes: r.notes,
    ...(out ? { out } : {}),
  };
}

function human(r: ExtractionResult, target: string, out: string | undefined): string {
  return [
    `extracted a ${r.surrogateArchitecture} surrogate of ${target} with ${r.queriesUsed} of ${r.budget} queries (${r.strategy}; the target gave ${describeAnswers(r.answers)})`,
    r.refusal ? `the target refused further queries (HTTP ${r.refusal.status}): ${r.refusal.message}` : '',
    `${'queries'.padStart(8)} ${'fidelity'.padStart(9)} ${'accuracy'.padStart(9)}`,
    ...r.curve.map((p) => `${String(p.queries).padStart(8)} ${pct(p.fidelity).padStart(9)} ${pct(p.accuracy).padStart(9)}`),
    `fidelity is agreement with the target's top class on held-out data; the target's own accuracy there is ${pct(r.targetAccuracy)}`,
    out ? `the stolen model is in ${out}` : '',
  ].filter(Boolean).join('\n');
}
