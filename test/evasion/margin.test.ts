import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { subset, type Dataset } from '../../src/core/index.js';
import { loadDigitsSplit } from '../../src/data/index.js';
import { TfjsModel, initTfjs } from '../../src/engines/index.js';
import { createZooModel } from '../../src/zoo/index.js';
import { fgsm, marginGradient, pgd, runEvasionAttack, summarizeEvasion } from '../../src/evasion/index.js';
import { randomLinear } from './toy.js';

let tensorsBefore = 0;
let digitsModel: TfjsModel;
let test200: Dataset;

before(async () => {
  await initTfjs();
  tensorsBefore = tf.memory().numTensors;
  const digits = await loadDigitsSplit();
  test200 = subset(digits.test, range(200));
  // A small digits MLP (3 epochs on 2,000 digits, ~90% accurate), attacked on 200 others.
  digitsModel = createZooModel('mlp', { inputShape: [28, 28, 1], numClasses: 10, seed: 1 });
  await digitsModel.fit(subset(digits.train, range(2000)), { epochs: 3, seed: 1 });
});

after(() => {
  digitsModel.dispose();
  assert.equal(tf.memory().numTensors, tensorsBefore, 'every tensor the attacks made is released');
});

function range(n: number, from = 0): number[] {
  return Array.from({ length: n }, (_, i) => from + i);
}

// A 3-4-3 ReLU net with fixed weights, small enough to differentiate by hand.
const W1 = [
  [0.5, -1.0, 0.25, 0.8],
  [-0.3, 0.7, 1.1, -0.6],
  [0.9, 0.2, -0.4, 0.3],
];
const B1 = [0.1, -0.2, 0.05, 0.0];
const W2 = [
  [1.2, -0.7, 0.3],
  [-0.5, 0.9, 0.4],
  [0.6, 0.1, -1.0],
  [-0.8, 0.5, 0.7],
];
const B2 = [0.0, 0.1, -0.1];

function tinyNet(): TfjsModel {
  const net = tfl.sequential({
    layers: [tfl.layers.dense({ inputShape: [3], units: 4, activation: 'relu', name: 'hidden' }), tfl.layers.dense({ units: 3, activation: 'softmax', name: 'out' })],
  });
  const given = [tf.tensor2d(W1), tf.tensor1d(B1), tf.tensor2d(W2), tf.tensor1d(B2)];
  net.getLayer('hidden').setWeights(given.slice(0, 2));
  net.getLayer('out').setWeights(given.slice(2));
  tf.dispose(given);
  return new TfjsModel(net, { name: 'tiny' });
}

/** d(z_up − z_down)/dx by the chain rule: W1 · diag(relu'(a)) · (W2[:, up] − W2[:, down]). */
function handGradient(x: number[], up: number, down: number): number[] {
  const a = B1.map((b, h) => b + x.reduce((s, xi, i) => s + xi * W1[i][h], 0));
  return x.map((_, i) => a.reduce((s, ah, h) => s + (ah > 0 ? W1[i][h] * (W2[h][up] - W2[h][down]) : 0), 0));
}

test('the margin gradient is the hand-computed difference-of-logits gradient, and matches finite differences', async () => {
  const model = tinyNet();
  try {
    const xs = [
      [0.2, 0.5, 0.9],
      [0.8, 0.1, 0.3],
      [0.4, 0.6, 0.2],
    ];
    const up = Int32Array.from([1, 0, 2]);
    const down = Int32Array.from([0, 2, 1]);
    const g = await marginGradient(model, { data: Float32Array.from(xs.flat()), shape: [3, 3] }, up, down);
    assert.deepEqual(g.shape, [3, 3]);
    for (let i = 0; i < 3; i++) {
      const want = handGradient(xs[i], up[i], down[i]);
      for (let j = 0; j < 3; j++) assert.ok(Math.abs(g.data[i * 3 + j] - want[j]) < 1e-5, `row ${i} feature ${j}: ${g.data[i * 3 + j]} vs ${want[j]}`);
      // Central differences of the logit margin, from the model's own logits.
      for (let j = 0; j < 3; j++) {
        const h = 1e-2;
        const at = async (v: number) => {
          const x = [...xs[i]];
          x[j] += v;
          const z = await model.predictLogits({ data: Float32Array.from(x), shape: [1, 3] });
          return z.data[up[i]] - z.data[down[i]];
        };
        const fd = ((await at(h)) - (await at(-h))) / (2 * h);
        assert.ok(Math.abs(fd - g.data[i * 3 + j]) < 1e-3, `row ${i} feature ${j}: finite difference ${fd} vs ${g.data[i * 3 + j]}`);
      }
    }
  } finally {
    model.dispose();
  }
});

