import {
  BulwarkError,
  Rng,
  argmaxRows,
  checkInputShape,
  labelAccuracy,
  sampleCount,
  silentProgress,
  type Dataset,
  type Predictor,
  type Progress,
  type Samples,
} from '../core/index.js';
import type { TfjsModel } from '../engines/index.js';
import { createZooModel, defaultEpochs, featureStats, isZooArchitecture, ZOO_ARCHITECTURES, type ZooArchitecture } from '../zoo/index.js';
import { detectAnswerKind, type AnswerKind, type AnswerShape } from './answers.js';
import { Oracle } from './oracle.js';
import { valueRange } from './queries.js';
import { STRATEGIES, type ExtractionStrategy, type StrategyContext } from './strategies.js';

export interface ExtractionOptions {
  /** Rows the attacker may send to the target; never exceeded. */
  budget: number;
  /** How queries are chosen. Default 'natural'. */
  strategy?: ExtractionStrategy;
  /** Natural inputs the attacker holds, without labels: the queries of 'natural' and 'active', the seeds of 'jacobian', the value range of 'random'. */
  pool?: Samples;
  /** Labelled data the attacker never queries for training: fidelity and accuracy are measured on it. */
  holdout: Dataset;
  /**
   * Whose predictions fidelity is measured against. Default: the target itself, asked once about
   * the holdout before the attack; those rows are counted in `evaluationQueries`, not the budget.
   */
  reference?: Predictor;
  /** Surrogate architecture from the zoo. Default 'mlp'. */
  surrogate?: ZooArchitecture;
  /**
   * Query counts at which the surrogate is retrained from scratch and measured (natural, random,
   * active); capped at the budget, which is always the last. Default 250, 500, 1000, 2000, 5000,
   * 10000, … 'jacobian' retrains after each augmentation round instead.
   */
  checkpoints?: number[];
  /** Surrogate training. Default: the zoo's epochs, more on small query sets (at least ~600 steps, at most 100 epochs). */
  training?: { epochs?: number; batchSize?: number; learningRate?: number };
  /** Rows per call to the target. Default 100. */
  batchSize?: number;
  /** Valid input values, for random queries and Jacobian steps. Default: the pool's range, else [0, 1]. */
  range?: [number, number];
  /** Jacobian augmentation: seed points taken from the pool (default 150), step λ as a share of the value range (default 0.1), sign flip every τ rounds (default 3; 0 never). */
  jacobian?: { seeds?: number; lambda?: number; tau?: number };
  seed?: number;
  progress?: Progress;
}

export interface ExtractionPoint {
  /** Rows answered by the target when the surrogate was trained. */
  queries: number;
  /** Share of holdout rows where the surrogate's top class is the target's. */
  fidelity: number;
  /** The surrogate's accuracy on the holdout's true labels. */
  accuracy: number;
}

export interface ExtractionResult {
  /** The stolen model, trained only on the target's answers. The caller disposes it. */
  surrogate: TfjsModel;
  surrogateArchitecture: ZooArchitecture;
  strategy: ExtractionStrategy;
  budget: number;
  /** Rows sent to the target by the attack (≤ budget), refused ones included: what the target saw. */
  queriesUsed: number;
  /** Rows the target answered: what the surrogate learnt from. */
  queriesAnswered: number;
  /** Rows sent to learn the target's holdout predictions (0 with a `reference`). */
  evaluationQueries: number;
  answerKind: AnswerKind;
  answers: AnswerShape;
  stoppedBy: 'budget' | 'refused';
  /** The target's refusal, when it stopped the attack. */
  refusal?: { status: number; message: string };
  curve: ExtractionPoint[];
  /** The last point of the curve. */
  fidelity: number;
  accuracy: number;
  /** The reference's own accuracy on the holdout: what the surrogate's accuracy is compared with. */
  targetAccuracy: number;
  seconds: number;
  notes: string[];
}

const DEFAULT_CHECKPOINTS = [250, 500, 1000, 2000, 5000, 10_000, 20_000, 50_000, 100_000, 200_000, 500_000];
const MIN_STEPS = 600;
const MAX_EPOCHS = 100;

/**
 * Model extraction: trains a surrogate only from what the target answers, and measures how
 * closely it agrees with the target (fidelity) and how accurate it is, as the queries grow.
 * A target that starts refusing ends the attack early; what was stolen by then is the result.
 */
