import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel, layers as tflLayers } from '@tensorflow/tfjs-layers';
import { BulwarkError } from '../../core/index.js';

type Layer = tflLayers.Layer;

/**
 * How DP-SGD walks a TF.js model: a chain of layers in which every layer with trainable
 * weights is a Dense or Conv2D layer (whose per-example gradient norms it can compute
 * exactly from the layer's input and output gradient) and everything between them acts
 * on each example alone. Anything else is refused by name: training it "with DP" would
 * silently give no guarantee.
 */

/** Layers without weights that act on each example separately. */
const PER_EXAMPLE_LAYERS = new Set([
  'InputLayer', 'Flatten', 'Reshape', 'Permute', 'RepeatVector', 'Activation', 'ReLU', 'LeakyReLU', 'ELU', 'ThresholdedReLU', 'Softmax',
  'Dropout', 'SpatialDropout1D', 'GaussianNoise', 'GaussianDropout', 'AlphaDropout',
  'MaxPooling1D', 'MaxPooling2D', 'MaxPooling3D', 'AveragePooling1D', 'AveragePooling2D', 'AveragePooling3D',
  'GlobalAveragePooling1D', 'GlobalMaxPooling1D', 'GlobalAveragePooling2D', 'GlobalMaxPooling2D',
  'ZeroPadding2D', 'Cropping2D', 'UpSampling2D',
]);

const WHY: Record<string, string> = {
  BatchNormalization: 'it normalises each example with statistics of the whole batch, so one example changes every other example\'s gradient',
  LayerNormalization: 'its scale and offset weights have no exact per-example norm here',
  Embedding: 'its per-example gradients are not computed here',
  PReLU: 'its slope weights have no exact per-example norm here',
};

export interface ParamStep {
  kind: 'dense' | 'conv2d';
  layer: Layer;
  kernel: tf.Variable;
  bias: tf.Variable | null;
  /** Weights this step updates (false for a frozen layer, e.g. the zoo's standardiser). */
  trainable: boolean;
  activationName: string;
  activation: (z: tf.Tensor) => tf.Tensor;
  conv?: { kernelSize: [number, number]; strides: [number, number]; padding: 'same' | 'valid' };
}

export interface PassStep {
  kind: 'pass';
  layer: Layer;
}

export type PlanStep = ParamStep | PassStep;

export interface DpPlan {
  steps: PlanStep[];
  /** The steps whose weights DP-SGD updates, in order. */
  trainable: ParamStep[];
  /** Where the loss reads its logits: a last softmax layer's pre-activation, or log of the output. */
  logits: 'pre-softmax' | 'log-output';
}

function refuse(layer: Layer, reason: string): never {
  throw new BulwarkError(
    'E_USAGE',
    `DP-SGD cannot clip per-example gradients exactly through layer '${layer.name}' (${layer.getClassName()}): ${reason}. ` +
      `It trains models built of Dense and Conv2D layers with activations, pooling, flatten and dropout between them; ` +
      `refusing rather than training without a privacy guarantee`,
  );
}

function pair(v: unknown): [number, number] {
  if (typeof v === 'number') return [v, v];
  if (Array.isArray(v) && v.length === 2) return [Number(v[0]), Number(v[1])];
  if (Array.isArray(v) && v.length === 1) return [Number(v[0]), Number(v[0])];
  return [1, 1];
}

function activationOf(layer: Layer): { name: string; fn: (z: tf.Tensor) => tf.Tensor } {
  const config = layer.getConfig() as { activation?: string };
  const name = config.activation ?? 'linear';
  // The layer's own activation object, so every activation TF.js knows behaves as in inference.
  const act = (layer as unknown as { activation?: { apply(x: tf.Tensor): tf.Tensor } }).activation;
  if (!act || typeof act.apply !== 'function') refuse(layer, 'its activation function cannot be read');
  return { name, fn: (z) => act.apply(z) };
}

function isChain(net: LayersModel): boolean {
  if (net.inputs.length !== 1 || net.outputs.length !== 1) return false;
  let prev: Layer | null = null;
  for (const layer of net.layers) {
    // A layer called more than once (shared weights) has several inbound nodes.
    if (layer.inboundNodes.length !== 1) return false;
    const inbound = layer.inboundNodes[0].inboundLayers;
    if (prev === null) {
      // A Sequential model's implicit input layer is not among its layers.
      if (inbound.length > 1 || (inbound.length === 1 && net.layers.includes(inbound[0]))) return false;
    } else if (inbound.length !== 1 || inbound[0] !== prev) {
      return false;
    }
    prev = layer;
  }
  return net.outputs[0].sourceLayer === prev;
}

