import * as tf from '@tensorflow/tfjs-core';
import type { NoiseSource } from './noise.js';
import type { DpPlan, ParamStep } from './layers.js';

/**
 * DP-SGD's step for chains of Dense layers, written out by hand: the forward pass keeps
 * each layer's input and output, the backward pass computes each layer's output gradient δ
 * directly (δ_{l−1} = (δ_l·W_lᵀ) ⊙ mask ⊙ act′), the softmax cross-entropy and its
 * gradient are done in JS on the [m, classes] logits. No autodiff tape: the same
 * arithmetic as the generic path with far fewer kernels, which on WebAssembly is what
 * decides the speed of a small MLP.
 */

const FUSED = new Set(['relu', 'linear']);
const FROM_OUTPUT = new Set(['relu', 'linear', 'tanh', 'sigmoid']);

interface DenseLayerStep {
  step: ParamStep;
  /** Dropout rate applied to this layer's output (0: none). */
  dropout: number;
  last: boolean;
}

/** The dense chain of a plan, when every layer has a derivative computable from its output; null otherwise. */
export function denseChain(plan: DpPlan): DenseLayerStep[] | null {
  const out: DenseLayerStep[] = [];
  let sawDense = false;
  for (const s of plan.steps) {
    const cls = s.layer.getClassName();
    if (s.kind === 'dense') {
      out.push({ step: s, dropout: 0, last: false });
      sawDense = true;
    } else if (s.kind === 'conv2d') {
      return null;
    } else if (cls === 'Dropout' && sawDense) {
      const cfg = s.layer.getConfig() as { rate?: number; noiseShape?: unknown };
      if (cfg.noiseShape) return null;
      const prev = out[out.length - 1];
      prev.dropout = 1 - (1 - prev.dropout) * (1 - (cfg.rate ?? 0));
    } else if (!((cls === 'Flatten' || cls === 'InputLayer') && !sawDense)) {
      return null;
    }
  }
  if (out.length === 0) return null;
  out[out.length - 1].last = true;
  for (const l of out) {
    const act = l.step.activationName;
    if (l.last ? !(act === 'softmax' && plan.logits === 'pre-softmax') : !FROM_OUTPUT.has(act)) return null;
  }
  // The first trainable layer must come after every frozen one: nothing is back-propagated into a frozen layer's input.
  const firstTrainable = out.findIndex((l) => l.step.trainable);
  if (out.slice(firstTrainable).some((l) => !l.step.trainable)) return null;
  return out;
}

export interface DenseStepResult {
  /** Clipped per-example gradient sums, kept: each trainable layer's kernel, then bias. */
  grads: tf.Tensor[];
  loss: number;
  correct: number;
  clipped: number;
}

