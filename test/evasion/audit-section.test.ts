import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { silentProgress, subset } from '../../src/core/index.js';
import { loadDigitsSplit } from '../../src/data/index.js';
import { initTfjs } from '../../src/engines/index.js';
import { createZooModel } from '../../src/zoo/index.js';
import { evasionSection } from '../../src/audit/sections/evasion.js';
import type { AuditContext } from '../../src/audit/index.js';
import { predictOnly } from './toy.js';

test('the evasion audit section: robust accuracy against ε, examples, Square, squeezing and certificates, in seconds', async () => {
  await initTfjs();
  const { train, test: testSplit } = await loadDigitsSplit();
  const before = tf.memory().numTensors;
  const model = createZooModel('mlp', { inputShape: [28, 28, 1], numClasses: 10, seed: 4, classNames: train.classNames });
  try {
    await model.fit(subset(train, Array.from({ length: 2000 }, (_, i) => i)), { epochs: 3, seed: 4 });
    const ctx: AuditContext = { model, modelFiles: [], train, test: testSplit, seed: 42, progress: silentProgress };
    assert.equal(evasionSection.applies!(ctx), true);
    const t0 = performance.now();
    const findings = await evasionSection.run(ctx);
    const seconds = (performance.now() - t0) / 1000;
    assert.ok(seconds < 40, `the section took ${seconds} s; it must stay under 40 s on the digits MLP`);

    assert.deepEqual(
      findings.map((f) => f.chart?.kind ?? null),
      ['line', 'images', null, 'bar', 'line'],
    );
    const [robust, images, squareF, squeeze, smooth] = findings;
    assert.ok(findings.every((f) => f.area === 'evasion'));
    assert.equal(robust.threshold, 0.5);
    assert.equal(robust.passed, false, 'an undefended MLP is not robust at ε = 0.1');
    assert.ok(robust.severity === 'high' || robust.severity === 'medium');
    const chart = robust.chart as Extract<typeof robust.chart, { kind: 'line' }>;
    const [fgsmSeries, pgdSeries] = chart!.series;
    assert.deepEqual(fgsmSeries.points.map(([e]) => e), [0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3]);
    for (let i = 1; i < pgdSeries.points.length; i++) {
      assert.ok(pgdSeries.points[i][1] <= pgdSeries.points[i - 1][1] + 0.02, 'accuracy falls as ε grows');
      assert.ok(pgdSeries.points[i][1] <= fgsmSeries.points[i][1] + 0.02, 'PGD is at least as strong as FGSM');
    }
    assert.equal(robust.value, pgdSeries.points[3][1]);
    assert.ok(robust.evidence.some((e) => /bulwark train --model mlp --adversarial (pgd|fgsm-rs) --eps 0\.1/.test(e)), 'says how to get the hardened model');

    const imgs = images.chart as Extract<typeof images.chart, { kind: 'images' }>;
    assert.equal(imgs!.images.length % 3, 0);
    assert.ok(imgs!.images.length >= 3 && imgs!.images.every((im) => im.pixels.length === 784 && im.pixels.every((v) => v >= 0 && v <= 1)));

    assert.equal(squareF.metric, 'success rate');
    assert.ok(typeof squareF.value === 'number' && squareF.value >= 0 && squareF.value <= 1);
    assert.ok(typeof squeeze.value === 'number' && squeeze.value > 0.3, `squeezing detection rate ${squeeze.value}`);
    assert.ok(typeof smooth.value === 'number' && smooth.value > 0.3, `certified accuracy at 0.25: ${smooth.value}`);
  } finally {
    model.dispose();
  }
  assert.equal(tf.memory().numTensors, before);
});

test('the evasion section says why it does not apply, and what to run instead', async () => {
  const { test: testSplit } = await loadDigitsSplit();
  await initTfjs();
  const model = createZooModel('logistic', { inputShape: [28, 28, 1], numClasses: 10 });
  try {
    const remote = predictOnly(model, 'http://host/v2/models/digits');
    const ctx: AuditContext = { model: remote, modelFiles: [], test: testSplit, seed: 1, progress: silentProgress };
    assert.match(String(evasionSection.applies!(ctx)), /needs? gradients.*--attack square --eps 0\.1.*--attack hsj/);
    const scaled = { ...testSplit, x: { data: testSplit.x.data.map((v) => v * 255), shape: testSplit.x.shape } };
    assert.match(String(evasionSection.applies!({ ...ctx, model, test: scaled })), /from 0 to 255.*--clip MIN,MAX/);
  } finally {
    model.dispose();
  }
});
