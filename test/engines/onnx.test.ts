import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initTfjs } from '../../src/engines/tfjs/backend.js';
import { exportToOnnx, saveOnnx } from '../../src/engines/onnx/export.js';
import { loadOnnxModel, type OnnxModel } from '../../src/engines/onnx/model.js';
import { BulwarkError, type ErrorCode } from '../../src/core/errors.js';
import { Rng } from '../../src/core/rng.js';
import type { Samples } from '../../src/core/samples.js';

await initTfjs();
const dir = await mkdtemp(join(tmpdir(), 'bulwark-onnx-'));
after(() => rm(dir, { recursive: true, force: true }));

let seed = 1;
type Init = ReturnType<typeof tfl.initializers.glorotUniform>;
const kernelInit = (): Init => tfl.initializers.glorotUniform({ seed: seed++ });
const biasInit = (): Init => tfl.initializers.randomUniform({ minval: -0.2, maxval: 0.2, seed: seed++ });
const dense = (units: number, activation?: 'relu' | 'softmax' | 'tanh' | 'linear'): tfl.layers.Layer =>
  tfl.layers.dense({ units, activation, kernelInitializer: kernelInit(), biasInitializer: biasInit() });

function mlp(): tfl.Sequential {
  const m = tfl.sequential();
  m.add(tfl.layers.flatten({ inputShape: [28, 28, 1] }));
  m.add(dense(32, 'relu'));
  m.add(dense(10, 'softmax'));
  return m;
}

function cnn(): tfl.Sequential {
  const m = tfl.sequential();
  m.add(tfl.layers.conv2d({ inputShape: [28, 28, 1], filters: 4, kernelSize: 3, activation: 'relu', padding: 'valid', kernelInitializer: kernelInit(), biasInitializer: biasInit() }));
  m.add(tfl.layers.maxPooling2d({ poolSize: 2 }));
  m.add(tfl.layers.conv2d({ filters: 6, kernelSize: 3, padding: 'same', strides: 2, kernelInitializer: kernelInit(), biasInitializer: biasInit() }));
  m.add(tfl.layers.flatten());
  m.add(dense(10, 'softmax'));
  return m;
}

function logits(): tfl.Sequential {
  const m = tfl.sequential();
  m.add(tfl.layers.flatten({ inputShape: [28, 28, 1] }));
  m.add(dense(16, 'tanh'));
  m.add(dense(10));
  return m;
}

/** Functional model over odd sizes exercising the remaining layer kinds and options. */
function mixed(): tfl.LayersModel {
  const input = tfl.input({ shape: [9, 9, 3] });
  let h = tfl.layers.conv2d({ filters: 5, kernelSize: [3, 2], strides: [2, 1], padding: 'same', useBias: false, kernelInitializer: kernelInit() }).apply(input);
  h = tfl.layers.averagePooling2d({ poolSize: 2, strides: 2, padding: 'same' }).apply(h);
  h = tfl.layers.reLU({ maxValue: 0.5 }).apply(h);
  h = tfl.layers.maxPooling2d({ poolSize: 3, strides: 1, padding: 'same' }).apply(h);
  h = tfl.layers.dropout({ rate: 0.3 }).apply(h);
  h = tfl.layers.flatten().apply(h);
  h = dense(8).apply(h);
  h = tfl.layers.activation({ activation: 'sigmoid' }).apply(h);
  h = tfl.layers.activation({ activation: 'relu' }).apply(h);
  const out = dense(3, 'softmax').apply(h) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: out });
}

