import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { BulwarkError, Rng, sliceSamples, type Samples } from '../../src/core/index.js';
import { loadDigitsSplit } from '../../src/data/index.js';
import { fitOodDetector, type OodDetector } from '../../src/monitor/index.js';

let ood: OodDetector;
let heldOut: Samples;

before(async () => {
  const { train, test } = await loadDigitsSplit();
  // Fit on train, calibrate on the first half of the test set, judge on the other half.
  ood = fitOodDetector(train.x, sliceSamples(test.x, 0, 1000));
  heldOut = sliceSamples(test.x, 1000, 2000);
});

type Stroke = [x0: number, y0: number, x1: number, y1: number];
/** Capital letters as pen strokes on the 28×28 grid (x right, y down). */
const LETTERS: Record<string, Stroke[]> = {
  A: [[4, 24, 14, 4], [14, 4, 24, 24], [8, 16, 20, 16]],
  E: [[6, 4, 6, 24], [6, 4, 22, 4], [6, 14, 18, 14], [6, 24, 22, 24]],
  H: [[6, 4, 6, 24], [22, 4, 22, 24], [6, 14, 22, 14]],
  K: [[7, 4, 7, 24], [21, 4, 7, 15], [10, 13, 21, 24]],
  M: [[4, 24, 4, 4], [4, 4, 14, 16], [14, 16, 24, 4], [24, 4, 24, 24]],
  N: [[6, 24, 6, 4], [6, 4, 22, 24], [22, 24, 22, 4]],
  T: [[4, 5, 24, 5], [14, 5, 14, 24]],
  W: [[3, 4, 8, 24], [8, 24, 14, 10], [14, 10, 20, 24], [20, 24, 25, 4]],
  X: [[5, 4, 23, 24], [23, 4, 5, 24]],
  Z: [[5, 4, 23, 4], [23, 4, 5, 24], [5, 24, 23, 24]],
};

/** Ink 1 within 1 px of a stroke, fading to 0 at 2 px: anti-aliased pen strokes like the digits'. */
function drawLetters(names: string[]): Samples {
  const data = new Float32Array(names.length * 784);
  names.forEach((name, r) => {
    for (let i = 0; i < 28; i++) {
      for (let j = 0; j < 28; j++) {
        let d = Infinity;
        for (const [x0, y0, x1, y1] of LETTERS[name]) {
          const dx = x1 - x0;
          const dy = y1 - y0;
          const t = Math.max(0, Math.min(1, ((j - x0) * dx + (i - y0) * dy) / (dx * dx + dy * dy)));
          d = Math.min(d, Math.hypot(j - (x0 + t * dx), i - (y0 + t * dy)));
        }
        data[r * 784 + i * 28 + j] = Math.max(0, Math.min(1, 2 - d));
      }
    }
  });
  return { data, shape: [names.length, 28, 28, 1] };
}

test('about 1% of held-out digits are flagged at the default fpr of 1% (at most 2.5%)', (t) => {
  const flagged = ood.flag(heldOut).filter(Boolean).length / heldOut.shape[0];
  t.diagnostic(`held-out digits flagged: ${(flagged * 100).toFixed(1)}%`);
  assert.ok(flagged <= 0.025, `${(flagged * 100).toFixed(1)}% of in-distribution digits were flagged`);
  assert.ok(flagged >= 0.002, `${(flagged * 100).toFixed(1)}% flagged: the threshold is looser than the calibration asked for`);
  const scores = ood.score(heldOut);
  assert.ok(scores.every((s) => Number.isFinite(s) && s >= 0));
});

test('uniform noise images are all flagged', () => {
  const rng = new Rng(5);
  const noise: Samples = { data: Float32Array.from({ length: 100 * 784 }, () => rng.next()), shape: [100, 28, 28, 1] };
  assert.deepEqual(ood.flag(noise), new Array<boolean>(100).fill(true));
});

test('letters drawn as pen strokes are flagged', (t) => {
  const names = Object.keys(LETTERS);
  const scores = ood.score(drawLetters(names));
  t.diagnostic(`score / threshold: ${names.map((n, i) => `${n} ${(scores[i] / ood.threshold).toFixed(1)}`).join(', ')}`);
  const missed = names.filter((_, i) => !(scores[i] > ood.threshold));
  assert.deepEqual(missed, [], `letters taken for digits: ${missed.join(', ')}`);
});

test('rows of the wrong width are refused with E_DATA_SHAPE', () => {
  assert.throws(
    () => ood.score({ data: new Float32Array(10 * 100), shape: [10, 100] }),
    (e) => e instanceof BulwarkError && e.code === 'E_DATA_SHAPE' && /784/.test(e.message),
  );
});