export async function extract(target: Predictor, opts: ExtractionOptions): Promise<ExtractionResult> {
  const t0 = performance.now();
  const o = validate(target, opts);
  const progress = opts.progress ?? silentProgress;
  const rng = new Rng(o.seed);
  const notes: string[] = [];
  const sampleShape = [...target.info.inputShape];
  const k = target.info.numClasses;

  const reference = opts.reference ?? target;
  const counter = (target as { queries?: unknown }).queries;
  const before = typeof counter === 'number' ? counter : 0;
  progress.start('target on the holdout', 1);
  const refLabels = argmaxRows(await reference.predict(opts.holdout.x));
  progress.done();
  const evaluationQueries = opts.reference ? 0 : Math.max(sampleCount(opts.holdout.x), ((target as { queries?: number }).queries ?? 0) - before);
  const targetAccuracy = labelAccuracy(refLabels, opts.holdout.y);

  const oracle = new Oracle(target, o.budget, o.batchSize, progress);
  const curve: ExtractionPoint[] = [];
  let surrogate: TfjsModel | null = null;
  const stats = opts.pool && sampleShape.length === 1 ? featureStats(opts.pool) : undefined;

  const train = async (): Promise<TfjsModel> => {
    const { x, answers } = oracle.collected(sampleShape);
    const n = sampleCount(x);
    if (n === 0) throw refusedAtOnce(target, oracle);
    const data: Dataset = { name: 'extraction queries', x, y: argmaxRows(answers), classNames: classNames(target) };
    const model = createZooModel(o.surrogate, {
      inputShape: sampleShape,
      numClasses: k,
      classNames: data.classNames,
      seed: o.seed,
      name: `surrogate of ${target.info.name}`,
      ...(stats ? { standardize: stats } : {}),
    });
    const batchSize = o.training.batchSize ?? 128;
    const batches = Math.ceil(n / batchSize);
    const epochs = o.training.epochs ?? Math.min(MAX_EPOCHS, Math.max(defaultEpochs[o.surrogate], Math.ceil(MIN_STEPS / batches)));
    progress.log(`training the surrogate on ${n} answers (${epochs} epochs)`);
    // Scores teach more per query than labels do: learn them whole when the target gives them.
    const soft = detectAnswerKind(answers).kind === 'labels' ? undefined : softTargets(answers);
    await model.fit(data, { epochs, batchSize, learningRate: o.training.learningRate, seed: o.seed, ...(soft ? { soft } : {}) });
    const predicted = argmaxRows(await model.predict(opts.holdout.x));
    const point = { queries: oracle.answered, fidelity: labelAccuracy(predicted, refLabels), accuracy: labelAccuracy(predicted, opts.holdout.y) };
    if (curve.length > 0 && curve[curve.length - 1].queries === point.queries) curve.pop();
    curve.push(point);
    surrogate?.dispose();
    surrogate = model;
    return model;
  };

  const ctx: StrategyContext = {
    oracle,
    rng,
    pool: opts.pool,
    range: o.range,
    sampleShape,
    checkpoints: o.checkpoints,
    jacobian: o.jacobian,
    train,
    notes,
  };
  progress.start(`extraction (${o.strategy})`, o.budget);
  try {
    await STRATEGIES[o.strategy](ctx);
    progress.done();
    if (curve.length === 0 || curve[curve.length - 1].queries !== oracle.answered) await train();
  } catch (e) {
    progress.done();
    (surrogate as TfjsModel | null)?.dispose();
    throw e;
  }
  const stolen = surrogate as unknown as TfjsModel;
  const answers = detectAnswerKind(oracle.collected(sampleShape).answers);
  const last = curve[curve.length - 1];
  return {
    surrogate: stolen,
    surrogateArchitecture: o.surrogate,
    strategy: o.strategy,
    budget: o.budget,
    queriesUsed: oracle.used,
    queriesAnswered: oracle.answered,
    evaluationQueries,
    answerKind: answers.kind,
    answers,
    stoppedBy: oracle.refusal ? 'refused' : 'budget',
    ...(oracle.refusal ? { refusal: oracle.refusal } : {}),
    curve,
    fidelity: last.fidelity,
    accuracy: last.accuracy,
    targetAccuracy,
    seconds: (performance.now() - t0) / 1000,
    notes,
  };
}

