import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { Rng, modelAccuracy, subset, type Dataset, type FitOptions, type FitResult } from '../../src/core/index.js';
import { loadDigitsSplit } from '../../src/data/index.js';
import { TfjsModel, initTfjs } from '../../src/engines/index.js';
import { createZooModel } from '../../src/zoo/index.js';
import { ADVERSARIAL_TRAINING_ATTACKS, adversarialTrain, adversarialTransform, fastAdversarialStep, pgd, summarizeEvasion } from '../../src/evasion/index.js';

let train: Dataset;
let test200: Dataset;
let plain: TfjsModel;
let tensorsBefore = 0;

before(async () => {
  await initTfjs();
  const digits = await loadDigitsSplit();
  train = subset(digits.train, range(2000));
  test200 = subset(digits.test, range(200));
  tensorsBefore = tf.memory().numTensors;
  plain = createZooModel('mlp', { inputShape: [28, 28, 1], numClasses: 10, seed: 1 });
  await plain.fit(train, { epochs: 4, seed: 1 });
});

after(() => {
  plain.dispose();
  assert.equal(tf.memory().numTensors, tensorsBefore, 'every tensor training and the checks made is released');
});

function range(n: number, from = 0): number[] {
  return Array.from({ length: n }, (_, i) => from + i);
}

test('FGSM-RS examples lie within eps of the clean digits, start at random points and differ from plain FGSM', async () => {
  const few = subset(train, range(16));
  const a = await fastAdversarialStep(plain, few.x, few.y, { eps: 0.1, rng: new Rng(3) });
  const b = await fastAdversarialStep(plain, few.x, few.y, { eps: 0.1, rng: new Rng(4) });
  const fgsmRows = await adversarialTransform(plain, { attack: 'fgsm', eps: 0.1 })(few.x, few.y, { epoch: 1, batch: 0 });
  let maxDiff = 0;
  let differsFromSeed = 0;
  let differsFromFgsm = 0;
  for (let j = 0; j < a.data.length; j++) {
    maxDiff = Math.max(maxDiff, Math.abs(a.data[j] - few.x.data[j]));
    assert.ok(a.data[j] >= 0 && a.data[j] <= 1, 'inside the valid range');
    if (a.data[j] !== b.data[j]) differsFromSeed++;
    if (a.data[j] !== fgsmRows.data[j]) differsFromFgsm++;
  }
  assert.ok(maxDiff <= 0.1 && maxDiff > 0.09, `largest change ${maxDiff}`);
  assert.ok(differsFromSeed > a.data.length / 10, 'another random start gives other examples');
  // A step of 1.25·eps from a random start ends on the ball's surface mostly where FGSM does,
  // but not everywhere: where the start lay far on the other side, it ends inside the ball.
  assert.ok(differsFromFgsm > a.data.length / 100, `differs from FGSM at ${differsFromFgsm} of ${a.data.length} values`);
  assert.ok(ADVERSARIAL_TRAINING_ATTACKS.includes('fgsm-rs'));
});

test('fast adversarial training (FGSM-RS) makes a small digits MLP far more robust to PGD, checking it every epoch', async () => {
  const hardened = createZooModel('mlp', { inputShape: [28, 28, 1], numClasses: 10, seed: 1 });
  try {
    const logs: string[] = [];
    const progress = { start: () => {}, advance: () => {}, done: () => {}, log: (m: string) => logs.push(m) };
    const r = await adversarialTrain(hardened, train, { attack: 'fgsm-rs', eps: 0.1, seed: 2, checkSamples: 128, fit: { epochs: 4, seed: 1, progress } });
    assert.equal(r.epochs.length, 4);
    assert.deepEqual(r.checks?.map((c) => c.epoch), [1, 2, 3, 4]);
    assert.equal(r.collapsed, false);
    assert.equal(r.bestEpoch, 4);
    assert.ok(logs.some((l) => /epoch 4: PGD-10 robust accuracy on 128 held-out samples/.test(l)), logs.join('\n'));
    const before = summarizeEvasion(await pgd(plain, test200.x, test200.y, { eps: 0.1, steps: 20, seed: 5 }), test200.y);
    const after = summarizeEvasion(await pgd(hardened, test200.x, test200.y, { eps: 0.1, steps: 20, seed: 5 }), test200.y);
    assert.ok(after.cleanAccuracy >= 0.8, `clean accuracy after fast adversarial training: ${after.cleanAccuracy}`);
    assert.ok(after.robustAccuracy >= before.robustAccuracy + 0.2, `robust accuracy ${after.robustAccuracy} vs undefended ${before.robustAccuracy}`);
  } finally {
    hardened.dispose();
  }
});

/** A model whose third epoch wrecks its weights, as catastrophic overfitting wrecks robustness. */
class CollapsingModel extends TfjsModel {
  epochsRun = 0;
  override async fit(data: Dataset, opts?: FitOptions): Promise<FitResult> {
    const r = await super.fit(data, opts);
    if (++this.epochsRun === 3) {
      const noise = this.net.getWeights().map((w, i) => tf.randomNormal(w.shape, 0, 3, 'float32', 100 + i));
      this.net.setWeights(noise);
      tf.dispose(noise);
    }
    return r;
  }
}

test('when robust accuracy on the held-out batch collapses, training stops and the best epoch comes back', async () => {
  const zoo = createZooModel('mlp', { inputShape: [28, 28, 1], numClasses: 10, seed: 1 });
  const model = new CollapsingModel(zoo.net, { name: 'collapsing' });
  try {
    const r = await adversarialTrain(model, train, { attack: 'fgsm-rs', eps: 0.1, seed: 2, checkSamples: 128, collapseDrop: 0.1, fit: { epochs: 6, seed: 1 } });
    assert.equal(r.collapsed, true);
    assert.equal(r.stoppedEarly, true);
    assert.equal(r.epochs.length, 3, 'no epoch after the collapse');
    assert.equal(r.checks?.length, 3);
    const [a, b, c] = r.checks!.map((x) => x.robustAccuracy);
    assert.ok(c < Math.max(a, b) - 0.1, `the wrecked epoch's check: ${c} after ${a}, ${b}`);
    assert.equal(r.bestEpoch, b > a ? 2 : 1);
    assert.equal(r.restored, true);
    const clean = await modelAccuracy(model, test200);
    assert.ok(clean >= 0.7, `weights of epoch ${r.bestEpoch} are back: clean accuracy ${clean}`);
  } finally {
    model.dispose();
  }
});

test('fast adversarial training rejects bad check settings', async () => {
  await assert.rejects(adversarialTrain(plain, train, { attack: 'fgsm-rs', eps: 0.1, checkSamples: -1 }), /checkSamples must be a whole number/);
  await assert.rejects(adversarialTrain(plain, train, { attack: 'fgsm-rs', eps: 0.1, collapseDrop: 2 }), /collapseDrop must be in \(0, 1\]/);
  await assert.rejects(adversarialTrain(plain, train, { attack: 'fgsm-rs', eps: 0.1, fit: { validationSplit: 0.1 } }), /not on validation loss/);
});
