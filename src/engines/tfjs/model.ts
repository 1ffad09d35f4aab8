import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel, SymbolicTensor } from '@tensorflow/tfjs-layers';
import * as tfl from '@tensorflow/tfjs-layers';
import {
  BulwarkError,
  Rng,
  checkInputShape,
  type Activations,
  type ClassGradient,
  type Dataset,
  type FitOptions,
  type FitResult,
  type LossGradient,
  type ModelInfo,
  type Predictor,
  type Samples,
  type Trainable,
} from '../../core/index.js';
import { DropoutStream } from './dropout.js';
import { forwardLayer } from './layers.js';
import { fromTensor, toTensor } from './tensors.js';
import { trainLoop } from './train.js';

const PREDICT_BATCH = 1024;

/**
 * A TF.js layers model with every capability. Gradients are taken with respect to the
 * logits where the last layer is a softmax Dense layer, so that a saturated softmax does
 * not flatten them to zero (which would make white-box attacks look weaker than they are).
 */
export class TfjsModel implements Predictor, LossGradient, ClassGradient, Activations, Trainable {
  readonly info: ModelInfo;
  private readonly subModels = new Map<string, LayersModel>();
  /** Masks for `logits(x, true)` called without a stream (fit passes its own, seeded one). */
  private readonly dropout = new DropoutStream(new Rng(42));

  constructor(
    readonly net: LayersModel,
    info: Omit<ModelInfo, 'engine' | 'inputShape' | 'numClasses'> & Partial<ModelInfo>,
  ) {
    const inShape = net.inputs[0].shape.slice(1);
    const outShape = net.outputs[0].shape.slice(1);
    if (inShape.some((d) => d === null) || outShape.length !== 1 || outShape[0] === null) {
      throw new BulwarkError(
        'E_MODEL_FORMAT',
        `model '${info.name}' is not a classifier Bulwark can use: input [${inShape}] must be fully known and the output must be [classes]`,
      );
    }
    this.info = {
      engine: 'tfjs',
      ...info,
      inputShape: inShape as number[],
      numClasses: outShape[0] as number,
    };
  }

  async predict(x: Samples): Promise<Samples> {
    return this.batched(x, (xb) => tf.softmax(this.logits(xb, false)));
  }

  /** Unnormalised scores, [n, classes]. */
  async predictLogits(x: Samples): Promise<Samples> {
    return this.batched(x, (xb) => this.logits(xb, false));
  }

  async lossGradient(x: Samples, y: Int32Array): Promise<Samples> {
    checkInputShape(this, x, 'lossGradient');
    this.checkLabels(x, y);
    const k = this.info.numClasses;
    return takeOut(() => {
      const xt = toTensor(x, this.info.inputShape);
      const labels = tf.cast(tf.oneHot(tf.tensor1d(y, 'int32'), k), 'float32');
      // Sum, not mean, so each row's gradient is its own example's loss gradient.
      const g = tf.grad((inp: tf.Tensor) => tf.losses.softmaxCrossEntropy(labels, this.logits(inp, false), undefined, undefined, tf.Reduction.SUM))(xt);
      return g;
    });
  }

  async classGradient(x: Samples, classes: Int32Array): Promise<Samples> {
    checkInputShape(this, x, 'classGradient');
    this.checkLabels(x, classes);
    const k = this.info.numClasses;
    return takeOut(() => {
      const xt = toTensor(x, this.info.inputShape);
      const mask = tf.cast(tf.oneHot(tf.tensor1d(classes, 'int32'), k), 'float32');
      const g = tf.grad((inp: tf.Tensor) => tf.sum(tf.mul(tf.logSoftmax(this.logits(inp, false)), mask)))(xt);
      return g;
    });
  }

  layerNames(): string[] {
    return this.net.layers.map((l) => l.name);
  }

  /** The layer whose output feeds the final classifier layer (the usual place to look for backdoors). */
  penultimateLayer(): string {
    const names = this.layerNames();
    return names[Math.max(0, names.length - 2)];
  }

