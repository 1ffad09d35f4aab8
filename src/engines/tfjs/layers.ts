import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import type { DropoutStream } from './dropout.js';

type Layer = LayersModel['layers'][number];

/** One layer of a plain stack of dense layers, as the training step sees it. */
export type DenseOp =
  | { kind: 'dense'; kernel: tf.Variable; bias: tf.Variable | null; relu: boolean; trainable: boolean }
  | { kind: 'dropout'; rate: number };

/**
 * The net as a list of dense / dropout steps, when it is a sequential stack of InputLayer,
 * Flatten, Dense (linear or relu, with a softmax Dense last) and Dropout layers on flat
 * rows; null for anything else (those nets train through tf.grad instead).
 */
export function denseStack(net: LayersModel): DenseOp[] | null {
  if (net.inputs.length !== 1 || net.outputs.length !== 1) return null;
  const layers = net.layers;
  if (!layers.every((l) => l.inboundNodes.length <= 1)) return null;
  let rank = net.inputs[0].shape.length;
  const ops: DenseOp[] = [];
  for (let i = 0; i < layers.length; i++) {
    const l = layers[i];
    const cls = l.getClassName();
    const config = l.getConfig() as { activation?: string; useBias?: boolean; noiseShape?: unknown; dtype?: string };
    if (cls === 'InputLayer') continue;
    if (cls === 'Flatten') {
      rank = 2;
      continue;
    }
    if (rank !== 2) return null;
    if (cls === 'Dropout') {
      if (config.noiseShape != null) return null;
      const rate = (l as unknown as { rate: number }).rate;
      if (rate > 0) ops.push({ kind: 'dropout', rate });
    } else if (cls === 'Dense') {
      const last = i === layers.length - 1;
      const act = config.activation ?? 'linear';
      if (!(last ? act === 'softmax' : act === 'linear' || act === 'relu')) return null;
      const weights = l.weights.map((w) => w.read() as tf.Variable);
      const hasBias = config.useBias !== false;
      if (weights.length !== (hasBias ? 2 : 1) || weights.some((w) => w.dtype !== 'float32')) return null;
      ops.push({ kind: 'dense', kernel: weights[0], bias: hasBias ? weights[1] : null, relu: act === 'relu', trainable: l.trainable });
    } else {
      return null;
    }
  }
  const lastOp = ops.at(-1);
  return lastOp?.kind === 'dense' ? ops : null;
}

/** The trainable weights of a dense stack, in the order of `denseStep`'s gradients. */
export function denseWeights(ops: readonly DenseOp[]): tf.Variable[] {
  return ops.flatMap((o) => (o.kind === 'dense' && o.trainable ? (o.bias ? [o.kernel, o.bias] : [o.kernel]) : []));
}

/**
 * One layer's output, computed directly for the layers a classifier is mostly made of
 * (InputLayer, Flatten, Dense with linear or ReLU activation, Dropout) and through
 * `layer.apply` for the rest. `apply` on a concrete tensor still runs the symbolic-layer
 * machinery (name scopes, input specs, Identity copies of every output); skipped here, a
 * training step of the digits MLP through tf.grad took 0.86× the time. Dense goes through the same
 * fused product tfjs-layers' Dense uses, so the numbers are the same. Dropout, when training,
 * draws a fresh mask from `dropout` (tfjs-layers' seeded Dropout repeats one mask forever).
 */
export function forwardLayer(l: Layer, h: tf.Tensor, training: boolean, dropout: DropoutStream | null): tf.Tensor {
  const cls = l.getClassName();
  if (cls === 'InputLayer') return h;
  if (cls === 'Flatten' && h.rank >= 2) return tf.reshape(h, [h.shape[0], -1]);
  if (cls === 'Dropout') {
    const { rate, noiseShape } = l as unknown as { rate: number; noiseShape?: unknown };
    if (!training || rate === 0) return h;
    if (noiseShape == null && dropout) return tf.mul(h, dropout.mask(h.shape, rate));
  }
  if (cls === 'Dense' && h.rank === 2) {
    const config = l.getConfig() as { activation?: string; useBias?: boolean };
    const act = config.activation ?? 'linear';
    const weights = l.weights.map((w) => w.read());
    if ((act === 'linear' || act === 'relu') && weights.every((w) => w.dtype === 'float32')) {
      const bias = config.useBias === false ? undefined : weights[1];
      return tf.fused.matMul({ a: h as tf.Tensor2D, b: weights[0] as tf.Tensor2D, bias, activation: act });
    }
  }
  return l.apply(h, { training }) as tf.Tensor;
}
