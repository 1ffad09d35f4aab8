// The training step's pieces: the hand-written dense step against tf.grad, the two training
// paths against each other, our Adam against tf.train.adam, and the dropout masks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import { initTfjs } from '../../src/engines/tfjs/backend.js';
import { TfjsModel } from '../../src/engines/tfjs/model.js';
import { Adam } from '../../src/engines/tfjs/adam.js';
import { denseStep } from '../../src/engines/tfjs/dense-step.js';
import { DropoutStream } from '../../src/engines/tfjs/dropout.js';
import { denseStack, denseWeights } from '../../src/engines/tfjs/layers.js';
import { Rng } from '../../src/core/rng.js';
import type { Dataset } from '../../src/core/dataset.js';

process.env.BULWARK_TFJS_BACKEND = 'wasm';
await initTfjs();

function uniform(rng: Rng, n: number, lo = -1, hi = 1): Float32Array {
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * rng.next());
}

type LayerSpec = { dense: number; activation?: 'relu' | 'linear' | 'softmax'; trainable?: boolean } | { dropout: number } | { activation: 'linear' };

/** A sequential classifier with seeded weights; `{activation}` alone adds an Activation layer. */
function net(inputs: number, specs: LayerSpec[], seed: number): TfjsModel {
  let s = seed;
  const layers = specs.map((spec, i) => {
    const first = i === 0 ? { inputShape: [inputs] } : {};
    if ('dropout' in spec) return tfl.layers.dropout({ ...first, rate: spec.dropout });
    if (!('dense' in spec)) return tfl.layers.activation({ ...first, activation: spec.activation });
    return tfl.layers.dense({
      ...first,
      units: spec.dense,
      activation: spec.activation ?? 'linear',
      trainable: spec.trainable ?? true,
      kernelInitializer: tfl.initializers.glorotUniform({ seed: s++ }),
      biasInitializer: tfl.initializers.randomUniform({ minval: -0.1, maxval: 0.1, seed: s++ }),
    });
  });
  return new TfjsModel(tfl.sequential({ layers }), { name: 'test net' });
}

function maxRelDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  const scale = Math.max(1e-6, ...Array.from(b, Math.abs));
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m / scale;
}

const shapes: [string, LayerSpec[]][] = [
  ['relu → dropout → softmax (the zoo MLP)', [{ dense: 24, activation: 'relu' }, { dropout: 0.3 }, { dense: 5, activation: 'softmax' }]],
  [
    'frozen linear → linear → dropout → relu → dropout → softmax',
    [{ dense: 11, trainable: false }, { dense: 13 }, { dropout: 0.5 }, { dense: 9, activation: 'relu' }, { dropout: 0.2 }, { dense: 4, activation: 'softmax' }],
  ],
  ['softmax only (logistic)', [{ dense: 3, activation: 'softmax' }]],
];

for (const [name, specs] of shapes) {
  test(`the hand-written dense step gives tf.grad's loss, hits and gradients: ${name}`, () => {
    const rng = new Rng(name.length);
    const [m, d] = [37, 10];
    const model = net(d, specs, 3);
    const ops = denseStack(model.net);
    assert.ok(ops, 'the net is a dense stack');
    const weights = denseWeights(ops);
    const trainable = model.net.trainableWeights.map((w) => w.read().id).sort();
    assert.deepEqual(weights.map((w) => w.id).sort(), trainable, 'the step trains exactly the trainable weights');
    const y = Int32Array.from({ length: m }, () => rng.int(model.info.numClasses));
    const xs = uniform(rng, m * d);
    const before = tf.memory().numTensors;
    // Two streams with one seed draw the same masks, one through our kernel, one in JS.
    const stream = new DropoutStream(new Rng(9));
    const ours = tf.tidy(() => {
      const r = denseStep(ops, tf.tensor2d(xs, [m, d]), y, stream);
      return { loss: r.loss, correct: r.correct, grads: r.grads.map((g) => g.dataSync() as Float32Array) };
    });
    stream.dispose();
    const ref = tf.tidy(() => {
      const x = tf.tensor2d(xs, [m, d]);
      const labels = tf.oneHot(tf.tensor1d(y, 'int32'), model.info.numClasses);
      const stream = new DropoutStream(new Rng(9));
      let correct = 0;
      const { value, grads } = tf.variableGrads(() => {
        const z = model.logits(x, true, stream);
        correct = tf.sum(tf.cast(tf.equal(tf.argMax(z, 1), tf.tensor1d(y, 'int32')), 'float32')).dataSync()[0];
        return tf.losses.softmaxCrossEntropy(labels, z) as tf.Scalar;
      }, weights);
      return { loss: value.dataSync()[0], correct, grads: weights.map((w) => grads[w.name].dataSync() as Float32Array) };
    });
    assert.equal(tf.memory().numTensors, before, 'no tensor left behind');
    assert.ok(Math.abs(ours.loss - ref.loss) < 1e-5 * Math.max(1, ref.loss), `loss ${ours.loss} vs ${ref.loss}`);
    assert.equal(ours.correct, ref.correct);
    assert.equal(ours.grads.length, ref.grads.length);
    for (let i = 0; i < ref.grads.length; i++) {
      const diff = maxRelDiff(ours.grads[i], ref.grads[i]);
      assert.ok(diff < 1e-5, `gradient of weight ${i} [${weights[i].shape}]: relative difference ${diff}`);
    }
    model.dispose();
  });
}

