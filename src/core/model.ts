import { BulwarkError } from './errors.js';
import type { Dataset } from './dataset.js';
import { argmaxRows, labelAccuracy, type Samples } from './samples.js';
import type { Progress } from './progress.js';

/** What every model tells about itself. */
export interface ModelInfo {
  /** Human-readable identity: a directory, a file or a URL. */
  readonly name: string;
  /** Which engine runs it: 'tfjs', 'onnx', 'http', or a wrapper's name. */
  readonly engine: string;
  /** Shape of one input sample, without the batch dimension. */
  readonly inputShape: readonly number[];
  readonly numClasses: number;
  readonly classNames?: readonly string[];
}

/**
 * The one capability every model has: class probabilities, shape [n, numClasses],
 * each row summing to 1.
 */
export interface Predictor {
  readonly info: ModelInfo;
  predict(x: Samples): Promise<Samples>;
}

/** White-box: gradient of the cross-entropy loss at the true labels, w.r.t. the input. */
export interface LossGradient {
  lossGradient(x: Samples, y: Int32Array): Promise<Samples>;
}

/** White-box: gradient of one class's log-probability w.r.t. the input, one class per row. */
export interface ClassGradient {
  classGradient(x: Samples, classes: Int32Array): Promise<Samples>;
}

/** Internal representations at a named layer. */
export interface Activations {
  layerNames(): string[];
  activations(x: Samples, layer: string): Promise<Samples>;
}

export interface FitOptions {
  epochs?: number;
  batchSize?: number;
  learningRate?: number;
  /** Fraction of the training data held out to decide early stopping (0 disables). */
  validationSplit?: number;
  /** Stop when validation loss has not improved for this many epochs. */
  patience?: number;
  seed?: number;
  progress?: Progress;
  /**
   * Called with each training batch before the step; what it returns is trained on instead.
   * Adversarial training uses it to swap in attacks made against the current weights.
   */
  transformBatch?: (x: Samples, y: Int32Array, info: { epoch: number; batch: number }) => Promise<Samples>;
  /**
   * Soft targets, [n, classes]: one probability row per training sample, learnt instead of the
   * one-hot labels (distillation; a surrogate trained on a target's scores). Accuracy is still
   * counted against the labels.
   */
  soft?: Samples;
}

export interface EpochMetrics {
  epoch: number;
  loss: number;
  accuracy: number;
  valLoss?: number;
  valAccuracy?: number;
  seconds: number;
}

export interface FitResult {
  epochs: EpochMetrics[];
  seconds: number;
  stoppedEarly: boolean;
}

export interface Trainable {
  fit(data: Dataset, opts?: FitOptions): Promise<FitResult>;
}

/** Any model: predict always, the other capabilities where the engine can offer them. */
export type Model = Predictor & Partial<LossGradient & ClassGradient & Activations & Trainable>;

export type Capability = 'predict' | 'lossGradient' | 'classGradient' | 'activations' | 'fit';

const capabilityMethod: Record<Capability, string> = {
  predict: 'predict',
  lossGradient: 'lossGradient',
  classGradient: 'classGradient',
  activations: 'activations',
  fit: 'fit',
};

export function hasCapability(model: Model, cap: Capability): boolean {
  return typeof (model as unknown as Record<string, unknown>)[capabilityMethod[cap]] === 'function';
}

export function capabilitiesOf(model: Model): Capability[] {
  return (Object.keys(capabilityMethod) as Capability[]).filter((c) => hasCapability(model, c));
}

type WithCapability<C extends Capability> = C extends 'lossGradient'
  ? LossGradient
  : C extends 'classGradient'
    ? ClassGradient
    : C extends 'activations'
      ? Activations
      : C extends 'fit'
        ? Trainable
        : Predictor;

/**
 * Fails at once, naming the algorithm and the model, when the model lacks what the
 * algorithm needs (a remote model asked for gradients, say).
 */
export function requireCapability<C extends Capability>(
  model: Model,
  cap: C,
  algorithm: string,
): asserts model is Model & WithCapability<C> {
  if (!hasCapability(model, cap)) {
    throw new BulwarkError(
      'E_MODEL_CAPABILITY',
      `${algorithm} needs the '${cap}' capability, but model '${model.info.name}' (${model.info.engine} engine) ` +
        `offers only: ${capabilitiesOf(model).join(', ')}. Use a white-box model (a TF.js model directory) or an attack that needs less.`,
    );
  }
}

/** Checks that samples fit the model's input shape before they are sent to it. */
export function checkInputShape(model: Predictor, x: Samples, where = 'input'): void {
  const want = model.info.inputShape;
  const got = x.shape.slice(1);
  const wantSize = want.reduce((a, b) => a * b, 1);
  const gotSize = got.reduce((a, b) => a * b, 1);
  if (wantSize !== gotSize) {
    throw new BulwarkError(
      'E_DATA_SHAPE',
      `${where}: model '${model.info.name}' expects samples of shape [${want.join(', ')}] (${wantSize} values) ` +
        `but got [${got.join(', ')}] (${gotSize} values)`,
    );
  }
}

/** Accuracy of a model's top class on a labelled dataset. */
export async function modelAccuracy(model: Predictor, ds: Dataset): Promise<number> {
  return labelAccuracy(argmaxRows(await model.predict(ds.x)), ds.y);
}
