import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { BulwarkError, Rng, takeSamples, type Samples } from '../../src/core/index.js';
import { loadDigitsSplit } from '../../src/data/index.js';
import { initTfjs, type TfjsModel } from '../../src/engines/index.js';
import { createZooModel } from '../../src/zoo/index.js';
import {
  DriftMonitor,
  driftReference,
  driftReferenceFromJson,
  driftReferenceToJson,
  type DriftReference,
  type DriftWindowReport,
} from '../../src/monitor/index.js';

let model: TfjsModel;
let testX: Samples;
let reference: DriftReference;

before(async () => {
  await initTfjs();
  const { train, test } = await loadDigitsSplit();
  model = createZooModel('logistic', { inputShape: [28, 28, 1], numClasses: 10, seed: 42, name: 'target' });
  await model.fit(train, { epochs: 2, seed: 42 });
  testX = test.x;
  reference = driftReference(train.x, await model.predict(train.x));
});

/** 500 test-set rows (one default window), a fresh seeded draw each time. */
function window(seed: number): Samples {
  return takeSamples(testX, new Rng(seed).permutation(testX.shape[0]).slice(0, 500));
}

/** Bilinear rotation of each 28×28 image about its centre; pixels from outside the image are 0 (background). */
function rotate(x: Samples, degrees: number): Samples {
  const side = 28;
  const out = new Float32Array(x.data.length);
  const a = (degrees * Math.PI) / 180;
  const cos = Math.cos(a);
  const sin = Math.sin(a);
  const c = (side - 1) / 2;
  for (let r = 0; r < x.shape[0]; r++) {
    const src = x.data.subarray(r * side * side, (r + 1) * side * side);
    const px = (i: number, j: number) => (i >= 0 && i < side && j >= 0 && j < side ? src[i * side + j] : 0);
    for (let i = 0; i < side; i++) {
      for (let j = 0; j < side; j++) {
        // Inverse mapping: where in the source does output pixel (i, j) come from.
        const si = cos * (i - c) + sin * (j - c) + c;
        const sj = -sin * (i - c) + cos * (j - c) + c;
        const i0 = Math.floor(si);
        const j0 = Math.floor(sj);
        const fi = si - i0;
        const fj = sj - j0;
        out[r * side * side + i * side + j] =
          (1 - fi) * ((1 - fj) * px(i0, j0) + fj * px(i0, j0 + 1)) + fi * ((1 - fj) * px(i0 + 1, j0) + fj * px(i0 + 1, j0 + 1));
      }
    }
  }
  return { data: out, shape: [...x.shape] };
}

function describe(r: DriftWindowReport): string {
  return `window ${r.window}: share ${r.shareDrifted.toFixed(3)}, prediction ${r.prediction.test} ${r.prediction.statistic.toFixed(4)}, confidence p ${r.confidence.pValue.toExponential(2)}`;
}

/** Every number anywhere in the report, so a NaN hiding in a nested field fails the test. */
function numbers(v: unknown): number[] {
  if (typeof v === 'number') return [v];
  if (Array.isArray(v)) return v.flatMap(numbers);
  if (v && typeof v === 'object') return Object.values(v).flatMap(numbers);
  return [];
}