test('a net outside the dense fast path (an Activation layer) trains to the same weights through tf.grad', async () => {
  const rng = new Rng(4);
  const [n, d] = [96, 12];
  const data: Dataset = {
    name: 'noise',
    x: { data: uniform(rng, n * d, 0, 1), shape: [n, d] },
    y: Int32Array.from({ length: n }, () => rng.int(3)),
    classNames: ['a', 'b', 'c'],
  };
  const dense: LayerSpec[] = [{ dense: 16, activation: 'relu' }, { dropout: 0.25 }, { dense: 3, activation: 'softmax' }];
  const fast = net(d, dense, 8);
  const slow = net(d, [{ activation: 'linear' }, ...dense], 8);
  assert.ok(denseStack(fast.net) && !denseStack(slow.net), 'one net takes each path');
  const opts = { epochs: 3, batchSize: 20, learningRate: 0.01, seed: 6 };
  const a = await fast.fit(data, opts);
  const b = await slow.fit(data, opts);
  for (let e = 0; e < 3; e++) {
    assert.ok(Math.abs(a.epochs[e].loss - b.epochs[e].loss) < 1e-4, `epoch ${e + 1} loss ${a.epochs[e].loss} vs ${b.epochs[e].loss}`);
    assert.equal(a.epochs[e].accuracy, b.epochs[e].accuracy);
  }
  const wa = fast.net.getWeights().map((w) => w.dataSync() as Float32Array);
  const wb = slow.net.getWeights().map((w) => w.dataSync() as Float32Array);
  for (let i = 0; i < wa.length; i++) assert.ok(maxRelDiff(wa[i], wb[i]) < 1e-4, `weight ${i} differs by ${maxRelDiff(wa[i], wb[i])}`);
  fast.dispose();
  slow.dispose();
});

test('Adam updates as tf.train.adam does, bit for bit, with our kernel (wasm) and with plain ops (cpu)', async () => {
  for (const backend of ['wasm', 'cpu']) {
    assert.ok(await tf.setBackend(backend));
    try {
      const rng = new Rng(12);
      const shapes = [[37], [5, 9]];
      const init = shapes.map((s) => tf.tensor(uniform(rng, s.reduce((a, b) => a * b, 1)), s));
      const mine = init.map((t) => tf.variable(t.clone()));
      const theirs = init.map((t) => tf.variable(t.clone()));
      const adam = new Adam(mine, { learningRate: 0.02 });
      const ref = tf.train.adam(0.02);
      for (let step = 0; step < 4; step++) {
        const grads = shapes.map((s) => tf.tensor(uniform(rng, s.reduce((a, b) => a * b, 1)), s));
        adam.step(grads);
        ref.applyGradients(theirs.map((v, i) => ({ name: v.name, tensor: grads[i] })));
        tf.dispose(grads);
        for (let i = 0; i < shapes.length; i++) {
          assert.deepEqual(Array.from(mine[i].dataSync()), Array.from(theirs[i].dataSync()), `${backend}: weight ${i} after step ${step + 1}`);
        }
      }
      adam.dispose();
      ref.dispose();
      tf.dispose([...init, ...mine, ...theirs]);
    } finally {
      await tf.setBackend('wasm');
    }
  }
});

