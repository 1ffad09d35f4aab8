import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initTfjs } from '../../src/engines/tfjs/backend.js';
import { TfjsModel } from '../../src/engines/tfjs/model.js';
import { saveTfjsModel, loadTfjsModel } from '../../src/engines/tfjs/io.js';
import { createZooModel } from '../../src/zoo/architectures.js';
import { BulwarkError, type ErrorCode } from '../../src/core/errors.js';
import { Rng } from '../../src/core/rng.js';
import { requireCapability, type Model, type Predictor } from '../../src/core/model.js';
import type { Samples } from '../../src/core/samples.js';
import type { Dataset } from '../../src/core/dataset.js';

await initTfjs();
const dir = await mkdtemp(join(tmpdir(), 'bulwark-tfjs-'));
after(() => rm(dir, { recursive: true, force: true }));

function uniformSamples(rng: Rng, shape: number[], lo = 0, hi = 1): Samples {
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = lo + (hi - lo) * rng.next();
  return { data, shape };
}

function row(x: Samples, i: number): Samples {
  const size = x.data.length / x.shape[0];
  return { data: x.data.slice(i * size, (i + 1) * size), shape: [1, ...x.shape.slice(1)] };
}

/** log-softmax of each row of [n, k] logits, in float64. */
function logSoftmaxRows(z: Samples): number[][] {
  const [n, k] = z.shape;
  const out: number[][] = [];
  for (let i = 0; i < n; i++) {
    const r = Array.from(z.data.subarray(i * k, (i + 1) * k));
    const m = Math.max(...r);
    const lse = m + Math.log(r.reduce((s, v) => s + Math.exp(v - m), 0));
    out.push(r.map((v) => v - lse));
  }
  return out;
}

/**
 * Central finite difference of f(row i of x) along input coordinate j, where f is read from
 * the model's logits (float32 logits, float64 arithmetic after them). The step is small
 * (1e-3, not the usual float32 1e-2) because the ReLU and max-pool kinks of these nets lie
 * within 1e-2 of some sample points, where a wider step no longer measures the derivative;
 * taking the log-softmax in float64 keeps the rounding error of the small step near 1e-4.
 */
async function finiteDifference(
  model: TfjsModel,
  x: Samples,
  i: number,
  j: number,
  f: (logProbs: number[]) => number,
  eps = 1e-3,
): Promise<number> {
  const plus = row(x, i);
  const minus = row(x, i);
  plus.data[j] += eps;
  minus.data[j] -= eps;
  const lp = logSoftmaxRows(await model.predictLogits(plus))[0];
  const lm = logSoftmaxRows(await model.predictLogits(minus))[0];
  return (f(lp) - f(lm)) / (2 * eps);
}

function assertClose(got: number, want: number, what: string, rel = 2e-2, abs = 5e-5): void {
  const tol = rel * Math.max(Math.abs(got), Math.abs(want)) + abs;
  assert.ok(Math.abs(got - want) <= tol, `${what}: analytic ${got} vs finite difference ${want} (tolerance ${tol})`);
}