test('a stream of the same distribution (test-set rows) raises no drift over 10 windows', async (t) => {
  const mon = new DriftMonitor(reference);
  for (let w = 0; w < 10; w++) {
    const x = window(100 + w);
    mon.observe(x, await model.predict(x));
  }
  const history = mon.history();
  t.diagnostic(`largest share of drifted pixels on clean windows: ${Math.max(...history.map((r) => r.shareDrifted)).toFixed(3)}`);
  assert.deepEqual(history.map((r) => r.window), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  for (const r of history) {
    assert.equal(r.drifted, false, `false drift alarm on clean data: ${describe(r)}`);
    // The share rule has room to spare: half the pixels would have to drift.
    assert.ok(r.shareDrifted < 0.25, describe(r));
    assert.equal(r.rows, 500);
  }
  assert.equal(mon.latest(), history.at(-1));
});

test('digits with Gaussian noise (σ = 0.3, clipped to [0, 1]) are flagged within one window', async (t) => {
  const rng = new Rng(9);
  const clean = window(9);
  const noisy: Samples = { data: clean.data.map((v) => Math.min(1, Math.max(0, v + 0.3 * rng.normal()))), shape: clean.shape };
  const mon = new DriftMonitor(reference);
  const reports = mon.observe(noisy, await model.predict(noisy));
  assert.equal(reports.length, 1, 'exactly one window completes');
  const [r] = reports;
  t.diagnostic(describe(r));
  assert.equal(r.drifted, true, describe(r));
  // Noise lights up the background, so nearly every pixel's distribution moves.
  assert.ok(r.shareDrifted > 0.5, describe(r));
  assert.ok(r.features.length === 20 && r.features.every((f) => f.drifted && f.test === 'psi'));
  assert.ok(r.confidence.mean < r.confidence.referenceMean, 'the model is less sure of noisy digits');
});

test('digits rotated by 30° are flagged within one window', async (t) => {
  const rotated = rotate(window(10), 30);
  const mon = new DriftMonitor(reference);
  const [r] = mon.observe(rotated, await model.predict(rotated));
  t.diagnostic(describe(r));
  assert.equal(r.drifted, true, describe(r));
  assert.ok(r.shareDrifted >= 0.5, `rotation should move most stroke pixels: ${describe(r)}`);
  assert.equal(r.confidence.drifted, true, describe(r));
});

test('constant reference features give finite statistics, never NaN', () => {
  // Features 0–3 are constant; 4–5 step through the same 100-value grid in reference and
  // stream, so nothing but the constant features can move.
  const make = (n: number, constant: number): Samples => ({
    data: Float32Array.from({ length: n * 6 }, (_, i) => (i % 6 < 4 ? constant : ((Math.floor(i / 6) * 37 + (i % 6)) % 100) / 100)),
    shape: [n, 6],
  });
  const probs = (n: number): Samples => ({ data: Float32Array.from({ length: n * 3 }, (_, i) => (i % 3 === 0 ? 0.9 : 0.05)), shape: [n, 3] });
  // A small reference takes the KS path, a large one the PSI path; every prediction is class 0.
  for (const refRows of [200, 1500]) {
    const mon = new DriftMonitor(driftReference(make(refRows, 0.5), probs(refRows)), { windowSize: 100 });
    const [same] = mon.observe(make(100, 0.5), probs(100));
    assert.ok(numbers(same).every((v) => !Number.isNaN(v)), `NaN in ${JSON.stringify(same)}`);
    assert.equal(same.drifted, false, `${refRows} rows: ${JSON.stringify(same)}`);
    assert.equal(same.shareDrifted, 0);
    assert.equal(same.confidence.pValue, 1);
    const [moved] = mon.observe(make(100, 0.9), probs(100));
    assert.ok(numbers(moved).every((v) => !Number.isNaN(v)), `NaN in ${JSON.stringify(moved)}`);
    assert.equal(moved.drifted, true, 'a constant feature that moves has drifted');
    assert.deepEqual(moved.features.map((f) => f.index).sort(), [0, 1, 2, 3]);
  }
});

test('a drift reference survives driftReferenceToJson / driftReferenceFromJson bit for bit', async () => {
  const text = driftReferenceToJson(reference);
  const restored = driftReferenceFromJson(text);
  assert.deepEqual(restored, reference);
  assert.ok(text.length < 25e6, `the stored reference is ${text.length} characters`);
  // A monitor on the restored reference reaches the very same verdicts.
  const x = rotate(window(11), 15);
  const p = await model.predict(x);
  assert.deepEqual(new DriftMonitor(restored).observe(x, p), new DriftMonitor(reference).observe(x, p));

  const doc = JSON.parse(text) as Record<string, unknown>;
  const broken = (patch: Record<string, unknown>) => JSON.stringify({ ...doc, ...patch });
  assert.throws(() => driftReferenceFromJson('{'), (e) => e instanceof BulwarkError && e.code === 'E_DATA_PARSE');
  assert.throws(() => driftReferenceFromJson(broken({ version: 2 })), /version 2/);
  assert.throws(() => driftReferenceFromJson(broken({ features: 783 })), /values.*header/);
  assert.throws(() => driftReferenceFromJson(broken({ predictionCounts: [1, 2] })), /predictionCounts/);
});
