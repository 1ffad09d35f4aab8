import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FeatureSqueezingDetector, bitDepthSqueezer, medianSqueezer } from '../../src/evasion/index.js';
import { linearModel, uniformSamples } from './toy.js';

// A 4×5 image and SciPy's ndimage.median_filter(x, size=s, mode='reflect') of it (SciPy 1.10.1).
const image = [
  [0.0, 0.7, 0.3, 1.0, 0.6],
  [0.2, 0.9, 0.5, 0.1, 0.8],
  [0.4, 0.0, 0.7, 0.3, 1.0],
  [0.6, 0.2, 0.9, 0.5, 0.1],
];
const median2 = [
  [0.0, 0.7, 0.7, 1.0, 1.0],
  [0.2, 0.7, 0.7, 0.5, 0.8],
  [0.4, 0.4, 0.7, 0.5, 0.8],
  [0.6, 0.4, 0.7, 0.7, 0.5],
];
const median3 = [
  [0.2, 0.3, 0.7, 0.6, 0.6],
  [0.2, 0.4, 0.5, 0.6, 0.8],
  [0.4, 0.5, 0.5, 0.5, 0.5],
  [0.4, 0.6, 0.5, 0.5, 0.3],
];

test('median smoothing matches SciPy (reflected borders, even windows), per channel', () => {
  const x = { data: Float32Array.from(image.flat()), shape: [1, 4, 5, 1] };
  for (const [size, want] of [
    [2, median2],
    [3, median3],
  ] as const) {
    const got = medianSqueezer(size).apply(x);
    assert.deepEqual(Array.from(got.data), Array.from(Float32Array.from(want.flat())));
  }
  // Two channels are filtered independently: the second is the first inverted.
  const two = { data: Float32Array.from(image.flat().flatMap((v) => [v, 1 - v])), shape: [1, 4, 5, 2] };
  const got = medianSqueezer(3).apply(two).data;
  for (let j = 0; j < 20; j++) assert.ok(Math.abs(got[2 * j] - median3.flat()[j]) < 1e-6);
  assert.throws(() => medianSqueezer(2).apply({ data: new Float32Array(6), shape: [2, 3] }), /needs images/);
});

test('bit-depth reduction rounds to the nearest of 2^bits levels', () => {
  const x = { data: Float32Array.from([0, 0.2, 0.49, 0.51, 0.9, 1]), shape: [1, 6] };
  assert.deepEqual(Array.from(bitDepthSqueezer(1).apply(x).data), [0, 0, 0, 1, 1, 1]);
  assert.deepEqual(Array.from(bitDepthSqueezer(2).apply(x).data).map((v) => Math.round(v * 3)), [0, 1, 1, 2, 3, 3]);
  assert.throws(() => bitDepthSqueezer(0), /bit depth/);
});

test('the detector calibrates its threshold at the asked false-positive rate and refuses to run uncalibrated', async () => {
  const model = linearModel(
    Array.from({ length: 16 }, (_, f) => [f % 2 ? 3 : -3, f % 3 ? -2 : 2]),
    [0, 0],
    [4, 4, 1],
  );
  const detector = new FeatureSqueezingDetector(model);
  const clean = uniformSamples(200, [4, 4, 1], 3);
  await assert.rejects(() => detector.detect(clean), /calibrate it on clean data first/);
  const t = await detector.calibrate(clean, 0.1);
  assert.equal(detector.threshold, t);
  const d = await detector.detect(clean);
  assert.equal(d.flagged.filter(Boolean).length, 20, '10% of 200 are flagged');
  assert.ok(d.scores.every((s) => s >= 0 && s <= 2), 'an L1 distance between probability vectors lies in [0, 2]');
  await assert.rejects(() => detector.calibrate(clean, 0), /false-positive rate/);
});
