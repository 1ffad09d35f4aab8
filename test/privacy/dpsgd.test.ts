import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { BulwarkError, Rng, argmaxRows, subset, type Dataset } from '../../src/core/index.js';
import { loadDigitsSplit } from '../../src/data/index.js';
import { initTfjs, TfjsModel } from '../../src/engines/index.js';
import { createZooModel } from '../../src/zoo/index.js';
import { clippedGradientSums, computeEpsilon, perExampleGradientNorms, trainDpSgd } from '../../src/privacy/index.js';

await initTfjs();

/** Each example's gradient norm the slow way: one backward pass per example. */
function naiveNorms(model: TfjsModel, x: Float32Array, shape: number[], y: Int32Array): number[] {
  const n = shape[0];
  const size = x.length / n;
  const vars = model.net.trainableWeights.map((w) => w.read() as tf.Variable);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    out.push(
      tf.tidy(() => {
        const xi = tf.tensor(x.subarray(i * size, (i + 1) * size), [1, ...shape.slice(1)]);
        const label = tf.cast(tf.oneHot(tf.tensor1d([y[i]], 'int32'), model.info.numClasses), 'float32');
        const { grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(label, model.logits(xi, false), undefined, undefined, tf.Reduction.SUM) as tf.Scalar, vars);
        return Math.sqrt(Object.values(grads).reduce((s, g) => s + tf.sum(tf.square(g)).dataSync()[0], 0));
      }),
    );
  }
  return out;
}

function randomInputs(shape: number[], seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal());
}

function assertClose(fast: Float32Array, slow: number[], label: string): void {
  assert.equal(fast.length, slow.length);
  for (let i = 0; i < slow.length; i++) {
    assert.ok(Math.abs(fast[i] - slow[i]) <= 1e-4 * Math.max(1, slow[i]), `${label}, example ${i}: ghost ${fast[i]} vs per-example loop ${slow[i]}`);
  }
}

test('ghost-clipped per-example norms equal a per-example loop: Dense layers', () => {
  const net = tfl.sequential({
    layers: [
      tfl.layers.dense({ inputShape: [5], units: 4, activation: 'tanh', kernelInitializer: tfl.initializers.glorotUniform({ seed: 1 }) }),
      tfl.layers.dropout({ rate: 0.3 }),
      tfl.layers.dense({ units: 6, useBias: false, activation: 'relu', kernelInitializer: tfl.initializers.glorotUniform({ seed: 2 }) }),
      tfl.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: tfl.initializers.glorotUniform({ seed: 3 }) }),
    ],
  });
  const model = new TfjsModel(net, { name: 'tiny-dense' });
  const shape = [7, 5];
  const x = randomInputs(shape, 11);
  const y = Int32Array.from({ length: 7 }, (_, i) => i % 3);
  const before = tf.memory().numTensors;
  const fast = perExampleGradientNorms(model, { data: x, shape }, y);
  assert.equal(tf.memory().numTensors, before, 'no tensor left behind');
  assertClose(fast, naiveNorms(model, x, shape, y), 'dense');
  model.dispose();
});

test('ghost-clipped per-example norms equal a per-example loop: Conv2D layers (valid, same, strided)', () => {
  const init = (seed: number) => tfl.initializers.glorotUniform({ seed });
  const cases: { label: string; shape: number[]; layers: () => tfl.layers.Layer[] }[] = [
    {
      label: 'valid, then same with a non-square kernel and pooling',
      shape: [5, 7, 6, 2],
      layers: () => [
        tfl.layers.conv2d({ inputShape: [7, 6, 2], filters: 3, kernelSize: 3, activation: 'relu', kernelInitializer: init(4) }),
        tfl.layers.conv2d({ filters: 4, kernelSize: [2, 3], padding: 'same', activation: 'sigmoid', kernelInitializer: init(5) }),
        tfl.layers.maxPooling2d({ poolSize: 2 }),
        tfl.layers.flatten(),
        tfl.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: init(6) }),
      ],
    },
    {
      label: 'strided, valid and same',
      shape: [4, 9, 10, 1],
      layers: () => [
        tfl.layers.conv2d({ inputShape: [9, 10, 1], filters: 2, kernelSize: 3, strides: 2, activation: 'relu', kernelInitializer: init(7) }),
        tfl.layers.conv2d({ filters: 3, kernelSize: 2, strides: 2, padding: 'same', kernelInitializer: init(8) }),
        tfl.layers.flatten(),
        tfl.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: init(9) }),
      ],
    },
    {
      // Many channels on few positions: the norms come from per-example gradients rather than the P×P ghost product.
      label: 'wide kernel on a small map',
      shape: [3, 4, 4, 6],
      layers: () => [
        tfl.layers.conv2d({ inputShape: [4, 4, 6], filters: 8, kernelSize: 3, activation: 'relu', kernelInitializer: init(10) }),
        tfl.layers.globalAveragePooling2d({}),
        tfl.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: init(11) }),
      ],
    },
  ];
  for (const c of cases) {
    const model = new TfjsModel(tfl.sequential({ layers: c.layers() }), { name: c.label });
    const x = randomInputs(c.shape, 12);
    const y = Int32Array.from({ length: c.shape[0] }, (_, i) => i % 3);
    assertClose(perExampleGradientNorms(model, { data: x, shape: c.shape }, y), naiveNorms(model, x, c.shape, y), c.label);
    model.dispose();
  }
});