function randomSamples(n: number, shape: number[], rngSeed: number): Samples {
  const rng = new Rng(rngSeed);
  const data = new Float32Array(n * shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = rng.next();
  return { data, shape: [n, ...shape] };
}

function tfjsPredict(model: tfl.LayersModel, x: Samples): Float32Array {
  return tf.tidy(() => (model.predict(tf.tensor(x.data, [...x.shape])) as tf.Tensor).dataSync() as Float32Array);
}

function assertClose(got: Float32Array, want: Float32Array, tol = 1e-4): void {
  assert.equal(got.length, want.length);
  for (let i = 0; i < got.length; i++) {
    assert.ok(Math.abs(got[i] - want[i]) <= tol, `value ${i}: onnx ${got[i]} vs tfjs ${want[i]}`);
  }
}

function softmax(m: Float32Array, k: number): Float32Array {
  const out = new Float32Array(m.length);
  for (let r = 0; r < m.length; r += k) {
    const row = m.subarray(r, r + k);
    const max = Math.max(...row);
    const sum = row.reduce((a, v) => a + Math.exp(v - max), 0);
    row.forEach((v, j) => (out[r + j] = Math.exp(v - max) / sum));
  }
  return out;
}

/** Exports (checking no tensor leaks), saves, and loads the model back through onnxruntime. */
async function roundTrip(model: tfl.LayersModel, name: string, opts?: Parameters<typeof loadOnnxModel>[1]): Promise<OnnxModel> {
  const before = tf.memory().numTensors;
  const bytes = exportToOnnx(model);
  assert.equal(tf.memory().numTensors, before, 'export must not leave tensors behind');
  assert.ok(bytes.length > 0);
  const path = join(dir, `${name}.onnx`);
  await saveOnnx(model, path);
  assert.equal(tf.memory().numTensors, before);
  return loadOnnxModel(path, opts);
}

function checkError(code: ErrorCode, message?: RegExp): (e: unknown) => boolean {
  return (e) => {
    assert.ok(e instanceof BulwarkError, `expected a BulwarkError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (message) assert.match(e.message, message);
    return true;
  };
}

const rejectsWith = (p: Promise<unknown>, code: ErrorCode, message?: RegExp): Promise<void> => assert.rejects(p, checkError(code, message));
const throwsWith = (f: () => unknown, code: ErrorCode, message?: RegExp): void => assert.throws(f, checkError(code, message));

for (const [name, build, classes] of [
  ['mlp', mlp, 10],
  ['cnn', cnn, 10],
  ['mixed', mixed, 3],
] as const) {
  test(`${name}: ONNX predictions match TF.js`, async () => {
    const model = build();
    const onnx = await roundTrip(model, name);
    try {
      const inShape = model.inputs[0].shape.slice(1) as number[];
      assert.deepEqual(onnx.info, { name: join(dir, `${name}.onnx`), engine: 'onnx', inputShape: inShape, numClasses: classes });
      const x = randomSamples(16, inShape, 7);
      const got = await onnx.predict(x);
      assert.deepEqual(got.shape, [16, classes]);
      assertClose(got.data, tfjsPredict(model, x));
    } finally {
      await onnx.close();
      model.dispose();
    }
  });
}

test('logits model: auto and logits apply softmax, probabilities passes values through', async () => {
  const model = logits();
  const x = randomSamples(16, [28, 28, 1], 11);
  const raw = tfjsPredict(model, x);
  for (const [mode, want] of [
    ['auto', softmax(raw, 10)],
    ['logits', softmax(raw, 10)],
    ['probabilities', raw],
  ] as const) {
    const onnx = await roundTrip(model, `logits-${mode}`, { output: mode });
    try {
      assertClose((await onnx.predict(x)).data, want);
    } finally {
      await onnx.close();
    }
  }
  model.dispose();
});

test('inputs of the right size but another shape are reshaped; large inputs go in batches', async () => {
  const model = mlp();
  const onnx = await roundTrip(model, 'mlp-batches', { classNames: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'] });
  try {
    assert.deepEqual(onnx.info.classNames?.length, 10);
    const x = randomSamples(2100, [28, 28, 1], 3);
    const want = tfjsPredict(model, x);
    assertClose((await onnx.predict({ data: x.data, shape: [2100, 784] })).data, want);
    assert.deepEqual((await onnx.predict({ data: new Float32Array(0), shape: [0, 784] })).shape, [0, 10]);
    await rejectsWith(onnx.predict(randomSamples(2, [27, 28, 1], 1)), 'E_DATA_SHAPE', /\[28, 28, 1\]/);
  } finally {
    await onnx.close();
    model.dispose();
  }
  await rejectsWith(onnx.predict(randomSamples(1, [28, 28, 1], 1)), 'E_USAGE', /closed/);
});

test('a graph with a fixed batch size is fed in batches of that size, the tail padded', async () => {
  const model = mlp();
  const x = randomSamples(10, [28, 28, 1], 13);
  const want = tfjsPredict(model, x);
  for (const batchSize of [1, 4]) {
    const path = join(dir, `fixed-${batchSize}.onnx`);
    await saveOnnx(model, path, { batchSize });
    const onnx = await loadOnnxModel(path);
    try {
      assert.deepEqual(onnx.info.inputShape, [28, 28, 1]);
      assertClose((await onnx.predict(x)).data, want);
    } finally {
      await onnx.close();
    }
  }
  throwsWith(() => exportToOnnx(model, { batchSize: 0 }), 'E_USAGE', /batchSize 0/);
  model.dispose();
});

test('saveOnnx leaves no temporary file behind', async () => {
  const model = mlp();
  const sub = join(dir, 'atomic');
  await saveOnnx(model, join(sub, 'm.onnx'));
  assert.deepEqual(await readdir(sub), ['m.onnx']);
  model.dispose();
});

test('a missing file is E_FILE_NOT_FOUND', async () => {
  await rejectsWith(loadOnnxModel(join(dir, 'nope.onnx')), 'E_FILE_NOT_FOUND', /nope\.onnx/);
});

test('a corrupt file is E_MODEL_FORMAT naming the file', async () => {
  const path = join(dir, 'corrupt.onnx');
  await writeFile(path, randomSamples(1, [256], 5).data.map((v) => v * 255).slice());
  await rejectsWith(loadOnnxModel(path), 'E_MODEL_FORMAT', /corrupt\.onnx/);
});

test('class names that do not match the output are rejected', async () => {
  const model = logits();
  await rejectsWith(roundTrip(model, 'names', { classNames: ['a', 'b'] }), 'E_USAGE', /2 class names/);
  model.dispose();
});

test('unsupported layers and options are E_MODEL_FORMAT naming the layer', () => {
  const lstm = tfl.sequential({ layers: [tfl.layers.lstm({ units: 4, inputShape: [5, 3], name: 'my_lstm', recurrentInitializer: 'glorotUniform' })] });
  throwsWith(() => exportToOnnx(lstm), 'E_MODEL_FORMAT', /cannot export layer 'my_lstm' \(LSTM\) to ONNX/);
  const bn = tfl.sequential({ layers: [tfl.layers.dense({ units: 4, inputShape: [3] }), tfl.layers.batchNormalization({ name: 'bn1' })] });
  throwsWith(() => exportToOnnx(bn), 'E_MODEL_FORMAT', /'bn1' \(BatchNormalization\)/);
  const dilated = tfl.sequential({ layers: [tfl.layers.conv2d({ filters: 2, kernelSize: 3, dilationRate: 2, inputShape: [8, 8, 1], name: 'dil' })] });
  throwsWith(() => exportToOnnx(dilated), 'E_MODEL_FORMAT', /'dil' \(Conv2D\).*dilation/);
  const elu = tfl.sequential({ layers: [tfl.layers.dense({ units: 2, activation: 'elu', inputShape: [3], name: 'd_elu' })] });
  throwsWith(() => exportToOnnx(elu), 'E_MODEL_FORMAT', /'d_elu' \(Dense\).*activation 'elu'/);
  throwsWith(() => exportToOnnx(elu, { opset: 9 }), 'E_USAGE', /opset 9/);
  for (const m of [lstm, bn, dilated, elu]) m.dispose();
});