function refusedAtOnce(target: Predictor, oracle: Oracle): BulwarkError {
  const why = oracle.refusal ? oracle.refusal.message : 'no query was answered';
  return new BulwarkError('E_REMOTE', `target '${target.info.name}' refused the first queries, so nothing could be extracted: ${why}`);
}

function classNames(target: Predictor): string[] {
  return target.info.classNames ? [...target.info.classNames] : Array.from({ length: target.info.numClasses }, (_, i) => String(i));
}

function validate(target: Predictor, opts: ExtractionOptions) {
  const bad = (message: string) => new BulwarkError('E_USAGE', `extract: ${message}`);
  const int = (v: unknown, name: string, min: number): number => {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) throw bad(`${name} must be an integer of at least ${min}, not ${String(v)}`);
    return v;
  };
  const budget = int(opts.budget, 'budget', 1);
  const strategy = opts.strategy ?? 'natural';
  if (!(strategy in STRATEGIES)) throw bad(`strategy must be one of ${Object.keys(STRATEGIES).join(', ')}, not '${String(strategy)}'`);
  const surrogate = opts.surrogate ?? 'mlp';
  if (!isZooArchitecture(surrogate)) throw bad(`surrogate must be one of ${ZOO_ARCHITECTURES.join(', ')}, not '${String(surrogate)}'`);
  if (!opts.holdout || sampleCount(opts.holdout.x) === 0) throw bad('a holdout dataset is needed to measure fidelity and accuracy');
  checkInputShape(target, opts.holdout.x, `holdout '${opts.holdout.name}'`);
  if (opts.reference) checkInputShape(opts.reference, opts.holdout.x, `holdout '${opts.holdout.name}'`);
  if (opts.pool) checkInputShape(target, opts.pool, 'the query pool');
  if (strategy !== 'random' && (!opts.pool || sampleCount(opts.pool) === 0)) {
    throw bad(`the '${strategy}' strategy needs a pool of natural inputs (unlabelled data of the target's kind); give one, or use 'random'`);
  }
  const checkpoints = [...new Set((opts.checkpoints ?? DEFAULT_CHECKPOINTS).map((c) => int(c, 'every checkpoint', 1)))]
    .filter((c) => c < budget)
    .sort((a, b) => a - b);
  checkpoints.push(budget);
  const range = opts.range ?? valueRange(opts.pool);
  if (!(Number.isFinite(range[0]) && Number.isFinite(range[1]) && range[1] > range[0])) throw bad(`range must be [min, max] with min < max, not [${range.join(', ')}]`);
  const j = opts.jacobian ?? {};
  const lambda = j.lambda ?? 0.1;
  if (!(lambda > 0 && lambda <= 1)) throw bad(`jacobian.lambda must be in (0, 1], not ${lambda}`);
  const t = opts.training ?? {};
  if (t.epochs !== undefined) int(t.epochs, 'training.epochs', 1);
  if (t.batchSize !== undefined) int(t.batchSize, 'training.batchSize', 1);
  return {
    budget,
    strategy,
    surrogate,
    checkpoints,
    range: [range[0], range[1]] as const,
    batchSize: int(opts.batchSize ?? 100, 'batchSize', 1),
    jacobian: { seeds: int(j.seeds ?? 150, 'jacobian.seeds', 1), lambda: lambda * (range[1] - range[0]), tau: int(j.tau ?? 3, 'jacobian.tau', 0) },
    training: t,
    seed: int(opts.seed ?? 42, 'seed', 0),
  };
}

/**
 * The answers as probability rows for soft-target training: rounded or top-k rows no longer sum
 * to 1, so each is renormalised; a row with no positive score becomes its argmax one-hot.
 */
function softTargets(answers: Samples): Samples {
  const [n, k] = answers.shape;
  const out = new Float32Array(n * k);
  for (let i = 0; i < n; i++) {
    let sum = 0;
    for (let j = 0; j < k; j++) sum += Math.max(0, answers.data[i * k + j]);
    if (sum > 0) for (let j = 0; j < k; j++) out[i * k + j] = Math.max(0, answers.data[i * k + j]) / sum;
    else {
      let arg = 0;
      for (let j = 1; j < k; j++) if (answers.data[i * k + j] > answers.data[i * k + arg]) arg = j;
      out[i * k + arg] = 1;
    }
  }
  return { data: out, shape: [n, k] };
}