test('a layer DP-SGD cannot clip exactly is refused by name, never trained without privacy', async () => {
  const data: Dataset = { name: 'toy', x: { data: new Float32Array(40 * 4), shape: [40, 4] }, y: new Int32Array(40), classNames: ['a', 'b'] };
  const bn = new TfjsModel(
    tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [4], units: 8 }), tfl.layers.batchNormalization({ name: 'bn1' }), tfl.layers.dense({ units: 2, activation: 'softmax' })] }),
    { name: 'bn' },
  );
  await assert.rejects(trainDpSgd(bn, data, { noiseMultiplier: 1, batchSize: 10 }), (e: unknown) => e instanceof BulwarkError && e.code === 'E_USAGE' && /'bn1' \(BatchNormalization\)/.test(e.message) && /whole batch/.test(e.message));
  const input = tfl.input({ shape: [4] });
  const a = tfl.layers.dense({ units: 3 }).apply(input) as tfl.SymbolicTensor;
  const b = tfl.layers.dense({ units: 3 }).apply(input) as tfl.SymbolicTensor;
  const out = tfl.layers.dense({ units: 2, activation: 'softmax' }).apply(tfl.layers.concatenate().apply([a, b]) as tfl.SymbolicTensor) as tfl.SymbolicTensor;
  const branched = new TfjsModel(tfl.model({ inputs: input, outputs: out }), { name: 'branched' });
  await assert.rejects(trainDpSgd(branched, data, { noiseMultiplier: 1, batchSize: 10 }), (e: unknown) => e instanceof BulwarkError && e.code === 'E_USAGE' && /one chain/.test(e.message));
  bn.dispose();
  branched.dispose();
});

const { train, test: held } = await loadDigitsSplit();
const small = subset(train, new Rng(5).permutation(train.y.length).slice(0, 1500));

async function accuracy(model: TfjsModel, ds: Dataset): Promise<number> {
  const p = argmaxRows(await model.predict(ds.x));
  return p.reduce((s, c, i) => s + (c === ds.y[i] ? 1 : 0), 0) / p.length;
}

test('DP-SGD trains a digits model well above chance and spends exactly what the accountant says', async () => {
  const model = createZooModel('logistic', { inputShape: [28, 28, 1], numClasses: 10, seed: 3 });
  const before = tf.memory().numTensors;
  const r = await trainDpSgd(model, small, { noiseMultiplier: 1.0, batchSize: 150, epochs: 4, learningRate: 0.01, accountant: 'rdp', seed: 9 });
  assert.equal(tf.memory().numTensors, before, 'DP-SGD leaves no tensor behind');
  assert.equal(r.steps, 40);
  assert.equal(r.sampleRate, 0.1);
  assert.equal(r.sampling, 'poisson');
  const expected = computeEpsilon({ sampleRate: 0.1, noiseMultiplier: 1.0, steps: 40, delta: 1e-5, accountant: 'rdp' });
  assert.equal(r.epsilon, expected);
  assert.ok(r.epochs.length === 4 && r.epochs[3].epsilon === expected && r.epochs[0].epsilon < r.epochs[3].epsilon, 'ε reported as it grows');
  const acc = await accuracy(model, held);
  assert.ok(acc > 0.6, `test accuracy ${acc} (chance is 0.1)`);
  model.dispose();
});

