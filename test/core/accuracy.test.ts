import { test } from 'node:test';
import assert from 'node:assert/strict';
import { labelAccuracy, modelAccuracy, type Predictor } from '../../src/core/index.js';

test('labelAccuracy counts matches; an empty set is NaN, not 0', () => {
  assert.equal(labelAccuracy(Int32Array.from([0, 1, 2, 1]), Int32Array.from([0, 1, 1, 1])), 0.75);
  assert.ok(Number.isNaN(labelAccuracy(new Int32Array(0), new Int32Array(0))));
});

test('modelAccuracy takes the top class of each row', async () => {
  const model: Predictor = {
    info: { name: 'fixed', engine: 'test', inputShape: [1], numClasses: 2 },
    predict: async (x) => ({ data: Float32Array.from(Array.from(x.data).flatMap((v) => (v > 0 ? [0.2, 0.8] : [0.9, 0.1]))), shape: [x.shape[0], 2] }),
  };
  const ds = { name: 'd', x: { data: Float32Array.from([1, -1, 1]), shape: [3, 1] }, y: Int32Array.from([1, 0, 0]), classNames: ['a', 'b'] };
  assert.equal(await modelAccuracy(model, ds), 2 / 3);
});
