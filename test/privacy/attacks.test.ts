import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { Rng, subset, type Model } from '../../src/core/index.js';
import { loadDigitsSplit } from '../../src/data/index.js';
import { initTfjs } from '../../src/engines/index.js';
import { createZooModel } from '../../src/zoo/index.js';
import {
  clopperPearsonUpper,
  invertModel,
  labelOnlyAttack,
  likelihoodRatios,
  liraAttack,
  lossThresholdAttack,
  membershipMetrics,
  membershipSample,
  scoreInversion,
} from '../../src/privacy/index.js';

await initTfjs();

test('membership metrics: AUC, TPR at low FPR and the empirical ε bound behave at the extremes', () => {
  // The same case scikit-learn's roc_auc_score gives 0.8125 for.
  const m = membershipMetrics([0.9, 0.8, 0.7, 0.6, 0.55, 0.4, 0.3, 0.2], [1, 1, 0, 1, 0, 1, 0, 0]);
  assert.equal(m.auc, 0.8125);
  assert.equal(m.advantage, 0.5);

  const n = 2000;
  const perfect = membershipMetrics(Float64Array.from({ length: 2 * n }, (_, i) => (i < n ? 1 + i : -i)), Uint8Array.from({ length: 2 * n }, (_, i) => (i < n ? 1 : 0)));
  assert.equal(perfect.auc, 1);
  assert.equal(perfect.tprAt0_1Fpr, 1);
  // With 2,000 of each and no errors, 95% confidence still allows ~0.15% error rates: ε ≥ log(1/0.0015) ≈ 6.5.
  assert.ok(perfect.empiricalEpsilon > 6 && perfect.empiricalEpsilon < 7, `ε bound ${perfect.empiricalEpsilon}`);

  const rng = new Rng(3);
  const random = membershipMetrics(Float64Array.from({ length: 2 * n }, () => rng.next()), Uint8Array.from({ length: 2 * n }, (_, i) => (i < n ? 1 : 0)));
  assert.ok(Math.abs(random.auc - 0.5) < 0.03, `AUC ${random.auc}`);
  assert.ok(random.empiricalEpsilon < 0.1, `guessing implies no ε, got ${random.empiricalEpsilon}`);
  assert.ok(random.roc.length <= 160 && random.roc[0][0] === 0 && random.roc.at(-1)![0] === 1);
  assert.ok(Math.abs(clopperPearsonUpper(0, 100, 0.05) - (1 - Math.pow(0.05, 1 / 100))) < 1e-9);
});

test('LiRA scores: an example whose target confidence sits in the IN distribution scores higher online and offline', () => {
  const shadows = 8;
  const inside = Array.from({ length: shadows }, (_, s) => Uint8Array.from([s % 2, s % 2]));
  const shadowScores = Array.from({ length: shadows }, (_, s) => Float64Array.from([s % 2 ? 5 + s * 0.1 : 0 - s * 0.1, s % 2 ? 5 : 0]));
  const { online, offline } = likelihoodRatios(Float64Array.from([5, 0]), shadowScores, inside);
  assert.ok(online[0] > 0 && online[1] < 0, `online ${online[0]}, ${online[1]}`);
  assert.ok(offline[0] > offline[1]);
});

const { train, test: held } = await loadDigitsSplit();
const rng = new Rng(11);
const members = subset(train, rng.permutation(train.y.length).slice(0, 300));
const others = subset(held, rng.permutation(held.y.length).slice(0, 300));
// Overfit on purpose: 300 examples, many epochs, no early stopping.
const target = createZooModel('mlp', { inputShape: [28, 28, 1], numClasses: 10, seed: 2 });
await target.fit(members, { epochs: 40, batchSize: 32, seed: 2 });

test('the loss-threshold and label-only attacks beat guessing on an overfit model', async () => {
  const data = membershipSample(members, others, 300, 1);
  const before = tf.memory().numTensors;
  const loss = await lossThresholdAttack(target, data);
  assert.ok(loss.auc > 0.65, `loss-threshold AUC ${loss.auc}`);
  assert.equal(loss.members, 300);
  assert.equal(loss.queries, 600);
  const labels = await labelOnlyAttack(target, data, { copies: 12, seed: 1 });
  assert.ok(labels.auc > 0.55, `label-only AUC ${labels.auc}`);
  assert.equal(tf.memory().numTensors, before);
});

test('LiRA trains its shadow models in worker threads and beats guessing', async () => {
  const r = await liraAttack(target, { train: members, test: others }, {
    shadows: 4,
    architecture: { kind: 'zoo', architecture: 'logistic', standardize: false },
    training: { epochs: 8, batchSize: 32, learningRate: 1e-2 },
    evaluate: 100,
    workers: 2,
    seed: 3,
  });
  assert.equal(r.shadows, 4);
  assert.equal(r.workers, 2, `worker threads: ${r.notes.join('; ')}`);
  assert.equal(r.online.members, 100);
  assert.ok(r.online.auc > 0.6, `online AUC ${r.online.auc}`);
  assert.ok(r.offline.auc > 0.55, `offline AUC ${r.offline.auc}`);
});

test('model inversion: gradient ascent reconstructs recognisable classes; queries alone raise the class confidence', async () => {
  const result = await invertModel(target, { classes: [0, 1, 3, 7], steps: 150 });
  assert.equal(result.mode, 'gradient');
  assert.deepEqual(result.images.shape, [4, 28, 28, 1]);
  assert.ok(Math.min(...result.confidence) > 0.9, `confidence ${[...result.confidence]}`);
  const score = await scoreInversion(result, train, target);
  assert.ok(score.meanSimilarity > 0.2, `similarity ${score.meanSimilarity}`);
  assert.ok(score.nearestMeanRate >= 0.75, `nearest class mean ${score.nearestMeanRate}`);

  // The same model seen as a black box: predictions only.
  const blackBox: Model = { info: { ...target.info, engine: 'http' }, predict: (x) => target.predict(x) };
  const start = await blackBox.predict({ data: new Float32Array(784).fill(0.1), shape: [1, 28, 28, 1] });
  const q = await invertModel(blackBox, { classes: [3], queries: 4000, seed: 1 });
  assert.equal(q.mode, 'query');
  assert.ok(q.queries > 3900 && q.queries <= 4001, `${q.queries} queries`);
  assert.ok(q.confidence[0] > Math.max(0.5, start.data[3]), `class-3 confidence ${start.data[3]} → ${q.confidence[0]}`);
});
