import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { BulwarkError, Rng, checkDataset, type Dataset, type Model, type Samples } from '../../core/index.js';
import { TfjsModel } from '../../engines/index.js';
import type { PoisonResult } from './poison.js';
import { dataRange } from './triggers.js';

export interface CleanLabelOptions {
  kind: 'clean-label';
  /** Share of the dataset turned into poisons (they keep their correct labels). */
  rate: number;
  /** The white-box model whose features the poisons collide in (a TF.js model). */
  model: Model;
  /** The instance the attacker wants misclassified: one sample. */
  targetSample: Samples;
  /** The class it should be taken for; the poisons are made from rows of this class. */
  baseClass: number;
  /** Layer whose features collide (default the penultimate). */
  layer?: string;
  /** Forward–backward steps per poison (default 200). */
  iterations?: number;
  /** Weight of staying close to the base image, scaled as in the paper (default 0.25). */
  beta?: number;
  /** Step size of the forward (gradient) step (default 0.01). */
  stepSize?: number;
  seed?: number;
}

/**
 * Feature-collision poisons (Shafahi et al. 2018, "Poison Frogs"): images of the base class,
 * correctly labelled, nudged until their features at a chosen layer match those of the
 * target instance, so a model trained on them draws its boundary around the target. Made by
 * forward–backward splitting: a gradient step on ‖f(x) − f(t)‖², then the proximal step
 * towards the base image, x ← (x + λβ·b) / (1 + λβ).
 */
export async function featureCollision(ds: Dataset, opts: CleanLabelOptions): Promise<PoisonResult> {
  checkDataset(ds);
  const model = opts.model;
  if (!(model instanceof TfjsModel)) {
    throw new BulwarkError('E_MODEL_CAPABILITY', `clean-label feature collision needs the gradients of a hidden layer, which only a TF.js model offers; model '${model.info.name}' is a ${model.info.engine} model`);
  }
  const n = ds.x.shape[0];
  const k = ds.classNames.length;
  const size = ds.x.data.length / n;
  if (!(opts.rate > 0 && opts.rate < 1)) throw new BulwarkError('E_USAGE', `poisoning rate must be in (0, 1), got ${opts.rate}`);
  if (!Number.isInteger(opts.baseClass) || opts.baseClass < 0 || opts.baseClass >= k) throw new BulwarkError('E_USAGE', `base class must be in 0..${k - 1}, got ${opts.baseClass}`);
  if (opts.targetSample.data.length !== size) throw new BulwarkError('E_DATA_SHAPE', `the target sample has ${opts.targetSample.data.length} values; the data's samples have ${size}`);
  const layerName = opts.layer ?? model.penultimateLayer();
  const layer = model.net.layers.find((l) => l.name === layerName);
  if (!layer) throw new BulwarkError('E_USAGE', `model '${model.info.name}' has no layer '${layerName}'; its layers are: ${model.layerNames().join(', ')}`);
  const iterations = opts.iterations ?? 200;
  const step = opts.stepSize ?? 0.01;
  const candidates: number[] = [];
  for (let i = 0; i < n; i++) if (ds.y[i] === opts.baseClass) candidates.push(i);
  const count = Math.max(1, Math.round(opts.rate * n));
  if (count > candidates.length) throw new BulwarkError('E_USAGE', `cannot make ${count} poisons from the ${candidates.length} rows of class '${ds.classNames[opts.baseClass]}'; lower the rate`);
  const rng = new Rng(opts.seed ?? 42);
  rng.shuffle(candidates);
  const rows = Int32Array.from(candidates.slice(0, count)).sort();
  const { min, max } = dataRange(ds.x);
  const inputShape = model.info.inputShape;
  // Not disposed: it shares the model's layers and weights.
  const features = tfl.model({ inputs: model.net.inputs, outputs: layer.output as tfl.SymbolicTensor });
  const featureDim = (layer.outputShape as number[]).slice(1).reduce((a, b) => a * b, 1);
  // The paper scales β by (feature dimension / input dimension)² so one value suits any model.
  const beta = (opts.beta ?? 0.25) * (featureDim / size) ** 2;

  const x = Float32Array.from(ds.x.data);
  tf.tidy(() => {
    const target = tf.tensor(opts.targetSample.data, [1, ...inputShape]);
    const ft = tf.keep(features.apply(target, { training: false }) as tf.Tensor);
    const base = tf.tensor(takeRows(ds.x.data, rows, size), [rows.length, ...inputShape]);
    let p = base.clone();
    const grad = tf.grad((inp: tf.Tensor) => tf.sum(tf.square(tf.sub(features.apply(inp, { training: false }) as tf.Tensor, ft))));
    for (let it = 0; it < iterations; it++) {
      const next = tf.tidy(() => {
        const fwd = tf.sub(p, tf.mul(grad(p), step));
        const bwd = tf.div(tf.add(fwd, tf.mul(base, step * beta)), 1 + step * beta);
        return tf.clipByValue(bwd, min, max);
      });
      p.dispose();
      p = next;
    }
    const out = p.dataSync();
    rows.forEach((r, i) => x.set(out.subarray(i * size, (i + 1) * size), r * size));
    ft.dispose();
  });
  return {
    dataset: { ...ds, name: `${ds.name} (poisoned)`, x: { data: x, shape: [...ds.x.shape] }, y: Int32Array.from(ds.y) },
    poisonedIndices: rows,
    originalLabels: Int32Array.from(ds.y),
    description: `${rows.length} clean-label feature-collision poisons (class '${ds.classNames[opts.baseClass]}', labels unchanged) colliding at layer '${layerName}' with the target instance`,
  };
}

function takeRows(data: Float32Array, rows: Int32Array, size: number): Float32Array {
  const out = new Float32Array(rows.length * size);
  rows.forEach((r, i) => out.set(data.subarray(r * size, (r + 1) * size), i * size));
  return out;
}
