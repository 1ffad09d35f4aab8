import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { Rng, subset } from '../../src/core/index.js';
import { loadDigitsSplit } from '../../src/data/index.js';
import { initTfjs, type TfjsModel } from '../../src/engines/index.js';
import { createZooModel } from '../../src/zoo/index.js';
import { activationClustering, backdoorMetrics, detectionRates, poison, spectralSignatures, type PoisonResult } from '../../src/poisoning/index.js';

// 1% BadNets: 40 of 4,000 digits, a tenth of class 0. The top singular vector of class 0's raw
// representations follows the digit's own variation here; robust whitening is what finds the poison.
let model: TfjsModel;
let p: PoisonResult;
let truth: Uint8Array;

before(async () => {
  await initTfjs();
  const { train, test: t } = await loadDigitsSplit();
  const ds = subset(train, new Rng(31).permutation(train.y.length).subarray(0, 4000));
  p = await poison(ds, { kind: 'badnets', rate: 0.01, target: 0, seed: 32 });
  truth = new Uint8Array(ds.y.length);
  for (const i of p.poisonedIndices) truth[i] = 1;
  model = createZooModel('mlp', { inputShape: [28, 28, 1], numClasses: 10, seed: 33 });
  await model.fit(p.dataset, { epochs: 10, seed: 33 });
  const asr = (await backdoorMetrics(model, subset(t, [...Array(500).keys()]), p.trigger!, p.targetOf!)).asr;
  assert.ok(asr >= 0.8, `the 1% backdoor must work for this test to mean anything (attack success ${asr})`);
});
after(() => model?.dispose());

test('spectral signatures find a 1% backdoor and name class 0 only', async () => {
  const before = tf.memory().numTensors;
  const r = await spectralSignatures(model, p.dataset, { seed: 1 });
  assert.deepEqual(r.infectedClasses, [0]);
  const rates = detectionRates(r.flagged, truth);
  assert.ok(rates.recall >= 0.9 && rates.fpr <= 0.01, JSON.stringify(rates));
  assert.equal(tf.memory().numTensors, before, 'no tensor left behind');
});

test('activation clustering finds a 1% backdoor once the class is robustly whitened', async () => {
  const r = await activationClustering(model, p.dataset, { seed: 1 });
  assert.deepEqual(r.infectedClasses, [0]);
  const rates = detectionRates(r.flagged, truth);
  assert.ok(rates.recall >= 0.8 && rates.fpr <= 0.01, JSON.stringify(rates));
  const c0 = r.classes.find((c) => c.classIndex === 0)!;
  assert.ok(c0.share < 0.25, `the flagged cluster is the poison, not half the class (share ${c0.share})`);
});