/** One DP step's clipped gradient sum for a dense chain. */
export function denseDpStep(chain: DenseLayerStep[], x: Float32Array, y: Int32Array, maxGradNorm: number, masks: NoiseSource): DenseStepResult {
  const m = y.length;
  const d = x.length / m;
  let loss = 0;
  let correct = 0;
  let clipped = 0;
  const grads = tf.tidy(() => {
    let h: tf.Tensor2D = tf.tensor2d(x, [m, d]);
    const inputs: tf.Tensor2D[] = [];
    const outputs: tf.Tensor2D[] = [];
    const dropMasks: (tf.Tensor2D | null)[] = [];
    let logits: tf.Tensor2D | null = null;
    for (const l of chain) {
      const s = l.step;
      inputs.push(h);
      const act = s.activationName;
      if (l.last) {
        const z = tf.fused.matMul({ a: h, b: s.kernel as tf.Tensor2D, bias: s.bias ?? undefined }) as tf.Tensor2D;
        logits = z;
        outputs.push(z);
        dropMasks.push(null);
        break;
      }
      let out: tf.Tensor2D = FUSED.has(act)
        ? (tf.fused.matMul({ a: h, b: s.kernel as tf.Tensor2D, bias: s.bias ?? undefined, activation: act as 'relu' | 'linear' }) as tf.Tensor2D)
        : (s.activation(tf.fused.matMul({ a: h, b: s.kernel as tf.Tensor2D, bias: s.bias ?? undefined })) as tf.Tensor2D);
      outputs.push(out);
      let mask: tf.Tensor2D | null = null;
      if (l.dropout > 0) {
        const keep = 1 - l.dropout;
        const values = new Float32Array(out.size);
        masks.fillUniform(values);
        for (let i = 0; i < values.length; i++) values[i] = values[i] < keep ? 1 / keep : 0;
        mask = tf.tensor2d(values, [out.shape[0], out.shape[1]]);
        out = tf.mul(out, mask) as tf.Tensor2D;
      }
      dropMasks.push(mask);
      h = out;
    }
    // Softmax cross-entropy in JS; δ of the logits is p − onehot (summed loss: one example, one row).
    const z = (logits as unknown as tf.Tensor2D).dataSync() as Float32Array;
    const k = z.length / m;
    const dz = new Float32Array(z.length);
    for (let i = 0; i < m; i++) {
      let max = -Infinity;
      let best = 0;
      for (let j = 0; j < k; j++) {
        if (z[i * k + j] > max) {
          max = z[i * k + j];
          best = j;
        }
      }
      let sum = 0;
      for (let j = 0; j < k; j++) sum += Math.exp(z[i * k + j] - max);
      for (let j = 0; j < k; j++) dz[i * k + j] = Math.exp(z[i * k + j] - max) / sum;
      loss -= z[i * k + y[i]] - max - Math.log(sum);
      if (best === y[i]) correct++;
      dz[i * k + y[i]] -= 1;
    }
    // Backward to every trainable layer's δ.
    const deltas: tf.Tensor2D[] = new Array(chain.length);
    deltas[chain.length - 1] = tf.tensor2d(dz, [m, k]);
    const first = chain.findIndex((l) => l.step.trainable);
    for (let i = chain.length - 1; i > first; i--) {
      let g = tf.matMul(deltas[i], chain[i].step.kernel as tf.Tensor2D, false, true) as tf.Tensor2D;
      const mask = dropMasks[i - 1];
      if (mask) g = tf.mul(g, mask) as tf.Tensor2D;
      deltas[i - 1] = activationBackward(chain[i - 1].step.activationName, g, outputs[i - 1]);
    }
    // Per-example norms (‖aᵢ‖²·‖δᵢ‖² per dense layer), clip factors, clipped sums.
    const trainable = chain.map((l, i) => ({ l, i })).filter(({ l }) => l.step.trainable);
    const sqParts = trainable.map(({ l, i }) => {
      const dd = tf.sum(tf.square(deltas[i]), 1);
      const part = tf.mul(tf.sum(tf.square(inputs[i]), 1), dd);
      return l.step.bias ? tf.add(part, dd) : part;
    });
    const norms = tf.sqrt(sqParts.length === 1 ? sqParts[0] : tf.addN(sqParts));
    const factors = tf.reshape(tf.minimum(1, tf.div(maxGradNorm, tf.add(norms, 1e-6))), [m, 1]);
    clipped = tf.sum(tf.cast(tf.greater(norms, maxGradNorm), 'float32')).dataSync()[0];
    const sums: tf.Tensor[] = [];
    for (const { l, i } of trainable) {
      const dc = tf.mul(deltas[i], factors) as tf.Tensor2D;
      sums.push(tf.matMul(inputs[i], dc, true, false));
      if (l.step.bias) sums.push(tf.sum(dc, 0));
    }
    return sums;
  });
  return { grads, loss, correct, clipped };
}

/** The gradient through an activation, from the activation's output y. */
function activationBackward(name: string, g: tf.Tensor2D, y: tf.Tensor2D): tf.Tensor2D {
  switch (name) {
    case 'relu':
      return tf.mul(g, tf.step(y)) as tf.Tensor2D;
    case 'tanh':
      return tf.mul(g, tf.sub(1, tf.square(y))) as tf.Tensor2D;
    case 'sigmoid':
      return tf.mul(g, tf.mul(y, tf.sub(1, y))) as tf.Tensor2D;
    default:
      return g;
  }
}
