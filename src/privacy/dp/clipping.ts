import * as tf from '@tensorflow/tfjs-core';
import type { DpPlan, ParamStep } from './layers.js';

/**
 * Per-example gradient norms without a per-example loop (the "ghost clipping" /
 * book-keeping idea of Goodfellow 2015, Lee and Kifer 2021, Li et al. 2022, Bu et al. 2023).
 * For a layer z = a·W + b, example i's weight gradient is aᵢᵀδᵢ, so
 *   Dense:  ‖gᵢ‖² = ‖aᵢ‖²·‖δᵢ‖² (+ ‖δᵢ‖² for the bias);
 *   Conv2D: gᵢ = Uᵢᵀ Δᵢ with Uᵢ the unfolded input patches [P, k·k·cin] and Δᵢ the output
 *           gradient [P, cout]; ‖gᵢ‖² = ⟨UᵢUᵢᵀ, ΔᵢΔᵢᵀ⟩ when P² is small (ghost), else
 *           ‖Uᵢᵀ Δᵢ‖² directly, whichever costs fewer operations.
 * The clipped sum Σ cᵢ gᵢ is then one more product per layer: aᵀ(c ⊙ δ).
 */

interface Prepared {
  /** [B] squared norm of this layer's part of each example's gradient. */
  sq: tf.Tensor1D;
  /** The clipped sum of this layer's gradients for per-example factors c [B]: kernel, then bias. */
  sum(c: tf.Tensor1D): tf.Tensor[];
}

function prepareDense(step: ParamStep, a: tf.Tensor, d: tf.Tensor): Prepared {
  const a2 = a as tf.Tensor2D;
  const d2 = d as tf.Tensor2D;
  const dd = tf.sum(tf.square(d2), 1);
  let sq = tf.mul(tf.sum(tf.square(a2), 1), dd);
  if (step.bias) sq = tf.add(sq, dd);
  return {
    sq: sq as tf.Tensor1D,
    sum(c) {
      const dc = tf.mul(d2, tf.reshape(c, [-1, 1]));
      const out: tf.Tensor[] = [tf.matMul(a2, dc as tf.Tensor2D, true, false)];
      if (step.bias) out.push(tf.sum(dc, 0));
      return out;
    },
  };
}

/** The input patches each output position of a convolution sees: [B, P, kh·kw·cin], in the kernel's (dy, dx, c) order. */
export function unfold(a: tf.Tensor4D, kernelSize: [number, number], strides: [number, number], padding: 'same' | 'valid'): tf.Tensor3D {
  const [b, h, w, cin] = a.shape;
  const [kh, kw] = kernelSize;
  const [sh, sw] = strides;
  let oh: number;
  let ow: number;
  let x = a;
  if (padding === 'same') {
    oh = Math.ceil(h / sh);
    ow = Math.ceil(w / sw);
    // TensorFlow's rule: the odd pixel of padding goes at the bottom/right.
    const ph = Math.max((oh - 1) * sh + kh - h, 0);
    const pw = Math.max((ow - 1) * sw + kw - w, 0);
    if (ph > 0 || pw > 0) {
      x = tf.pad(a, [[0, 0], [Math.floor(ph / 2), ph - Math.floor(ph / 2)], [Math.floor(pw / 2), pw - Math.floor(pw / 2)], [0, 0]]);
    }
  } else {
    oh = Math.floor((h - kh) / sh) + 1;
    ow = Math.floor((w - kw) / sw) + 1;
  }
  const pieces: tf.Tensor4D[] = [];
  for (let dy = 0; dy < kh; dy++) {
    for (let dx = 0; dx < kw; dx++) {
      pieces.push(
        sh === 1 && sw === 1
          ? tf.slice(x, [0, dy, dx, 0], [b, oh, ow, cin])
          : (tf.stridedSlice(x, [0, dy, dx, 0], [b, dy + (oh - 1) * sh + 1, dx + (ow - 1) * sw + 1, cin], [1, sh, sw, 1]) as tf.Tensor4D),
      );
    }
  }
  return tf.reshape(tf.concat(pieces, 3), [b, oh * ow, kh * kw * cin]);
}

