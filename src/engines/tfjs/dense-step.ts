import * as tf from '@tensorflow/tfjs-core';
import type { DropoutStream } from './dropout.js';
import type { DenseOp } from './layers.js';
import { GEMM_KERNEL, RELU_GRAD_KERNEL } from './simd-kernels.js';

export interface StepResult {
  /** Mean softmax cross-entropy over the batch. */
  loss: number;
  correct: number;
  /** Gradients of the mean loss, in `denseWeights` order (tidy-owned by the caller's scope). */
  grads: tf.Tensor[];
}

/**
 * Forward and backward pass of a dense stack (see `denseStack`) written out by hand
 * instead of through `layer.apply` and `tf.grad`: the same arithmetic, in about fifteen
 * kernels, without the tape and symbolic-layer bookkeeping. On the digits MLP a step took
 * ~0.6× the time of the tf.grad path (both with our Adam). Call inside `tf.tidy`.
 *
 * - Products go through `product` (our SIMD matrix product on wasm), bias and ReLU fused
 *   into the forward ones; weight gradients are aᵀ·g read from a as stored.
 * - Softmax cross-entropy, its gradient (p − onehot)/m, the loss and the hits are computed
 *   in JS from the [m, classes] logits (a few thousand numbers), not in a dozen kernels.
 * - Dropout masks come from `dropout`, fresh at every step (tfjs-layers' Dropout with a
 *   seed repeats one mask at every call); the mask and the ReLU's gradient are applied in
 *   one pass (`reluGrad`; a step ~5% faster than Step and two Multiply kernels).
 * - Bias gradients are onesᵀ·g (on wasm the axis-0 Sum transposes first: ~130 µs for
 *   [128, 256], the product ~10 µs).
 */
export function denseStep(ops: readonly DenseOp[], x: tf.Tensor, y: Int32Array, dropout: DropoutStream, soft?: Float32Array): StepResult {
  const m = x.shape[0];
  let h: tf.Tensor2D = tf.reshape(x, [m, -1]);
  // What the backward pass needs from each op: the dense input and output, the dropout mask.
  const saved: { input: tf.Tensor2D; output: tf.Tensor2D; mask?: tf.Tensor2D }[] = [];
  for (const op of ops) {
    if (op.kind === 'dense') {
      const out = product(h, op.kernel, { bias: op.bias ?? undefined, relu: op.relu });
      saved.push({ input: h, output: out });
      h = out;
    } else {
      const { y, mask } = dropout.apply(h, op.rate);
      saved.push({ input: h, output: y, mask });
      h = y;
    }
  }
  const k = h.shape[1];
  const { loss, correct, dz } = softmaxCrossEntropy(h.dataSync() as Float32Array, y, m, k, soft);
  const grads: tf.Tensor[] = [];
  // Gradients wrt inputs are needed only down to the first trainable layer.
  const firstTrainable = ops.findIndex((o) => o.kind === 'dense' && o.trainable);
  if (firstTrainable < 0) return { loss, correct, grads };
  let g: tf.Tensor2D = tf.tensor2d(dz, [m, k]);
  const ones = tf.ones([m, 1]) as tf.Tensor2D;
  let mask: tf.Tensor2D | undefined; // a dropout mask not yet applied to g
  for (let i = ops.length - 1; i >= firstTrainable; i--) {
    const op = ops[i];
    const s = saved[i];
    if (op.kind === 'dropout') {
      if (mask) g = tf.mul(g, mask) as tf.Tensor2D;
      mask = s.mask;
      continue;
    }
    if (op.relu) g = reluGrad(g, s.output, mask);
    else if (mask) g = tf.mul(g, mask) as tf.Tensor2D;
    mask = undefined;
    if (op.trainable) {
      const layerGrads: tf.Tensor[] = [product(s.input, g, { transposeA: true })];
      if (op.bias) layerGrads.push(tf.reshape(product(ones, g, { transposeA: true }), op.bias.shape));
      grads.unshift(...layerGrads);
    }
    if (i > firstTrainable) g = tf.matMul(g, op.kernel as tf.Tensor2D, false, true);
  }
  return { loss, correct, grads };
}

