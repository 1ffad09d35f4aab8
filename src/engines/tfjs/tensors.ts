import * as tf from '@tensorflow/tfjs-core';
import type { Samples } from '../../core/index.js';

/** Samples → a tensor with the model's per-sample shape (the caller disposes it). */
export function toTensor(x: Samples, sampleShape: readonly number[]): tf.Tensor {
  return tf.tensor(x.data, [x.shape[0], ...sampleShape], 'float32');
}

/** A tensor's values copied out as Samples (the tensor stays owned by the caller). */
export function fromTensor(t: tf.Tensor): Samples {
  const data = t.dataSync();
  return { data: data instanceof Float32Array ? new Float32Array(data) : Float32Array.from(data), shape: t.shape };
}

export function oneHot(y: Int32Array, numClasses: number): tf.Tensor2D {
  return tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(y, 'int32'), numClasses), 'float32') as tf.Tensor2D);
}