function prepareConv(step: ParamStep, a: tf.Tensor, d: tf.Tensor): Prepared {
  const c = step.conv!;
  const u = unfold(a as tf.Tensor4D, c.kernelSize, c.strides, c.padding);
  const [b, p, k] = u.shape;
  const cout = d.shape[3] as number;
  const dm = tf.reshape(d, [b, p, cout]) as tf.Tensor3D;
  const kernelShape = step.kernel.shape;
  let sq: tf.Tensor1D;
  let weightSum: (c: tf.Tensor1D) => tf.Tensor;
  if (2 * p * p < k * cout) {
    sq = tf.sum(tf.mul(tf.matMul(u, u, false, true), tf.matMul(dm, dm, false, true)), [1, 2]) as tf.Tensor1D;
    weightSum = (cf) => {
      const dc = tf.mul(dm, tf.reshape(cf, [-1, 1, 1]));
      return tf.reshape(tf.matMul(tf.reshape(u, [b * p, k]) as tf.Tensor2D, tf.reshape(dc, [b * p, cout]) as tf.Tensor2D, true, false), kernelShape);
    };
  } else {
    const g = tf.matMul(u, dm, true, false); // [B, k, cout]: each example's kernel gradient
    sq = tf.sum(tf.square(g), [1, 2]) as tf.Tensor1D;
    weightSum = (cf) => tf.reshape(tf.sum(tf.mul(g, tf.reshape(cf, [-1, 1, 1])), 0), kernelShape);
  }
  const db = step.bias ? (tf.sum(dm, 1) as tf.Tensor2D) : null;
  if (db) sq = tf.add(sq, tf.sum(tf.square(db), 1));
  return {
    sq,
    sum(cf) {
      const out = [weightSum(cf)];
      if (db) out.push(tf.sum(tf.mul(db, tf.reshape(cf, [-1, 1])), 0));
      return out;
    },
  };
}

export interface Clipped {
  /** Clipped gradient sums, one per trainable variable (each step's kernel, then its bias). */
  grads: tf.Tensor[];
  /** [B] per-example gradient norms before clipping. */
  norms: tf.Tensor1D;
}

/**
 * From each trainable step's input a and output gradient δ (rows are examples): every
 * example's full gradient norm, and Σᵢ min(1, C/‖gᵢ‖)·gᵢ. Call inside tf.tidy.
 */
export function clipAndSum(plan: DpPlan, inputs: tf.Tensor[], deltas: tf.Tensor[], maxGradNorm: number): Clipped {
  const parts = plan.trainable.map((step, i) => (step.kind === 'dense' ? prepareDense(step, inputs[i], deltas[i]) : prepareConv(step, inputs[i], deltas[i])));
  const sq = parts.length === 1 ? parts[0].sq : (tf.addN(parts.map((p) => p.sq)) as tf.Tensor1D);
  const norms = tf.sqrt(sq) as tf.Tensor1D;
  const factors = tf.minimum(1, tf.div(maxGradNorm, tf.add(norms, 1e-6))) as tf.Tensor1D;
  return { grads: parts.flatMap((p) => p.sum(factors)), norms };
}

/** The per-example squared norms alone (for tests and diagnostics). Call inside tf.tidy. */
export function perExampleSquaredNorms(plan: DpPlan, inputs: tf.Tensor[], deltas: tf.Tensor[]): tf.Tensor1D {
  const parts = plan.trainable.map((step, i) => (step.kind === 'dense' ? prepareDense(step, inputs[i], deltas[i]) : prepareConv(step, inputs[i], deltas[i])));
  return (parts.length === 1 ? parts[0].sq : tf.addN(parts.map((p) => p.sq))) as tf.Tensor1D;
}
