import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { subset, type Dataset } from '../../src/core/index.js';
import { loadDigitsSplit } from '../../src/data/index.js';
import { connectHttpModel, initTfjs, serveOip, type TfjsModel } from '../../src/engines/index.js';
import { createZooModel } from '../../src/zoo/index.js';
import { hopSkipJump, square, summarizeEvasion } from '../../src/evasion/index.js';
import { l2Diff, labelOnly, maxAbsDiff, predictOnly } from './toy.js';

let model: TfjsModel;
let digits: Dataset;
let tensorsBefore = 0;

before(async () => {
  await initTfjs();
  const split = await loadDigitsSplit();
  tensorsBefore = tf.memory().numTensors;
  model = createZooModel('mlp', { inputShape: [28, 28, 1], numClasses: 10, seed: 3 });
  await model.fit(subset(split.train, range(2000)), { epochs: 3, seed: 3 });
  digits = subset(split.test, range(16, 1000));
});

after(() => {
  model.dispose();
  assert.equal(tf.memory().numTensors, tensorsBefore);
});

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function range(n: number, from = 0): number[] {
  return Array.from({ length: n }, (_, i) => from + i);
}

test('Square (L∞) attacks a model over real HTTP, counts every query, and stops at the budget', async () => {
  const server = await serveOip(model, { name: 'digits' });
  try {
    const remote = await connectHttpModel(server.url);
    const budget = 150;
    const r = await square(remote, digits.x, digits.y, { eps: 0.12, budget, seed: 9 });
    const queries = r.queries!;
    assert.equal(queries.reduce((a, b) => a + b, 0), remote.queries, 'the reported queries are exactly what the server received');
    const s = summarizeEvasion(r, digits.y);
    assert.ok(s.successRate >= 0.3, `success rate ${s.successRate}`);
    for (let i = 0; i < 16; i++) {
      assert.ok(queries[i] <= budget, `sample ${i} used ${queries[i]} queries`);
      assert.ok(maxAbsDiff(r.adversarial.data, digits.x.data, i * 784, 784) <= 0.12);
      // A sample the attack has not broken keeps going until the budget is spent, and no further.
      if (r.cleanPredicted[i] === digits.y[i] && !r.success[i]) assert.equal(queries[i], budget);
      if (r.success[i]) assert.notEqual(r.predicted[i], digits.y[i]);
    }
    assert.ok(queries.some((q) => q === budget), 'some sample ran out of budget');
    for (const v of r.adversarial.data) assert.ok(v >= 0 && v <= 1);

    // Same seed, same answers: the remote run is the local run.
    const local = await square(predictOnly(model), digits.x, digits.y, { eps: 0.12, budget, seed: 9 });
    assert.deepEqual(Array.from(local.queries!), Array.from(queries));
    assert.deepEqual(local.success, r.success);
  } finally {
    await server.close();
  }
});

test('Square (L2) stays within its eps and breaks some digits', async () => {
  const r = await square(predictOnly(model), digits.x, digits.y, { eps: 2, norm: 'l2', budget: 300, seed: 4 });
  for (let i = 0; i < 16; i++) assert.ok(l2Diff(r.adversarial.data, digits.x.data, i * 784, 784) <= 2);
  assert.ok(summarizeEvasion(r, digits.y).successRate >= 0.3);
});

test('HopSkipJump works from labels alone and shrinks its perturbation with more queries', async () => {
  const labels = labelOnly(model);
  const x = subset(digits, range(8));
  const short = await hopSkipJump(labels, x.x, x.y, { budget: 250, seed: 1 });
  const spent = labels.queries;
  assert.equal(short.queries!.reduce((a, b) => a + b, 0), spent);
  const long = await hopSkipJump(labels, x.x, x.y, { budget: 1500, seed: 1 });
  for (const r of [short, long]) {
    for (let i = 0; i < 8; i++) {
      assert.ok(r.queries![i] <= (r === short ? 250 : 1500));
      if (r.cleanPredicted[i] !== x.y[i]) continue;
      assert.ok(r.success[i], `sample ${i}: an adversarial is found`);
      assert.notEqual(r.predicted[i], x.y[i]);
      assert.ok(Math.abs(r.norms[i] - l2Diff(r.adversarial.data, x.x.data, i * 784, 784)) < 1e-9);
      assert.ok(r.norms[i] > 0 && r.norms[i] < 10);
    }
  }
  const m = (r: typeof short) => median(Array.from(r.norms).filter((_, i) => r.cleanPredicted[i] === x.y[i]));
  assert.ok(m(long) < 0.8 * m(short), `median L2 ${m(long)} with 1,500 queries vs ${m(short)} with 250`);
  // The adversarial really is one: the model's label differs from the true one.
  const again = await model.predict(long.adversarial);
  const k = 10;
  let wrong = 0;
  for (let i = 0; i < 8; i++) {
    const row = Array.from(again.data.subarray(i * k, (i + 1) * k));
    if (row.indexOf(Math.max(...row)) !== x.y[i]) wrong++;
  }
  assert.ok(wrong >= 7);

  // With eps given, a sample stops as soon as it is that close, and success means within eps.
  const within = await hopSkipJump(labels, x.x, x.y, { eps: 4, budget: 1500, seed: 1 });
  for (let i = 0; i < 8; i++) if (within.success[i] && within.norms[i] > 0) assert.ok(within.norms[i] <= 4 && within.queries![i] < 1500);
  const linf = await hopSkipJump(labels, x.x, x.y, { norm: 'linf', budget: 400, seed: 1 });
  for (let i = 0; i < 8; i++) assert.ok(Math.abs(linf.norms[i] - maxAbsDiff(linf.adversarial.data, x.x.data, i * 784, 784)) < 1e-9);
});
