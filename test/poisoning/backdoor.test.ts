import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { Rng, subset, type Dataset } from '../../src/core/index.js';
import { loadDigitsSplit } from '../../src/data/index.js';
import { initTfjs, type TfjsModel } from '../../src/engines/index.js';
import { createZooModel } from '../../src/zoo/index.js';
import {
  activationClustering,
  applyTrigger,
  backdoorMetrics,
  detectionRates,
  neuralCleanse,
  poison,
  rocAuc,
  scanBackdoor,
  spectralSignatures,
  StripDetector,
  type PoisonResult,
} from '../../src/poisoning/index.js';

// One small poisoned model shared by the tests: 2,500 digits, 10% BadNets to class 0, 6 epochs.
let model: TfjsModel;
let p: PoisonResult;
let test500: Dataset;
let truth: Uint8Array;
let tensorsBefore = 0;

before(async () => {
  await initTfjs();
  const { train, test: t } = await loadDigitsSplit();
  const ds = subset(train, new Rng(21).permutation(train.y.length).subarray(0, 2500));
  test500 = subset(t, new Rng(22).permutation(t.y.length).subarray(0, 500));
  p = await poison(ds, { kind: 'badnets', rate: 0.1, target: 0, seed: 23 });
  truth = new Uint8Array(ds.y.length);
  for (const i of p.poisonedIndices) truth[i] = 1;
  model = createZooModel('mlp', { inputShape: [28, 28, 1], numClasses: 10, seed: 24 });
  await model.fit(p.dataset, { epochs: 6, seed: 24 });
  tensorsBefore = tf.memory().numTensors;
});
after(() => model?.dispose());

test('the planted backdoor works: triggered inputs go to class 0', async () => {
  const m = await backdoorMetrics(model, test500, p.trigger!, p.targetOf!);
  assert.ok(m.asr > 0.9, `attack success ${m.asr}`);
});

test('spectral signatures find the poisoned rows and name class 0 only', async () => {
  const r = await spectralSignatures(model, p.dataset, { seed: 1 });
  assert.equal(r.layer, model.penultimateLayer());
  assert.deepEqual(r.infectedClasses, [0]);
  const rates = detectionRates(r.flagged, truth);
  assert.ok(rates.recall >= 0.9 && rates.fpr <= 0.03, JSON.stringify(rates));
  assert.ok(rocAuc(r.score, truth) > 0.95);
  assert.equal(tf.memory().numTensors, tensorsBefore, 'no tensor left behind');
});

test('activation clustering flags the poison cluster of class 0 and reports silhouettes', async () => {
  const r = await activationClustering(model, p.dataset, { seed: 1 });
  assert.deepEqual(r.infectedClasses, [0]);
  assert.ok(detectionRates(r.flagged, truth).recall >= 0.8);
  assert.ok(r.classes.every((c) => typeof c.silhouette === 'number' && c.silhouette >= -1 && c.silhouette <= 1));
});

test('STRIP catches triggered inputs at its false-rejection rate on clean ones', async () => {
  const calib = subset(test500, [...Array(250).keys()]);
  const held = subset(test500, [...Array(250).keys()].map((i) => i + 250));
  const strip = await StripDetector.calibrate(model, calib, { frr: 0.05, seed: 2 });
  const others = [...held.y.keys()].filter((i) => held.y[i] !== 0);
  const triggered = await strip.detect(applyTrigger(subset(held, others).x, p.trigger!));
  const clean = await strip.detect(held.x);
  const caught = triggered.flagged.reduce((a, b) => a + b, 0) / others.length;
  const frr = clean.flagged.reduce((a, b) => a + b, 0) / held.y.length;
  assert.ok(caught >= 0.9, `caught ${caught}`);
  assert.ok(frr <= 0.12, `false rejections ${frr}`);
  assert.equal(tf.memory().numTensors, tensorsBefore);
});

test('Neural Cleanse reverse-engineers a small trigger for class 0', async () => {
  const r = await neuralCleanse(model, test500, { steps: 120, batchSize: 16, seed: 3 });
  const norms = r.triggers.map((t) => t.maskL1);
  const smallest = norms.indexOf(Math.min(...norms));
  assert.equal(r.triggers[smallest].classIndex, 0, `mask norms ${norms.map((v) => v.toFixed(1)).join(', ')}`);
  assert.ok(r.triggers[0].anomalyIndex > 1.5, `anomaly index of class 0: ${r.triggers[0].anomalyIndex}`);
  assert.equal(tf.memory().numTensors, tensorsBefore);
});

test('a scan of a clean model names no class', async () => {
  const clean = createZooModel('mlp', { inputShape: [28, 28, 1], numClasses: 10, seed: 25 });
  try {
    const ds = subset(p.dataset, [...p.dataset.y.keys()].filter((i) => !truth[i]));
    await clean.fit(ds, { epochs: 6, seed: 25 });
    const r = await scanBackdoor(clean, ds, { methods: ['spectral', 'ac'], seed: 4 });
    assert.deepEqual(r.infectedClasses, [], JSON.stringify(r.infectedClasses));
  } finally {
    clean.dispose();
  }
});
