import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { Rng, argmaxRows, subset, type Dataset, type Samples } from '../../src/core/index.js';
import { loadDigitsSplit } from '../../src/data/index.js';
import { initTfjs, type TfjsModel } from '../../src/engines/index.js';
import { createZooModel } from '../../src/zoo/index.js';
import { FeatureSqueezingDetector, adversarialTransform, fgsm, pgd, summarizeEvasion } from '../../src/evasion/index.js';
import { accuracyOf } from './toy.js';

// A small digits MLP trained in the test (3 epochs on 2,000 digits, ~90% accurate), attacked on 200 others.
let model: TfjsModel;
let train: Dataset;
let test200: Dataset;
let tensorsBefore = 0;

before(async () => {
  await initTfjs();
  const digits = await loadDigitsSplit();
  train = subset(digits.train, range(2000));
  test200 = subset(digits.test, range(200));
  tensorsBefore = tf.memory().numTensors;
  model = createZooModel('mlp', { inputShape: [28, 28, 1], numClasses: 10, seed: 1 });
  await model.fit(train, { epochs: 3, seed: 1 });
});

after(() => {
  model.dispose();
  assert.equal(tf.memory().numTensors, tensorsBefore, 'every tensor the attacks made is released');
});

function range(n: number, from = 0): number[] {
  return Array.from({ length: n }, (_, i) => from + i);
}

/** The clean inputs plus random noise of exactly the given size (L∞: ±eps everywhere; L2: a random direction), clipped. */
function randomNoise(x: Samples, eps: number, norm: 'linf' | 'l2', seed: number): Samples {
  const rng = new Rng(seed);
  const d = x.data.length / x.shape[0];
  const out = new Float32Array(x.data.length);
  for (let i = 0; i < x.shape[0]; i++) {
    const dir = Array.from({ length: d }, () => (norm === 'linf' ? (rng.next() < 0.5 ? -1 : 1) : rng.normal()));
    const scale = norm === 'linf' ? eps : eps / Math.hypot(...dir);
    for (let j = 0; j < d; j++) out[i * d + j] = Math.min(1, Math.max(0, x.data[i * d + j] + scale * dir[j]));
  }
  return { data: out, shape: [...x.shape] };
}

test('PGD lowers the accuracy of a trained digits MLP far more than random noise of the same size', async () => {
  const clean = accuracyOf(argmaxRows(await model.predict(test200.x)), test200.y);
  assert.ok(clean > 0.85, `the test model should be a fair classifier, got ${clean}`);
  for (const [norm, eps, maxRobust] of [
    ['linf', 0.1, 0.35],
    ['l2', 1.5, 0.5],
  ] as const) {
    const r = await pgd(model, test200.x, test200.y, { eps, norm, steps: 20, seed: 5 });
    const s = summarizeEvasion(r, test200.y);
    const noisy = accuracyOf(argmaxRows(await model.predict(randomNoise(test200.x, eps, norm, 6))), test200.y);
    assert.equal(s.cleanAccuracy, clean);
    assert.ok(s.robustAccuracy <= maxRobust, `${norm} PGD at ${eps}: robust accuracy ${s.robustAccuracy}`);
    assert.ok(noisy >= clean - 0.1, `${norm} random noise of size ${eps} should barely matter: ${noisy} vs clean ${clean}`);
    assert.ok(noisy - s.robustAccuracy >= 0.4, `${norm}: PGD ${s.robustAccuracy} vs noise ${noisy}`);
    assert.ok(s.successRate >= 0.5);
  }
  const f = summarizeEvasion(await fgsm(model, test200.x, test200.y, { eps: 0.1 }), test200.y);
  const p = summarizeEvasion(await pgd(model, test200.x, test200.y, { eps: 0.1, steps: 20, restarts: 2 }), test200.y);
  assert.ok(f.robustAccuracy < clean - 0.3, `FGSM hurts too: ${f.robustAccuracy}`);
  assert.ok(p.robustAccuracy <= f.robustAccuracy + 0.01, `PGD (${p.robustAccuracy}) is at least as strong as FGSM (${f.robustAccuracy})`);
});

test('the feature-squeezing detector keeps its false-positive rate on clean digits and flags PGD examples', async () => {
  const detector = new FeatureSqueezingDetector(model);
  assert.deepEqual(detector.squeezers.map((s) => s.name), ['bit depth 1', 'median 2×2']);
  const calibration = subset(await loadDigitsSplit().then((d) => d.test), range(300, 500));
  await detector.calibrate(calibration.x, 0.05);
  const onCalibration = await detector.detect(calibration.x);
  assert.ok(onCalibration.flagged.filter(Boolean).length <= 15, 'at most 5% of the calibration digits are flagged');
  const fresh = await detector.detect(test200.x);
  const fpr = fresh.flagged.filter(Boolean).length / 200;
  assert.ok(fpr <= 0.12, `false positives on unseen clean digits: ${fpr}`);

  const r = await pgd(model, test200.x, test200.y, { eps: 0.1, steps: 20 });
  const flagged = await detector.detect(r.adversarial);
  const turned = range(200).filter((i) => r.success[i] && r.cleanPredicted[i] === test200.y[i]);
  const rate = turned.filter((i) => flagged.flagged[i]).length / turned.length;
  assert.ok(rate >= 0.4, `detection rate of successful PGD examples: ${rate}`);
});

test('adversarial training through the fit hook makes the MLP far more robust to PGD', async () => {
  const hardened = createZooModel('mlp', { inputShape: [28, 28, 1], numClasses: 10, seed: 1 });
  try {
    let batches = 0;
    const transform = adversarialTransform(hardened, { eps: 0.1, steps: 5, seed: 2 });
    await hardened.fit(train, {
      epochs: 3,
      seed: 1,
      transformBatch: async (x, y, info) => {
        batches++;
        return transform(x, y, info);
      },
    });
    assert.equal(batches, 3 * Math.ceil(2000 / 128));
    const plain = summarizeEvasion(await pgd(model, test200.x, test200.y, { eps: 0.1, steps: 20 }), test200.y);
    const robust = summarizeEvasion(await pgd(hardened, test200.x, test200.y, { eps: 0.1, steps: 20 }), test200.y);
    assert.ok(robust.cleanAccuracy >= 0.8, `clean accuracy after adversarial training: ${robust.cleanAccuracy}`);
    assert.ok(robust.robustAccuracy >= plain.robustAccuracy + 0.2, `robust accuracy ${robust.robustAccuracy} vs undefended ${plain.robustAccuracy}`);
  } finally {
    hardened.dispose();
  }
});

test('a mixed batch replaces only the requested share of rows, each within eps', async () => {
  const x = subset(train, range(10));
  const transform = adversarialTransform(model, { eps: 0.2, ratio: 0.5, steps: 3 });
  const out = await transform(x.x, x.y, { epoch: 1, batch: 0 });
  const d = 784;
  for (let i = 0; i < 10; i++) {
    let diff = 0;
    for (let j = 0; j < d; j++) diff = Math.max(diff, Math.abs(out.data[i * d + j] - x.x.data[i * d + j]));
    if (i < 5) assert.ok(diff > 0 && diff <= 0.2, `row ${i} is adversarial within eps (${diff})`);
    else assert.equal(diff, 0, `row ${i} stays clean`);
  }
  assert.throws(() => adversarialTransform(model, { eps: 0.1, ratio: 0 }), /ratio must be in \(0, 1\]/);
});