/**
 * a·b (aᵀ·b with transposeA), plus a bias row and ReLU if asked. On wasm this is our own
 * SIMD product (BulwarkGemm), which reads b where it lies: XNNPACK, behind tf.matMul,
 * first repacks any b it has not seen, and in training every weight and every gradient is
 * new. For the 784×256 layer on a batch of 128 the repacking took about as long as the
 * product (forward 4.4–6.8 ms → 2.9–3.5 ms; 25th percentiles, alternated, on this loaded
 * machine), and aᵀ·b needs no transpose of a. A step of the digits MLP: 1.34–1.40× slower
 * through tf.matMul.
 */
function product(a: tf.Tensor2D, b: tf.Tensor, o: { transposeA?: boolean; bias?: tf.Tensor; relu?: boolean }): tf.Tensor2D {
  const attrs = { transposeA: o.transposeA ?? false, relu: o.relu ?? false };
  if (tf.getKernel(GEMM_KERNEL, tf.getBackend())) {
    const inputs: tf.NamedTensorMap = o.bias ? { a, b, bias: o.bias } : { a, b };
    return tf.engine().runKernel(GEMM_KERNEL, inputs, attrs) as tf.Tensor2D;
  }
  // (wasm's _FusedMatMul has no fast path for a transposed a; only BatchMatMul is patched)
  if (!o.bias && !attrs.relu) return tf.matMul(a, b as tf.Tensor2D, attrs.transposeA, false);
  return tf.fused.matMul({ a, b: b as tf.Tensor2D, transposeA: attrs.transposeA, bias: o.bias, activation: attrs.relu ? 'relu' : 'linear' }) as tf.Tensor2D;
}

/** g where the ReLU's output y is positive (times a dropout mask that followed it), else 0. */
function reluGrad(g: tf.Tensor2D, y: tf.Tensor2D, mask: tf.Tensor2D | undefined): tf.Tensor2D {
  if (tf.getKernel(RELU_GRAD_KERNEL, tf.getBackend())) {
    return tf.engine().runKernel(RELU_GRAD_KERNEL, mask ? { dy: g, y, mask } : { dy: g, y }) as tf.Tensor2D;
  }
  return tf.mul(mask ? tf.mul(g, mask) : g, tf.step(y)) as tf.Tensor2D;
}

/**
 * Mean cross-entropy of softmax(z) against y — or against the soft targets `t` ([m, k] rows of
 * probabilities) when given — the hits against y, and d(mean loss)/dz = (p − target)/m.
 */
export function softmaxCrossEntropy(z: Float32Array, y: Int32Array, m: number, k: number, t?: Float32Array) {
  const dz = new Float32Array(m * k);
  let loss = 0;
  let correct = 0;
  for (let i = 0; i < m; i++) {
    const o = i * k;
    let max = z[o];
    let arg = 0;
    for (let j = 1; j < k; j++) {
      if (z[o + j] > max) {
        max = z[o + j];
        arg = j;
      }
    }
    let sum = 0;
    for (let j = 0; j < k; j++) {
      const e = Math.exp(z[o + j] - max);
      dz[o + j] = e;
      sum += e;
    }
    const label = y[i];
    const logZ = Math.log(sum) + max;
    if (arg === label) correct++;
    if (t) {
      for (let j = 0; j < k; j++) {
        const tj = t[o + j];
        if (tj > 0) loss += tj * (logZ - z[o + j]);
        dz[o + j] = (dz[o + j] / sum - tj) / m;
      }
    } else {
      loss += logZ - z[o + label];
      for (let j = 0; j < k; j++) dz[o + j] = (dz[o + j] / sum - (j === label ? 1 : 0)) / m;
    }
  }
  return { loss: loss / m, correct, dz };
}
