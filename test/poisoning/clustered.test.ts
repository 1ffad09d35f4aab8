import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/core/index.js';
import { chi2Isf, chi2Sf, clusteredOutliers, fastMcd, rocAuc } from '../../src/poisoning/index.js';

/** n standard-normal rows in 30 dimensions, then `bad` rows shifted by +3 in the first 5. */
function rows(n: number, bad: number, seed: number): { x: Float64Array; truth: Uint8Array } {
  const d = 30;
  const rng = new Rng(seed);
  const x = new Float64Array((n + bad) * d);
  const truth = new Uint8Array(n + bad);
  for (let i = 0; i < n + bad; i++) {
    for (let j = 0; j < d; j++) x[i * d + j] = rng.normal() + (i >= n && j < 5 ? 3 : 0);
    truth[i] = i >= n ? 1 : 0;
  }
  return { x, truth };
}

test('χ² upper tails far below 1e-16 agree with SciPy', () => {
  // scipy 1.10: chi2.sf(200, 30), chi2.isf(1e-40, 30), chi2.sf(45, 1) / 2
  assert.ok(Math.abs(chi2Sf(200, 30) / 4.9527335290032224e-27 - 1) < 1e-9);
  assert.ok(Math.abs(chi2Isf(1e-40, 30) / 271.5479217550507 - 1) < 1e-9);
  assert.ok(Math.abs(chi2Sf(45, 1) / 2 / 9.85172235589956e-12 - 1) < 1e-9);
});

test('outliers shifted together are found by their shared direction where the robust distance alone misses some', () => {
  // The data: 5,000 clean rows and 100 shifted ones (the bench's seed).
  const { x, truth } = rows(5000, 100, 42);
  const mcd = fastMcd(x, truth.length, 30, { seed: 1 });
  const r = clusteredOutliers(x, truth.length, 30, mcd, { seed: 1 });
  assert.ok(r.detected, `p = ${r.pValue}`);
  const distance = rocAuc(mcd.distances, truth);
  const combined = rocAuc(r.combined, truth);
  assert.ok(distance < 0.998, `the distance alone reaches ${distance}`);
  assert.ok(combined >= 0.999, `combined AUC ${combined}`);
  // The direction found is the shift: the first 5 whitened coordinates carry it.
  const along = r.direction.slice(0, 5).reduce((s, v) => s + v * v, 0);
  assert.ok(along > 0.8, `share of the direction in the shifted features: ${along}`);
});

test('on normal data without a group of outliers the score is the robust distance unchanged', () => {
  const { x, truth } = rows(3000, 0, 8);
  const mcd = fastMcd(x, truth.length, 30, { seed: 1 });
  const r = clusteredOutliers(x, truth.length, 30, mcd, { seed: 1 });
  assert.equal(r.detected, false, `p = ${r.pValue}`);
  assert.deepEqual(r.combined, mcd.distances);
});