async function expectError(p: Promise<unknown> | (() => unknown), code: ErrorCode, message?: RegExp): Promise<BulwarkError> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    assert.ok(e instanceof BulwarkError, `expected a BulwarkError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (message) assert.match(e.message, message);
    return e;
  }
  assert.fail(`expected ${code}, but nothing was thrown`);
}

function weightsOf(model: TfjsModel): Float32Array[] {
  return model.net.getWeights().map((w) => w.dataSync() as Float32Array).map((a) => new Float32Array(a));
}

/** Checks lossGradient and classGradient of `model` against finite differences at a few points. */
async function checkGradients(model: TfjsModel, x: Samples, y: Int32Array, classes: Int32Array, coords: number[]): Promise<void> {
  const size = x.data.length / x.shape[0];
  const lg = await model.lossGradient(x, y);
  const cg = await model.classGradient(x, classes);
  assert.deepEqual(lg.shape, x.shape);
  assert.deepEqual(cg.shape, x.shape);
  let nonZero = 0;
  for (let i = 0; i < x.shape[0]; i++) {
    for (const j of coords) {
      const wantLoss = await finiteDifference(model, x, i, j, (lp) => -lp[y[i]]);
      assertClose(lg.data[i * size + j], wantLoss, `lossGradient row ${i} coordinate ${j}`);
      const wantClass = await finiteDifference(model, x, i, j, (lp) => lp[classes[i]]);
      assertClose(cg.data[i * size + j], wantClass, `classGradient row ${i} coordinate ${j} (class ${classes[i]})`);
      if (Math.abs(wantLoss) > 1e-3) nonZero++;
    }
  }
  assert.ok(nonZero > coords.length, 'the checked gradients are not all (trivially) zero');
}

test('lossGradient and classGradient of the zoo MLP match finite differences', async () => {
  const model = createZooModel('mlp', { inputShape: [4, 4, 1], numClasses: 3, seed: 1 });
  const rng = new Rng(5);
  const x = uniformSamples(rng, [4, 4, 4, 1]);
  const y = Int32Array.from([0, 1, 2, 1]);
  const classes = Int32Array.from([2, 0, 1, 1]);
  await checkGradients(model, x, y, classes, [0, 3, 5, 10, 15]);
  model.dispose();
});

test('lossGradient gives each row its own gradient, not divided by the batch size', async () => {
  const model = createZooModel('mlp', { inputShape: [4, 4, 1], numClasses: 3, seed: 1 });
  const x = uniformSamples(new Rng(6), [5, 4, 4, 1]);
  const y = Int32Array.from([0, 1, 2, 0, 1]);
  const batch = await model.lossGradient(x, y);
  const batchClass = await model.classGradient(x, y);
  for (let i = 0; i < 5; i++) {
    const alone = await model.lossGradient(row(x, i), y.subarray(i, i + 1));
    const aloneClass = await model.classGradient(row(x, i), y.subarray(i, i + 1));
    for (let j = 0; j < 16; j++) {
      assert.ok(Math.abs(batch.data[i * 16 + j] - alone.data[j]) < 1e-5, `row ${i}: batched and single-row loss gradients agree`);
      assert.ok(Math.abs(batchClass.data[i * 16 + j] - aloneClass.data[j]) < 1e-5, `row ${i}: batched and single-row class gradients agree`);
      // For cross-entropy, d(-log p_y) = -d(log p_y).
      assert.ok(Math.abs(batch.data[i * 16 + j] + batchClass.data[i * 16 + j]) < 1e-5);
    }
  }
  model.dispose();
});

test('gradients match finite differences for a model whose softmax is a separate layer', async () => {
  // Not a softmax Dense layer at the end: the logits fall back to log(probabilities).
  let seed = 11;
  const net = tfl.sequential({
    layers: [
      tfl.layers.flatten({ inputShape: [3, 2] }),
      tfl.layers.dense({ units: 8, activation: 'tanh', kernelInitializer: tfl.initializers.glorotUniform({ seed: seed++ }) }),
      tfl.layers.dense({ units: 3, kernelInitializer: tfl.initializers.glorotUniform({ seed: seed++ }) }),
      tfl.layers.activation({ activation: 'softmax' }),
    ],
  });
  const model = new TfjsModel(net, { name: 'separate softmax' });
  assert.equal(model.info.numClasses, 3);
  const x = uniformSamples(new Rng(12), [3, 3, 2], -1, 1);
  await checkGradients(model, x, Int32Array.from([0, 2, 1]), Int32Array.from([1, 1, 0]), [0, 1, 2, 3, 4, 5]);
  model.dispose();
});

test('gradients of the zoo CNN match finite differences (uses the WebAssembly conv kernels)', async () => {
  const model = createZooModel('cnn', { inputShape: [16, 16, 1], numClasses: 3, seed: 2 });
  const x = uniformSamples(new Rng(13), [2, 16, 16, 1]);
  await checkGradients(model, x, Int32Array.from([1, 2]), Int32Array.from([0, 1]), [17, 68, 119, 136, 200]);
  model.dispose();
});

test('gradients reject labels that do not fit', async () => {
  const model = createZooModel('mlp', { inputShape: [4, 4, 1], numClasses: 3, seed: 1 });
  const x = uniformSamples(new Rng(1), [2, 4, 4, 1]);
  await expectError(model.lossGradient(x, Int32Array.from([0])), 'E_DATA_SHAPE');
  await expectError(model.classGradient(x, Int32Array.from([0, 3])), 'E_DATA_VALUE', /label 3 at row 1/);
  await expectError(model.lossGradient({ data: new Float32Array(10), shape: [2, 5] }, Int32Array.from([0, 1])), 'E_DATA_SHAPE');
  model.dispose();
});

test('predict gives probability rows; softmax of predictLogits equals predict; both match tfjs-layers', async () => {
  const model = createZooModel('mlp', { inputShape: [4, 4, 1], numClasses: 3, seed: 1 });
  const x = uniformSamples(new Rng(2), [10, 4, 4, 1], -3, 3);
  const p = await model.predict(x);
  const z = await model.predictLogits(x);
  assert.deepEqual(p.shape, [10, 3]);
  assert.deepEqual(z.shape, [10, 3]);
  const lsm = logSoftmaxRows(z);
  const ref = tf.tidy(() => (model.net.predict(tf.tensor(x.data, [10, 4, 4, 1])) as tf.Tensor).dataSync());
  for (let i = 0; i < 10; i++) {
    let s = 0;
    for (let c = 0; c < 3; c++) {
      const v = p.data[i * 3 + c];
      assert.ok(v >= 0 && v <= 1);
      s += v;
      assert.ok(Math.abs(Math.exp(lsm[i][c]) - v) < 1e-6, `row ${i} class ${c}: softmax(logits) = predict`);
      assert.ok(Math.abs(ref[i * 3 + c] - v) < 1e-6, `row ${i} class ${c}: predict = tfjs-layers predict`);
    }
    assert.ok(Math.abs(s - 1) < 1e-5, `row ${i} sums to ${s}`);
  }
  model.dispose();
});

test('predict over more rows than one internal batch equals predicting the parts', async () => {
  const model = createZooModel('mlp', { inputShape: [4, 4, 1], numClasses: 3, seed: 1 });
  const n = 1500;
  const x = uniformSamples(new Rng(3), [n, 4, 4, 1]);
  const all = await model.predict(x);
  assert.deepEqual(all.shape, [n, 3]);
  const tail = await model.predict({ data: x.data.slice(1100 * 16), shape: [n - 1100, 4, 4, 1] });
  assert.deepEqual(Array.from(all.data.subarray(1100 * 3)), Array.from(tail.data));
  const empty = await model.predict({ data: new Float32Array(0), shape: [0, 4, 4, 1] });
  assert.deepEqual(empty.shape, [0, 3]);
  model.dispose();
});

test('activations at dense1 of the digits MLP are [n, 256]; unknown layers are named in the error', async () => {
  const model = createZooModel('mlp', { inputShape: [28, 28, 1], numClasses: 10, seed: 1 });
  const x = uniformSamples(new Rng(4), [7, 28, 28, 1]);
  const a = await model.activations(x, 'dense1');
  assert.deepEqual(a.shape, [7, 256]);
  assert.ok(a.data.every((v) => v >= 0), 'dense1 is a ReLU layer');
  assert.ok(a.data.some((v) => v > 0));
  // Dropout is inactive at inference, so its output equals its input.
  const d = await model.activations(x, 'dropout1');
  assert.deepEqual(Array.from(d.data), Array.from(a.data));
  const flat = await model.activations(x, 'flatten');
  assert.deepEqual(flat.shape, [7, 784]);
  assert.deepEqual(Array.from(flat.data), Array.from(x.data));
  assert.equal(model.penultimateLayer(), 'dropout1');
  const e = await expectError(model.activations(x, 'dense7'), 'E_USAGE', /dense7/);
  for (const name of model.layerNames()) assert.ok(e.message.includes(name), `the error lists layer ${name}`);
  assert.ok(e.message.includes('dense1') && e.message.includes('output'));
  model.dispose();
});

/** Two Gaussian blobs in 2-D, centred at (−1.5, −1.5) and (1.5, 1.5). */
function blobs(n: number, seed: number): Dataset {
  const rng = new Rng(seed);
  const x = new Float32Array(n * 2);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = i % 2;
    const c = y[i] === 0 ? -1.5 : 1.5;
    x[2 * i] = c + rng.normal();
    x[2 * i + 1] = c + rng.normal();
  }
  return { name: 'blobs', x: { data: x, shape: [n, 2] }, y, classNames: ['a', 'b'] };
}

async function accuracy(model: TfjsModel, data: Dataset): Promise<number> {
  const p = await model.predict(data.x);
  let hits = 0;
  for (let i = 0; i < data.y.length; i++) {
    const pred = p.data[2 * i + 1] > p.data[2 * i] ? 1 : 0;
    if (pred === data.y[i]) hits++;
  }
  return hits / data.y.length;
}

test('fit learns two Gaussian blobs to over 95% train accuracy', async () => {
  const data = blobs(300, 1);
  const model = createZooModel('logistic', { inputShape: [2], numClasses: 2, seed: 1 });
  const before = await accuracy(model, data);
  const r = await model.fit(data, { epochs: 30, batchSize: 32, learningRate: 0.05, seed: 3 });
  const acc = await accuracy(model, data);
  assert.ok(acc > 0.95, `train accuracy ${acc} (before training ${before})`);
  assert.equal(r.epochs.length, 30);
  assert.equal(r.stoppedEarly, false);
  assert.ok(r.epochs[29].loss < r.epochs[0].loss, 'the loss falls');
  assert.ok(r.epochs[29].accuracy > 0.9);
  model.dispose();
});

test('fit is deterministic: the same seeds give identical weights, another seed different ones', async () => {
  const data = blobs(200, 2);
  const train = async (fitSeed: number) => {
    const m = createZooModel('logistic', { inputShape: [2], numClasses: 2, seed: 7 });
    await m.fit(data, { epochs: 5, batchSize: 16, learningRate: 0.05, seed: fitSeed });
    const w = weightsOf(m);
    m.dispose();
    return w;
  };
  const a = await train(11);
  const b = await train(11);
  const c = await train(12);
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) assert.deepEqual(Array.from(a[i]), Array.from(b[i]));
  assert.notDeepEqual(a.map((w) => Array.from(w)), c.map((w) => Array.from(w)), 'the fit seed decides the shuffling');

  // The MLP's dropout draws its masks from seeds too.
  const trainMlp = async () => {
    const m = createZooModel('mlp', { inputShape: [2], numClasses: 2, seed: 7 });
    await m.fit(data, { epochs: 2, batchSize: 32, learningRate: 0.01, seed: 5 });
    const w = weightsOf(m);
    m.dispose();
    return w;
  };
  const m1 = await trainMlp();
  const m2 = await trainMlp();
  for (let i = 0; i < m1.length; i++) assert.deepEqual(Array.from(m1[i]), Array.from(m2[i]), `mlp weight ${i} repeats`);
});

test('early stopping stops, reports it, and restores the best weights', async () => {
  // Pure noise: no signal to learn, so validation loss soon rises.
  const rng = new Rng(21);
  const n = 24;
  const x = new Float32Array(n * 2).map(() => rng.normal());
  const y = Int32Array.from({ length: n }, () => rng.int(2));
  const data: Dataset = { name: 'noise', x: { data: x, shape: [n, 2] }, y, classNames: ['a', 'b'] };
  const opts = { batchSize: 8, learningRate: 0.03, validationSplit: 0.3, patience: 1, seed: 5 };
  const model = createZooModel('logistic', { inputShape: [2], numClasses: 2, seed: 3 });
  const r = await model.fit(data, { ...opts, epochs: 100 });
  assert.equal(r.stoppedEarly, true);
  assert.ok(r.epochs.length < 100, `stopped after ${r.epochs.length} epochs`);
  const valLosses = r.epochs.map((e) => e.valLoss);
  assert.ok(valLosses.every((v) => typeof v === 'number' && Number.isFinite(v)), 'every epoch reports a validation loss');
  assert.ok(r.epochs.every((e) => typeof e.valAccuracy === 'number'));
  const best = Math.min(...(valLosses as number[]));
  const bestEpoch = r.epochs[valLosses.indexOf(best)].epoch;
  assert.equal(r.epochs.length, bestEpoch + opts.patience, 'stops one patience after the best epoch');
  assert.ok(bestEpoch > 1, 'the validation loss improved for a while first (so restoring is not trivial)');
  assert.ok((valLosses.at(-1) as number) >= best);

  // The restored weights are those at the end of the best epoch: a run that simply ends there.
  const again = createZooModel('logistic', { inputShape: [2], numClasses: 2, seed: 3 });
  const r2 = await again.fit(data, { ...opts, epochs: bestEpoch });
  assert.equal(r2.stoppedEarly, false);
  const wa = weightsOf(model);
  const wb = weightsOf(again);
  for (let i = 0; i < wa.length; i++) assert.deepEqual(Array.from(wa[i]), Array.from(wb[i]), 'best weights restored');
  model.dispose();
  again.dispose();
});

test('fit rejects bad options and mismatched data', async () => {
  const data = blobs(20, 3);
  const model = createZooModel('logistic', { inputShape: [2], numClasses: 2, seed: 1 });
  await expectError(model.fit(data, { epochs: 0 }), 'E_USAGE', /epochs/);
  await expectError(model.fit(data, { validationSplit: 1 }), 'E_USAGE', /validation split/);
  await expectError(model.fit(data, { learningRate: -1 }), 'E_USAGE', /learning rate/);
  await expectError(model.fit({ ...data, x: { data: new Float32Array(60), shape: [20, 3] } }), 'E_DATA_SHAPE');
  await expectError(model.fit({ ...data, classNames: ['a', 'b', 'c'] }), 'E_DATA_SHAPE', /3 classes/);
  model.dispose();
});

test('no tensors are left behind by fit, predict, predictLogits, gradients and activations', async () => {
  const model = createZooModel('mlp', { inputShape: [4, 4, 1], numClasses: 3, seed: 1 });
  const rng = new Rng(8);
  const n = 40;
  const x = uniformSamples(rng, [n, 4, 4, 1]);
  const y = Int32Array.from({ length: n }, (_, i) => i % 3);
  const data: Dataset = { name: 'tiny', x, y, classNames: ['a', 'b', 'c'] };
  const calls: [string, () => Promise<unknown>][] = [
    ['fit', () => model.fit(data, { epochs: 2, batchSize: 16 })],
    ['fit with early stopping', () => model.fit(data, { epochs: 3, batchSize: 16, validationSplit: 0.25, patience: 1 })],
    ['predict', () => model.predict(x)],
    ['predictLogits', () => model.predictLogits(x)],
    ['lossGradient', () => model.lossGradient(x, y)],
    ['classGradient', () => model.classGradient(x, y)],
    ['activations (first call)', () => model.activations(x, 'dense1')],
    ['activations (again)', () => model.activations(x, 'dense1')],
  ];
  for (const [name, call] of calls) {
    const before = tf.memory().numTensors;
    await call();
    assert.equal(tf.memory().numTensors, before, `${name} leaves no tensor behind`);
  }
  // A failing call must not leak either.
  const before = tf.memory().numTensors;
  await expectError(model.classGradient(x, new Int32Array(n).fill(5)), 'E_DATA_VALUE');
  assert.equal(tf.memory().numTensors, before);
  model.dispose();
});

test('save → load gives identical predictions and keeps the class names', async () => {
  const model = createZooModel('mlp', { inputShape: [4, 4, 1], numClasses: 3, seed: 1, classNames: ['cat', 'dog', 'eel'] });
  await model.fit(
    { name: 'tiny', x: uniformSamples(new Rng(9), [30, 4, 4, 1]), y: Int32Array.from({ length: 30 }, (_, i) => i % 3), classNames: ['cat', 'dog', 'eel'] },
    { epochs: 1 },
  );
  const target = join(dir, 'saved');
  await saveTfjsModel(model, target, { classNames: ['cat', 'dog', 'eel'], architecture: 'mlp', seed: 1 });
  assert.deepEqual((await readdir(target)).sort(), ['bulwark.json', 'model.json', 'weights.bin']);
  assert.deepEqual((await readdir(dir)).filter((f) => f.startsWith('.')), [], 'no temporary directory is left');

  const { model: loaded, card } = await loadTfjsModel(target);
  assert.deepEqual(card.classNames, ['cat', 'dog', 'eel']);
  assert.equal(card.architecture, 'mlp');
  assert.deepEqual(loaded.info.classNames, ['cat', 'dog', 'eel']);
  assert.deepEqual(loaded.info.inputShape, [4, 4, 1]);
  assert.equal(loaded.info.numClasses, 3);
  assert.deepEqual(loaded.layerNames(), model.layerNames());
  const x = uniformSamples(new Rng(10), [20, 4, 4, 1]);
  assert.deepEqual(Array.from((await loaded.predict(x)).data), Array.from((await model.predict(x)).data));
  // Loading by the model.json path works as well.
  const { model: byFile } = await loadTfjsModel(join(target, 'model.json'));
  assert.deepEqual(Array.from((await byFile.predict(x)).data), Array.from((await model.predict(x)).data));

  // Saving again over the same directory replaces it.
  await saveTfjsModel(model, target, { classNames: ['x', 'y', 'z'] });
  const { card: card2 } = await loadTfjsModel(target);
  assert.deepEqual(card2.classNames, ['x', 'y', 'z']);
  for (const m of [model, loaded, byFile]) m.dispose();
});

test('loading reports missing, corrupt and truncated models with their codes', async () => {
  const model = createZooModel('logistic', { inputShape: [3], numClasses: 2, seed: 1 });
  const good = join(dir, 'good');
  await saveTfjsModel(model, good, { classNames: ['a', 'b'] });
  const goodJson = await readFile(join(good, 'model.json'), 'utf8');
  const goodWeights = await readFile(join(good, 'weights.bin'));

  await expectError(loadTfjsModel(join(dir, 'does-not-exist')), 'E_FILE_NOT_FOUND', /does-not-exist/);

  const garbage = join(dir, 'garbage');
  await saveTfjsModel(model, garbage, { classNames: ['a', 'b'] });
  await writeFile(join(garbage, 'model.json'), '\x00\x01 this is {not json');
  await expectError(loadTfjsModel(garbage), 'E_MODEL_FORMAT', /model\.json/);

  const notModel = join(dir, 'not-a-model');
  await saveTfjsModel(model, notModel, { classNames: ['a', 'b'] });
  await writeFile(join(notModel, 'model.json'), JSON.stringify({ hello: 'world' }));
  await expectError(loadTfjsModel(notModel), 'E_MODEL_FORMAT', /modelTopology/);

  // (Named so that the word 'truncated' can only come from the message, not the path.)
  const cut = join(dir, 'cut-short');
  await saveTfjsModel(model, cut, { classNames: ['a', 'b'] });
  await writeFile(join(cut, 'weights.bin'), goodWeights.subarray(0, goodWeights.length - 4));
  await expectError(loadTfjsModel(cut), 'E_MODEL_FORMAT', /truncated/);

  const noWeights = join(dir, 'no-weights');
  await saveTfjsModel(model, noWeights, { classNames: ['a', 'b'] });
  await rm(join(noWeights, 'weights.bin'));
  await expectError(loadTfjsModel(noWeights), 'E_FILE_NOT_FOUND', /weights\.bin/);

  const emptyDir = join(dir, 'empty');
  await saveTfjsModel(model, emptyDir, { classNames: ['a', 'b'] });
  await rm(join(emptyDir, 'model.json'));
  await expectError(loadTfjsModel(emptyDir), 'E_FILE_NOT_FOUND', /model\.json/);

  // The good copy still loads (the helpers above did not disturb it).
  assert.equal(await readFile(join(good, 'model.json'), 'utf8'), goodJson);
  (await loadTfjsModel(good)).model.dispose();
  model.dispose();
});

test('a failed save is E_OUTPUT and leaves no temporary directory', async () => {
  const model = createZooModel('logistic', { inputShape: [3], numClasses: 2, seed: 1 });
  const root = await mkdtemp(join(dir, 'save-fail-'));
  const file = join(root, 'a-file');
  await writeFile(file, 'not a directory');

  // The target's parent is a file.
  await expectError(saveTfjsModel(model, join(file, 'model'), { classNames: ['a', 'b'] }), 'E_OUTPUT', /a-file/);
  assert.deepEqual(await readdir(root), ['a-file']);

  // The target itself is a file: the files are written to a temporary sibling first, which must go.
  await expectError(saveTfjsModel(model, file, { classNames: ['a', 'b'] }), 'E_OUTPUT', /a-file/);
  assert.deepEqual(await readdir(root), ['a-file'], 'no temporary directory is left');
  assert.equal(await readFile(file, 'utf8'), 'not a directory', 'the file is untouched');
  assert.ok((await stat(file)).isFile());
  model.dispose();
});

test('requireCapability names the algorithm and the model when a capability is missing', () => {
  const predictOnly: Predictor = {
    info: { name: 'remote-scorer', engine: 'http', inputShape: [2], numClasses: 2 },
    predict: async (x: Samples) => ({ data: new Float32Array(x.shape[0] * 2).fill(0.5), shape: [x.shape[0], 2] }),
  };
  let err: unknown;
  try {
    requireCapability(predictOnly as Model, 'lossGradient', 'PGD');
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof BulwarkError);
  assert.equal(err.code, 'E_MODEL_CAPABILITY');
  assert.match(err.message, /PGD/);
  assert.match(err.message, /remote-scorer/);
  assert.match(err.message, /lossGradient/);
  assert.match(err.message, /offers only: predict/);

  // The predict capability is always there; a TF.js model has them all.
  requireCapability(predictOnly as Model, 'predict', 'membership inference');
  const model = createZooModel('logistic', { inputShape: [2], numClasses: 2 });
  for (const cap of ['predict', 'lossGradient', 'classGradient', 'activations', 'fit'] as const) requireCapability(model, cap, 'test');
  model.dispose();
});