test('DP-SGD trains a convolutional model through the generic path', async () => {
  // Bright top half: class 0; bright bottom half: class 1.
  const n = 240;
  const rng = new Rng(8);
  const x = new Float32Array(n * 36);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = i % 2;
    for (let p = 0; p < 36; p++) x[i * 36 + p] = 0.3 * rng.next() + ((p < 18) === (y[i] === 0) ? 0.6 : 0);
  }
  const data: Dataset = { name: 'halves', x: { data: x, shape: [n, 6, 6, 1] }, y, classNames: ['top', 'bottom'] };
  const net = tfl.sequential({
    layers: [
      tfl.layers.conv2d({ inputShape: [6, 6, 1], filters: 4, kernelSize: 3, activation: 'relu', kernelInitializer: tfl.initializers.glorotUniform({ seed: 1 }) }),
      tfl.layers.maxPooling2d({ poolSize: 2 }),
      tfl.layers.flatten(),
      tfl.layers.dense({ units: 2, activation: 'softmax', kernelInitializer: tfl.initializers.glorotUniform({ seed: 2 }) }),
    ],
  });
  const model = new TfjsModel(net, { name: 'tiny-cnn' });
  const before = tf.memory().numTensors;
  const r = await trainDpSgd(model, data, { noiseMultiplier: 0.8, batchSize: 40, epochs: 8, learningRate: 0.02, accountant: 'rdp' });
  assert.equal(tf.memory().numTensors, before);
  assert.equal(r.epsilon, computeEpsilon({ sampleRate: 40 / n, noiseMultiplier: 0.8, steps: r.steps, delta: 1e-5, accountant: 'rdp' }));
  const acc = await accuracy(model, data);
  assert.ok(acc > 0.85, `accuracy ${acc}`);
  model.dispose();
});

test('DP-SGD calibrates σ to a target ε, and stops at the budget when σ is fixed', async () => {
  const model = createZooModel('logistic', { inputShape: [28, 28, 1], numClasses: 10, seed: 4 });
  const r = await trainDpSgd(model, small, { targetEpsilon: 2, batchSize: 150, epochs: 3, learningRate: 0.01, seed: 1 });
  assert.ok(r.epsilon <= 2 && r.epsilon > 1.95, `spent ${r.epsilon}`);
  assert.equal(r.accountant, 'prv');
  assert.equal(r.steps, r.plannedSteps);
  const capped = await trainDpSgd(model, small, { targetEpsilon: 1, noiseMultiplier: 3, batchSize: 150, epochs: 20, accountant: 'rdp', seed: 2, secureNoise: true });
  assert.ok(capped.stoppedAtBudget && capped.steps < capped.plannedSteps, `${capped.steps} of ${capped.plannedSteps} steps`);
  assert.equal(capped.steps, 43);
  assert.ok(capped.epsilon <= 1, `spent ${capped.epsilon}`);
  assert.equal(capped.noise, 'secure');
  model.dispose();
});

test('DP-SGD refuses bad budgets and empty batches, and warns when δ protects nobody', async () => {
  const model = createZooModel('logistic', { inputShape: [28, 28, 1], numClasses: 10, seed: 5 });
  const usage = (pattern: RegExp) => (e: unknown) => e instanceof BulwarkError && e.code === 'E_USAGE' && pattern.test(e.message);
  await assert.rejects(trainDpSgd(model, small, { targetEpsilon: 0 }), usage(/ε must be a positive number/));
  await assert.rejects(trainDpSgd(model, small, { targetEpsilon: -3 }), usage(/ε must be a positive number/));
  await assert.rejects(trainDpSgd(model, small, {}), usage(/needs a privacy budget/));
  await assert.rejects(trainDpSgd(model, small, { noiseMultiplier: 1, batchSize: 2 }), usage(/empty/));
  const tiny = subset(small, Int32Array.from({ length: 200 }, (_, i) => i));
  const r = await trainDpSgd(model, tiny, { noiseMultiplier: 1, batchSize: 50, epochs: 1, delta: 0.01, sampling: 'shuffle', accountant: 'rdp' });
  assert.ok(r.warnings.some((w) => /protects nobody/.test(w)), r.warnings.join('; '));
  assert.ok(r.warnings.some((w) => /not a guarantee/.test(w)));
  model.dispose();
});

test('the dense fast path and the generic path clip to the same gradient sums', () => {
  const init = (seed: number) => tfl.initializers.glorotUniform({ seed });
  const net = tfl.sequential({
    layers: [
      tfl.layers.flatten({ inputShape: [4, 3, 1] }),
      tfl.layers.dense({ units: 8, activation: 'relu', kernelInitializer: init(1), biasInitializer: 'randomNormal' }),
      tfl.layers.dense({ units: 5, activation: 'tanh', kernelInitializer: init(2) }),
      tfl.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: init(3) }),
    ],
  });
  const model = new TfjsModel(net, { name: 'chain' });
  const shape = [9, 4, 3, 1];
  const x = { data: randomInputs(shape, 4), shape };
  const y = Int32Array.from({ length: 9 }, (_, i) => i % 3);
  const before = tf.memory().numTensors;
  // A small C clips most examples, so the factors matter.
  const fast = clippedGradientSums(model, x, y, 0.5, 'dense');
  const generic = clippedGradientSums(model, x, y, 0.5, 'generic');
  assert.equal(tf.memory().numTensors, before);
  assert.equal(fast.length, 6);
  fast.forEach((g, i) => g.forEach((v, j) => assert.ok(Math.abs(v - generic[i][j]) < 1e-5, `tensor ${i}[${j}]: ${v} vs ${generic[i][j]}`)));
  model.dispose();
});