  async activations(x: Samples, layer: string): Promise<Samples> {
    checkInputShape(this, x, 'activations');
    let sub = this.subModels.get(layer);
    if (!sub) {
      const l = this.net.layers.find((candidate) => candidate.name === layer);
      if (!l) {
        throw new BulwarkError('E_USAGE', `model '${this.info.name}' has no layer '${layer}'; its layers are: ${this.layerNames().join(', ')}`);
      }
      sub = tfl.model({ inputs: this.net.inputs, outputs: l.output as SymbolicTensor });
      this.subModels.set(layer, sub);
    }
    const m = sub;
    return this.batched(x, (xb) => {
      const out = m.predict(xb) as tf.Tensor;
      return tf.reshape(out, [out.shape[0], -1]);
    });
  }

  async fit(data: Dataset, opts: FitOptions = {}): Promise<FitResult> {
    checkInputShape(this, data.x, `training data '${data.name}'`);
    if (data.classNames.length > this.info.numClasses) {
      throw new BulwarkError('E_DATA_SHAPE', `dataset '${data.name}' has ${data.classNames.length} classes but the model outputs ${this.info.numClasses}`);
    }
    return trainLoop(this.net, (xb, training, dropout) => this.logits(xb, training, dropout), data, this.info, opts);
  }

  dispose(): void {
    this.dropout.dispose();
    this.net.dispose();
  }

  /**
   * Logits: for a model ending in a softmax Dense layer, the pre-activation output of that
   * layer; otherwise the log of the output probabilities. With `training`, dropout is on,
   * with a fresh mask at every call (drawn from `dropout`, or from the model's own stream).
   */
  logits(x: tf.Tensor, training: boolean, dropout?: DropoutStream): tf.Tensor2D {
    const layers = this.net.layers;
    const last = layers[layers.length - 1];
    const isSequential = this.net.inputs.length === 1 && layers.every((l) => l.inboundNodes.length <= 1);
    const lastConfig = last.getConfig() as { activation?: string; useBias?: boolean };
    if (isSequential && last.getClassName() === 'Dense' && lastConfig.activation === 'softmax') {
      let h = x;
      for (const l of layers.slice(0, -1)) h = forwardLayer(l, h, training, training ? (dropout ?? this.dropout) : null);
      const [kernel, bias] = last.getWeights();
      return tf.fused.matMul({ a: h as tf.Tensor2D, b: kernel as tf.Tensor2D, bias: lastConfig.useBias === false ? undefined : bias }) as tf.Tensor2D;
    }
    const p = this.net.apply(x, { training }) as tf.Tensor2D;
    return tf.log(tf.clipByValue(p, 1e-12, 1));
  }

  private batched(x: Samples, f: (xb: tf.Tensor) => tf.Tensor): Samples {
    checkInputShape(this, x, 'predict');
    const n = x.shape[0];
    const size = this.info.inputShape.reduce((a, b) => a * b, 1);
    let out: Float32Array | null = null;
    let width = 0;
    for (let start = 0; start < n; start += PREDICT_BATCH) {
      const end = Math.min(n, start + PREDICT_BATCH);
      const r = tf.tidy(() => f(tf.tensor(x.data.subarray(start * size, end * size), [end - start, ...this.info.inputShape], 'float32')));
      width = r.shape[1] ?? 1;
      out ??= new Float32Array(n * width);
      out.set(r.dataSync() as Float32Array, start * width);
      r.dispose();
    }
    return { data: out ?? new Float32Array(0), shape: [n, width || this.info.numClasses] };
  }

  private checkLabels(x: Samples, y: Int32Array): void {
    if (y.length !== x.shape[0]) {
      throw new BulwarkError('E_DATA_SHAPE', `${x.shape[0]} samples but ${y.length} labels`);
    }
    for (let i = 0; i < y.length; i++) {
      if (y[i] < 0 || y[i] >= this.info.numClasses) {
        throw new BulwarkError('E_DATA_VALUE', `label ${y[i]} at row ${i} is not one of the model's ${this.info.numClasses} classes`);
      }
    }
  }
}

/** Runs `f` in a tidy scope and copies its result out as Samples, leaving no tensor behind. */
function takeOut(f: () => tf.Tensor): Samples {
  const t = tf.tidy(f);
  try {
    return fromTensor(t);
  } finally {
    t.dispose();
  }
}
