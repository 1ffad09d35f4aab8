import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initTfjs } from '../../src/engines/index.js';
import { createZooModel, featureStats } from '../../src/zoo/index.js';
import { BulwarkError } from '../../src/core/index.js';

await initTfjs();

test('unknown architectures are refused with the list of known ones', () => {
  assert.throws(
    () => createZooModel('resnet', { inputShape: [4], numClasses: 2 }),
    (e: unknown) => e instanceof BulwarkError && e.code === 'E_UNKNOWN_MODEL' && /logistic, mlp, cnn/.test(e.message),
  );
  assert.throws(
    () => createZooModel('cnn', { inputShape: [4], numClasses: 2 }),
    (e: unknown) => e instanceof BulwarkError && e.code === 'E_DATA_SHAPE' && /image inputs/.test(e.message),
  );
});

test('featureStats matches a hand computation', () => {
  const { mean, std } = featureStats({ data: Float32Array.from([1, 10, 3, 10, 5, 10]), shape: [3, 2] });
  assert.deepEqual([...mean], [3, 10]);
  assert.ok(Math.abs(std[0] - Math.sqrt(8 / 3)) < 1e-6);
  assert.equal(std[1], 0);
});

test('the standardize layer scales raw rows and stays frozen through training', async () => {
  const stats = { mean: Float32Array.from([100, -5]), std: Float32Array.from([10, 2]) };
  const model = createZooModel('mlp', { inputShape: [2], numClasses: 2, standardize: stats, seed: 3 });
  try {
    const z = await model.activations({ data: Float32Array.from([110, -1]), shape: [1, 2] }, 'standardize');
    assert.ok(Math.abs(z.data[0] - 1) < 1e-6 && Math.abs(z.data[1] - 2) < 1e-6, `got ${[...z.data]}`);
    const n = 64;
    const x = new Float32Array(n * 2);
    const y = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      y[i] = i % 2;
      x[i * 2] = 100 + (y[i] ? 15 : -15) + (i % 5);
      x[i * 2 + 1] = -5 + (i % 3);
    }
    const before = tf.memory().numTensors;
    await model.fit({ name: 'blobs', x: { data: x, shape: [n, 2] }, y, classNames: ['a', 'b'] }, { epochs: 5, batchSize: 16 });
    assert.equal(tf.memory().numTensors, before);
    const after = await model.activations({ data: Float32Array.from([110, -1]), shape: [1, 2] }, 'standardize');
    assert.deepEqual([...after.data], [...z.data], 'frozen layer unchanged by training');
  } finally {
    model.dispose();
  }
});

test('the CNN maps digit-shaped input to 10 probabilities', async () => {
  const model = createZooModel('cnn', { inputShape: [28, 28, 1], numClasses: 10, seed: 1 });
  try {
    const p = await model.predict({ data: new Float32Array(3 * 784).fill(0.5), shape: [3, 28, 28, 1] });
    assert.deepEqual(p.shape, [3, 10]);
    for (let i = 0; i < 3; i++) {
      const s = p.data.slice(i * 10, i * 10 + 10).reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(s - 1) < 1e-5);
    }
  } finally {
    model.dispose();
  }
});

test('the dropout rate can be set; out-of-range rates and dropout on logistic are refused', async () => {
  await initTfjs();
  const rate = (m: ReturnType<typeof createZooModel>) => (m.net.getLayer('dropout1').getConfig() as { rate: number }).rate;
  const plain = createZooModel('mlp', { inputShape: [4], numClasses: 3 });
  const none = createZooModel('mlp', { inputShape: [4], numClasses: 3, dropout: 0 });
  const cnn = createZooModel('cnn', { inputShape: [28, 28, 1], numClasses: 10, dropout: 0.5 });
  assert.deepEqual([rate(plain), rate(none), rate(cnn)], [0.3, 0, 0.5]);
  for (const m of [plain, none, cnn]) m.dispose();
  for (const [arch, dropout, re] of [
    ['mlp', 1, /dropout must be a rate from 0 up to \(not including\) 1, not 1/],
    ['mlp', -0.1, /not -0.1/],
    ['logistic', 0.2, /logistic model has no hidden layer/],
  ] as const) {
    assert.throws(() => createZooModel(arch, { inputShape: [4], numClasses: 3, dropout }), (e: unknown) => e instanceof BulwarkError && e.code === 'E_USAGE' && re.test(e.message));
  }
});
