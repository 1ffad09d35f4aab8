import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { Rng, silentProgress, subset } from '../../src/core/index.js';
import { loadDigitsSplit } from '../../src/data/index.js';
import { initTfjs } from '../../src/engines/index.js';
import { createZooModel } from '../../src/zoo/index.js';
import { privacyAuditFindings, privacySection } from '../../src/audit/sections/privacy.js';

await initTfjs();

test('the privacy section compares the model with DP-SGD models and keeps the accounting honest', async () => {
  const { train, test: held } = await loadDigitsSplit();
  const rng = new Rng(4);
  const small = subset(train, rng.permutation(train.y.length).slice(0, 800));
  const test = subset(held, rng.permutation(held.y.length).slice(0, 400));
  const model = createZooModel('mlp', { inputShape: [28, 28, 1], numClasses: 10, seed: 1 });
  await model.fit(small, { epochs: 15, batchSize: 32 });
  const ctx = { model, modelFiles: [], train: small, test, seed: 42, progress: silentProgress };
  assert.match(String(privacySection.applies!({ ...ctx, train: undefined })), /training data/);
  assert.equal(privacySection.applies!(ctx), true);

  const before = tf.memory().numTensors;
  const findings = await privacyAuditFindings(ctx, { epsilons: [3, 1], trainSubset: 600, epochs: 3, evaluate: 300, inversionSteps: 20 });
  assert.equal(tf.memory().numTensors, before, 'no tensor left behind');
  const byTitle = new Map(findings.map((f) => [f.title, f]));
  const mia = byTitle.get('Membership inference (loss threshold)')!;
  assert.ok((mia.value as number) > 0.55, `an overfit model leaks: AUC ${mia.value}`);
  assert.equal(mia.chart?.kind, 'line');
  assert.ok(mia.evidence.some((e) => /--shadows 16/.test(e)), 'says how to run LiRA');
  const dp = byTitle.get('Differentially private training (DP-SGD)')!;
  assert.ok(dp.evidence.some((e) => /DP ε=3/.test(e)) && dp.evidence.some((e) => /DP ε=1/.test(e)), dp.evidence.join('\n'));
  const honest = byTitle.get('Privacy accounting is consistent with the attack')!;
  assert.equal(honest.passed, true, honest.evidence.join('\n'));
  const images = byTitle.get('Model inversion (gradient ascent per class)')!;
  assert.ok(images.chart?.kind === 'images' && images.chart.images.length === 30 && images.chart.width === 28);
  model.dispose();
});