test('dropout masks: fresh every step, repeated by the seed, the same from the kernel and from JS', () => {
  const x = tf.ones([64, 40]) as tf.Tensor2D;
  const kept = (t: tf.Tensor) => Array.from(t.dataSync()).filter((v) => v > 0).length / t.size;
  const a = new DropoutStream(new Rng(1));
  const b = new DropoutStream(new Rng(1));
  const c = new DropoutStream(new Rng(2));
  const a1 = tf.tidy(() => a.apply(x, 0.3).mask.dataSync());
  const a2 = tf.tidy(() => a.apply(x, 0.3));
  const b1 = b.mask([64, 40], 0.3);
  const c1 = c.mask([64, 40], 0.3);
  assert.deepEqual(Array.from(b1.dataSync()), Array.from(a1), 'the kernel (a) and JS (b) draw the same mask from one seed');
  assert.notDeepEqual(Array.from(a2.mask.dataSync()), Array.from(a1), 'the next step draws another mask');
  assert.notDeepEqual(Array.from(c1.dataSync()), Array.from(a1), 'another seed, another mask');
  assert.deepEqual(Array.from(a2.y.dataSync()), Array.from(a2.mask.dataSync()), 'y = x·mask');
  const k = kept(a2.mask);
  assert.ok(Math.abs(k - 0.7) < 0.05, `kept ${k}, want ≈ 0.7`);
  assert.ok(Math.abs(Math.max(...a2.mask.dataSync()) - 1 / 0.7) < 1e-6, 'kept values are scaled by 1/(1 − rate)');
  // After a JS mask, the kernel goes on from where JS left off (and the other way round).
  const b2 = tf.tidy(() => b.apply(x, 0.3).mask.dataSync());
  const a3 = a.mask([64, 40], 0.3);
  assert.deepEqual(Array.from(b2), Array.from(a2.mask.dataSync()));
  tf.dispose([x, a2.y, a2.mask, b1, c1, a3]);
  for (const s of [a, b, c]) s.dispose();
});

test('soft targets: the loss and its gradient match hand-computed values, and one-hot targets equal hard labels', async () => {
  const { softmaxCrossEntropy } = await import('../../src/engines/tfjs/dense-step.js');
  // One row, z = [1, 2, 3]: p = softmax(z) = [0.0900306, 0.2447285, 0.6652410].
  const z = Float32Array.from([1, 2, 3]);
  const t = Float32Array.from([0.2, 0.3, 0.5]);
  const r = softmaxCrossEntropy(z, Int32Array.from([2]), 1, 3, t);
  // −Σ t·log p = −(0.2·log 0.0900306 + 0.3·log 0.2447285 + 0.5·log 0.6652410) = 1.1076060 (numpy)
  assert.ok(Math.abs(r.loss - 1.107606) < 1e-5, `loss ${r.loss}`);
  const want = [0.0900306 - 0.2, 0.2447285 - 0.3, 0.665241 - 0.5];
  want.forEach((w, j) => assert.ok(Math.abs(r.dz[j] - w) < 1e-5, `dz[${j}] ${r.dz[j]} vs ${w}`));
  assert.equal(r.correct, 1);
  const hard = softmaxCrossEntropy(z, Int32Array.from([1]), 1, 3);
  const oneHot = softmaxCrossEntropy(z, Int32Array.from([1]), 1, 3, Float32Array.from([0, 1, 0]));
  assert.ok(Math.abs(hard.loss - oneHot.loss) < 1e-6);
  hard.dz.forEach((v, j) => assert.ok(Math.abs(v - oneHot.dz[j]) < 1e-7));
});

test('fit with soft targets learns the teacher\'s probabilities, not just its labels; bad soft targets are refused', async () => {
  const rng = new Rng(3);
  const n = 400;
  const x = uniform(rng, n * 4);
  // The teacher: fixed softmax probabilities of a linear map, deliberately unsure.
  const soft = new Float32Array(n * 3);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const a = [x[i * 4] + x[i * 4 + 1], x[i * 4 + 2] - x[i * 4], 0.5 * x[i * 4 + 3]];
    const e = a.map((v) => Math.exp(v));
    const s = e[0] + e[1] + e[2];
    e.forEach((v, j) => (soft[i * 3 + j] = v / s));
    y[i] = e.indexOf(Math.max(...e));
  }
  const data: Dataset = { name: 'soft', x: { data: x, shape: [n, 4] }, y, classNames: ['a', 'b', 'c'] };
  const model = net(4, [{ dense: 3, activation: 'softmax' }], 11);
  await model.fit(data, { epochs: 60, batchSize: 50, learningRate: 0.05, seed: 1, soft: { data: soft, shape: [n, 3] } });
  const p = await model.predict(data.x);
  let gap = 0;
  for (let i = 0; i < p.data.length; i++) gap = Math.max(gap, Math.abs(p.data[i] - soft[i]));
  // A model trained on hard labels would push these towards 0 and 1; this one matches the teacher's scores.
  assert.ok(gap < 0.08, `largest gap to the teacher's probabilities ${gap}`);
  await assert.rejects(model.fit(data, { epochs: 1, soft: { data: soft.subarray(0, 30), shape: [10, 3] } }), /soft targets have shape \[10, 3\]/);
  const bad = soft.slice();
  bad[5] = 2;
  await assert.rejects(model.fit(data, { epochs: 1, soft: { data: bad, shape: [n, 3] } }), /soft targets row 1/);
  model.dispose();
});
