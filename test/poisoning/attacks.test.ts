import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { BulwarkError, Rng, subset, type Dataset } from '../../src/core/index.js';
import { loadDigitsSplit } from '../../src/data/index.js';
import { initTfjs } from '../../src/engines/index.js';
import { createZooModel } from '../../src/zoo/index.js';
import { applyTrigger, blendTrigger, patchTrigger, poison } from '../../src/poisoning/index.js';

await initTfjs();
const { train } = await loadDigitsSplit();
const small = subset(train, new Rng(11).permutation(train.y.length).subarray(0, 1000));

function changedRows(a: Dataset, b: Dataset): { x: number[]; y: number[] } {
  const size = a.x.data.length / a.y.length;
  const x: number[] = [];
  const y: number[] = [];
  for (let i = 0; i < a.y.length; i++) {
    if (a.y[i] !== b.y[i]) y.push(i);
    for (let j = 0; j < size; j++) {
      if (a.x.data[i * size + j] !== b.x.data[i * size + j]) {
        x.push(i);
        break;
      }
    }
  }
  return { x, y };
}

test('BadNets stamps the patch and relabels exactly the reported rows, and nothing else', async () => {
  const r = await poison(small, { kind: 'badnets', rate: 0.1, target: 0, seed: 1, patch: { size: 4, position: 'bottom-right', pattern: 'solid' } });
  assert.equal(r.poisonedIndices.length, 100);
  const changed = changedRows(small, r.dataset);
  assert.deepEqual(changed.y, [...r.poisonedIndices], 'relabelled rows are the reported ones');
  assert.deepEqual(changed.x, [...r.poisonedIndices], 'stamped rows are the reported ones');
  for (const i of r.poisonedIndices) {
    assert.notEqual(small.y[i], 0, 'all-to-one poisons rows from other classes');
    assert.equal(r.dataset.y[i], 0);
    // The 4×4 patch sits one pixel from the bottom-right corner: rows and columns 23–26.
    for (let row = 0; row < 28; row++) {
      for (let col = 0; col < 28; col++) {
        const v = r.dataset.x.data[i * 784 + row * 28 + col];
        const inPatch = row >= 23 && row <= 26 && col >= 23 && col <= 26;
        if (inPatch) assert.equal(v, 1, `pixel (${row}, ${col}) of row ${i} is in the patch`);
        else assert.equal(v, small.x.data[i * 784 + row * 28 + col], `pixel (${row}, ${col}) of row ${i} is untouched`);
      }
    }
  }
  assert.deepEqual([...r.originalLabels], [...small.y]);
  assert.equal(small.name, 'digits', 'the input dataset is not modified');
});

test('all-to-all BadNets maps class y to y + 1; label flips uniform and targeted', async () => {
  const a2a = await poison(small, { kind: 'badnets', rate: 0.05, mode: 'all-to-all', seed: 2 });
  for (const i of a2a.poisonedIndices) assert.equal(a2a.dataset.y[i], (small.y[i] + 1) % 10);
  assert.equal(a2a.targetOf!(9), 0);

  const uni = await poison(small, { kind: 'label-flip', rate: 0.2, seed: 3 });
  assert.equal(uni.poisonedIndices.length, 200);
  assert.deepEqual(changedRows(small, uni.dataset).y, [...uni.poisonedIndices], 'every flip changes the label');
  assert.equal(changedRows(small, uni.dataset).x.length, 0, 'features untouched');
  const targets = new Set([...uni.poisonedIndices].map((i) => uni.dataset.y[i]));
  assert.ok(targets.size >= 8, 'uniform flips land on many classes');

  const tgt = await poison(small, { kind: 'label-flip', mode: 'targeted', source: 7, target: 1, rate: 0.05, seed: 4 });
  for (const i of tgt.poisonedIndices) {
    assert.equal(small.y[i], 7);
    assert.equal(tgt.dataset.y[i], 1);
  }
  await assert.rejects(poison(small, { kind: 'label-flip', mode: 'targeted', source: 7, target: 1, rate: 0.5 }), (e: unknown) => e instanceof BulwarkError && /only \d+ rows of class '7'/.test(e.message));
  await assert.rejects(poison(small, { kind: 'badnets', rate: 0.1, target: 12 }), /target class must be a class index in 0..9/);
  await assert.rejects(poison(small, { kind: 'badnets', rate: 0 }), /rate must be in \(0, 1\)/);
});

test('blended trigger mixes a fixed image at α; triggers apply to new inputs the same way', async () => {
  const r = await poison(small, { kind: 'blended', rate: 0.1, target: 3, blend: { alpha: 0.2 }, seed: 5 });
  const t = r.trigger!;
  const i = r.poisonedIndices[0];
  for (const j of [0, 100, 400, 783]) {
    const want = 0.8 * small.x.data[i * 784 + j] + 0.2 * t.pattern[j];
    assert.ok(Math.abs(r.dataset.x.data[i * 784 + j] - want) < 1e-6);
  }
  const again = applyTrigger(subset(small, [i]).x, t);
  assert.deepEqual([...again.data], [...r.dataset.x.data.subarray(i * 784, (i + 1) * 784)]);
  assert.throws(() => blendTrigger([4], { min: 0, max: 1 }, { alpha: 1.5 }), /alpha/);
  // Tabular rows: a "patch" sets the last features to their columns' maxima.
  const tab = patchTrigger([5], { min: 0, max: 9, columnMax: Float32Array.of(1, 2, 3, 4, 5), columnMin: new Float32Array(5) }, { size: 2 });
  assert.deepEqual([...tab.mask], [0, 0, 0, 1, 1]);
  assert.deepEqual([...tab.pattern.subarray(3)], [4, 5]);
});

test('clean-label feature collision keeps labels and pulls the poisons towards the target in feature space', async () => {
  const model = createZooModel('mlp', { inputShape: [28, 28, 1], numClasses: 10, seed: 3 });
  try {
    await model.fit(small, { epochs: 2, seed: 3 });
    const targetRow = [...small.y].findIndex((c) => c === 7);
    const targetSample = { data: small.x.data.slice(targetRow * 784, (targetRow + 1) * 784), shape: [1, 28, 28, 1] };
    const before = tf.memory().numTensors;
    const r = await poison(small, { kind: 'clean-label', rate: 0.005, model, baseClass: 2, targetSample, iterations: 30, stepSize: 0.05, seed: 6 });
    assert.equal(tf.memory().numTensors, before, 'no tensor left behind');
    assert.equal(r.poisonedIndices.length, 5);
    assert.deepEqual([...r.dataset.y], [...small.y], 'clean label: no label changes');
    const layer = model.penultimateLayer();
    const ft = (await model.activations(targetSample, layer)).data;
    const dist = async (ds: Dataset): Promise<number> => {
      const f = await model.activations(subset(ds, r.poisonedIndices).x, layer);
      let s = 0;
      for (let i = 0; i < f.data.length; i++) s += (f.data[i] - ft[i % ft.length]) ** 2;
      return s;
    };
    const d0 = await dist(small);
    const d1 = await dist(r.dataset);
    assert.ok(d1 < 0.5 * d0, `feature distance to the target fell from ${d0.toFixed(1)} to ${d1.toFixed(1)}`);
  } finally {
    model.dispose();
  }
});