test('PGD with the margin loss turns as many digits as cross-entropy PGD, and keeps within eps', async () => {
  const ce = summarizeEvasion(await pgd(digitsModel, test200.x, test200.y, { eps: 0.1, steps: 20, seed: 5 }), test200.y);
  const r = await pgd(digitsModel, test200.x, test200.y, { eps: 0.1, steps: 20, seed: 5, loss: 'margin' });
  const margin = summarizeEvasion(r, test200.y);
  assert.ok(margin.cleanAccuracy > 0.85, `the test model should be a fair classifier, got ${margin.cleanAccuracy}`);
  // On a barely trained MLP both reach (near) the same floor; the margin must not be the weaker.
  assert.ok(margin.robustAccuracy <= ce.robustAccuracy + 0.01, `margin PGD robust ${margin.robustAccuracy} vs CE PGD ${ce.robustAccuracy}`);
  assert.ok(margin.robustAccuracy <= 0.35, `margin PGD robust accuracy ${margin.robustAccuracy}`);
  assert.ok(Math.max(...r.norms) <= 0.1, 'every perturbation within eps');
  // By name too, as the CLI calls it.
  const byName = summarizeEvasion(await runEvasionAttack('pgd', digitsModel, test200.x, test200.y, { eps: 0.1, steps: 20, seed: 5, loss: 'margin' }), test200.y);
  assert.equal(byName.robustAccuracy, margin.robustAccuracy);
});

test('targeted PGD with the margin loss reaches the target class', async () => {
  const keep = range(200).filter((i) => test200.y[i] !== 3).slice(0, 60);
  const few = subset(test200, keep);
  const targets = new Int32Array(keep.length).fill(3);
  const r = await pgd(digitsModel, few.x, few.y, { eps: 0.2, steps: 30, seed: 7, loss: 'margin', targets });
  const hit = r.predicted.filter((p) => p === 3).length / keep.length;
  assert.ok(hit >= 0.8, `share pushed into class 3: ${hit}`);
});

test('FGSM takes the margin loss as well', async () => {
  const f = summarizeEvasion(await fgsm(digitsModel, test200.x, test200.y, { eps: 0.1, loss: 'margin' }), test200.y);
  assert.ok(f.robustAccuracy < f.cleanAccuracy - 0.2, `margin FGSM: robust ${f.robustAccuracy}, clean ${f.cleanAccuracy}`);
});

test('the margin loss on a model without class gradients fails at once and names the loss that works', async () => {
  const model = randomLinear(4, 3, 1);
  const x = { data: new Float32Array([0.1, 0.2, 0.3, 0.4]), shape: [1, 4] };
  await assert.rejects(pgd(model, x, Int32Array.from([0]), { eps: 0.1, loss: 'margin' }), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'E_MODEL_CAPABILITY');
    assert.match(e.message, /classGradient/);
    assert.match(e.message, /--loss ce/);
    return true;
  });
  await assert.rejects(pgd(model, x, Int32Array.from([0]), { eps: 0.1, loss: 'hinge' as 'ce' }), /loss must be one of ce, margin, not 'hinge'/);
});