/** Inspects a model and returns the plan DP-SGD follows, or refuses naming the first layer it cannot clip. */
export function planDpModel(net: LayersModel): DpPlan {
  if (!isChain(net)) {
    throw new BulwarkError('E_USAGE', `DP-SGD needs a model whose layers form one chain (a Sequential model); '${net.name}' has branches or several inputs or outputs`);
  }
  const steps: PlanStep[] = [];
  for (const layer of net.layers) {
    const cls = layer.getClassName();
    if (cls === 'Dense' || cls === 'Conv2D') {
      const config = layer.getConfig() as { useBias?: boolean; dataFormat?: string; dilationRate?: unknown; padding?: string; strides?: unknown; kernelSize?: unknown };
      const inShape = layer.inputSpec?.[0]?.ndim ?? (layer.batchInputShape?.length ?? 0);
      const weights = layer.weights;
      const kernel = weights[0]?.read() as tf.Variable | undefined;
      const bias = config.useBias === false ? null : ((weights[1]?.read() as tf.Variable | undefined) ?? null);
      if (!kernel) refuse(layer, 'it has no kernel (was the model built?)');
      const { name, fn } = activationOf(layer);
      const trainable = layer.trainable && layer.trainableWeights.length > 0;
      if (cls === 'Dense') {
        if (kernel.shape.length !== 2 || (typeof inShape === 'number' && inShape > 2)) refuse(layer, 'a Dense layer applied to inputs of rank above 2 is not supported; add a Flatten before it');
        steps.push({ kind: 'dense', layer, kernel, bias, trainable, activationName: name, activation: fn });
      } else {
        if (config.dataFormat && config.dataFormat !== 'channelsLast') refuse(layer, 'only channels-last convolutions are supported');
        const dil = pair(config.dilationRate);
        if (dil[0] !== 1 || dil[1] !== 1) refuse(layer, 'dilated convolutions are not supported');
        const padding = config.padding === 'same' ? 'same' : config.padding === 'valid' ? 'valid' : refuse(layer, `padding '${config.padding}' is not supported`);
        steps.push({
          kind: 'conv2d', layer, kernel, bias, trainable, activationName: name, activation: fn,
          conv: { kernelSize: [kernel.shape[0] as number, kernel.shape[1] as number], strides: pair(config.strides), padding },
        });
      }
      continue;
    }
    if (PER_EXAMPLE_LAYERS.has(cls) && layer.weights.length === 0) {
      steps.push({ kind: 'pass', layer });
      continue;
    }
    refuse(layer, WHY[cls] ?? (layer.weights.length > 0 ? 'it has weights DP-SGD does not know how to clip' : 'it is not known to act on each example separately'));
  }
  const trainable = steps.filter((s): s is ParamStep => s.kind !== 'pass' && s.trainable);
  const covered = new Set(trainable.flatMap((s) => [s.kernel, s.bias].filter(Boolean)));
  const missing = net.trainableWeights.find((w) => !covered.has(w.read() as tf.Variable));
  if (missing) throw new BulwarkError('E_USAGE', `DP-SGD cannot account for the trainable weight '${missing.name}'; refusing rather than training it without privacy`);
  if (trainable.length === 0) throw new BulwarkError('E_USAGE', `model '${net.name}' has no trainable Dense or Conv2D layer for DP-SGD to train`);
  const last = steps[steps.length - 1];
  const softmaxLast = last.kind !== 'pass' && last.activationName === 'softmax';
  return { steps, trainable, logits: softmaxLast ? 'pre-softmax' : 'log-output' };
}

export interface Forward {
  /** [B, classes] logits (or log-probabilities). */
  logits: tf.Tensor2D;
  /** The input of each trainable step (when captured). */
  inputs: tf.Tensor[];
}

/**
 * The model's forward pass, step by step. `probes` (one zero tensor per trainable step,
 * added to its pre-activation output) let a gradient with respect to them give each
 * example's output gradient δ at every trainable layer in one backward pass.
 */
export function forward(plan: DpPlan, x: tf.Tensor, training: boolean, probes: tf.Tensor[] | null, capture: boolean): Forward {
  let h = x;
  const inputs: tf.Tensor[] = [];
  let t = 0;
  let logits: tf.Tensor | null = null;
  plan.steps.forEach((step, i) => {
    const last = i === plan.steps.length - 1;
    if (step.kind === 'pass') {
      if (step.layer.getClassName() !== 'InputLayer') h = step.layer.apply(h, { training }) as tf.Tensor;
      return;
    }
    let z: tf.Tensor;
    if (step.kind === 'dense') {
      z = tf.matMul(h as tf.Tensor2D, step.kernel as tf.Tensor2D);
    } else {
      const c = step.conv!;
      z = tf.conv2d(h as tf.Tensor4D, step.kernel as tf.Tensor4D, c.strides, c.padding);
    }
    if (step.bias) z = tf.add(z, step.bias);
    if (step.trainable) {
      if (capture) inputs.push(tf.keep(h));
      if (probes) z = tf.add(z, probes[t]);
      t++;
    }
    if (last && plan.logits === 'pre-softmax') logits = z;
    else h = step.activation(z);
  });
  if (!logits) logits = tf.log(tf.clipByValue(h, 1e-12, 1));
  return { logits: logits as tf.Tensor2D, inputs };
}

/** Output shape of each trainable step for a batch of `b` (the probe shapes). */
export function probeShapes(plan: DpPlan, b: number): number[][] {
  return plan.trainable.map((s) => {
    const shape = s.layer.outputShape as (number | null)[];
    if (!Array.isArray(shape) || shape.slice(1).some((d) => d === null)) {
      throw new BulwarkError('E_USAGE', `layer '${s.layer.name}' has an output shape DP-SGD cannot determine`);
    }
    return [b, ...(shape.slice(1) as number[])];
  });
}
