import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Samples } from '../../src/core/index.js';
import {
  ABSTAIN,
  betaInc,
  binomTestHalf,
  certifiedAccuracy,
  certify,
  clopperPearsonLower,
  clopperPearsonUpper,
  normCdf,
  normPpf,
  smoothedModel,
  smoothedPredict,
} from '../../src/evasion/index.js';
import { linearModel } from './toy.js';

// Reference values from SciPy 1.10.1 (Debian's python3-scipy), computed with:
//   stats.norm.cdf / stats.norm.ppf / special.betainc / stats.beta.ppf / stats.binomtest(k, n, 0.5).pvalue
// Clopper–Pearson lower = beta.ppf(alpha, k, n-k+1), as in Cohen et al.'s code
// (statsmodels proportion_confint(k, n, alpha=2*alpha, method="beta")[0]).
const close = (got: number, want: number, rel = 1e-9, abs = 1e-300) =>
  assert.ok(Math.abs(got - want) <= Math.max(abs, rel * Math.abs(want)), `got ${got}, want ${want}`);

test('normal CDF and quantile match SciPy, tails included', () => {
  const cdf: [number, number][] = [
    [-8, 6.22096057427174e-16],
    [-3.5, 0.00023262907903552502],
    [-1, 0.15865525393145707],
    [0, 0.5],
    [0.3, 0.6179114221889526],
    [1.96, 0.9750021048517795],
    [5, 0.9999997133484281],
  ];
  for (const [x, p] of cdf) close(normCdf(x), p, 1e-12);
  const ppf: [number, number][] = [
    [1e-10, -6.361340902404056],
    [0.001, -3.090232306167813],
    [0.025, -1.9599639845400545],
    [0.7, 0.5244005127080407],
    [0.975, 1.959963984540054],
    [0.999999, 4.753424308817087],
  ];
  for (const [p, x] of ppf) close(normPpf(p), x, 1e-10);
  assert.ok(Math.abs(normPpf(0.5)) < 1e-15);
  assert.equal(normPpf(0), -Infinity);
  assert.equal(normPpf(1), Infinity);
});

test('incomplete beta, Clopper–Pearson bounds and the binomial test match SciPy', () => {
  const inc: [number, number, number, number][] = [
    [2, 3, 0.4, 0.5247999999999999],
    [0.5, 0.5, 0.1, 0.2048327646991335],
    [100, 5, 0.9, 0.017937643107257237],
    [990, 11, 0.98, 0.01023654815976543],
    [99999, 2, 0.9999, 0.0004991949553451318],
  ];
  for (const [a, b, x, v] of inc) close(betaInc(a, b, x), v, 1e-8);
  const lower: [number, number, number, number][] = [
    [1000, 1000, 0.001, 0.9931160484209338],
    [990, 1000, 0.001, 0.9760361871553114],
    [600, 1000, 0.001, 0.5510754739370525],
    [50, 100, 0.05, 0.41362171463091163],
    [99990, 100000, 0.001, 0.9997586773435911],
    [1, 10, 0.01, 0.0010045287082499491],
  ];
  for (const [k, n, a, v] of lower) close(clopperPearsonLower(k, n, a), v, 1e-9);
  assert.equal(clopperPearsonLower(0, 100, 0.001), 0);
  const upper: [number, number, number, number][] = [
    [0, 1000, 0.001, 0.006883951579066227],
    [10, 1000, 0.001, 0.023963812844688626],
    [50, 100, 0.05, 0.5863782853690883],
  ];
  for (const [k, n, a, v] of upper) close(clopperPearsonUpper(k, n, a), v, 1e-9);
  const binom: [number, number, number][] = [
    [60, 100, 0.05688793364098088],
    [51, 100, 0.9204107626128215],
    [50, 100, 1.0],
    [10, 10, 0.001953125],
    [3, 20, 0.0025768280029296875],
    [700, 1000, 1.7665678007949568e-37],
    [530, 1000, 0.06202319509836348],
  ];
  for (const [k, n, p] of binom) close(binomTestHalf(k, n), p, 1e-9);
  // Cohen et al.'s radius for 990 of 1000 votes, σ = 0.25, α = 0.001: 0.25 · Φ⁻¹(beta.ppf(0.001, 990, 11)).
  close(0.25 * normPpf(clopperPearsonLower(990, 1000, 0.001)), 0.49450239553529984, 1e-9);
  assert.throws(() => clopperPearsonLower(5, 4, 0.01), RangeError);
});

/** Two classes split by the hyperplane x₀ = 0.5 (as logits ±20·(x₀ − 0.5)): distance to it is |x₀ − 0.5|. */
const halfPlane = linearModel([[-20, 20], [0, 0], [0, 0]], [10, -10], [3], 'half-plane');

test('certified radii are sound and tight for a classifier whose true robust radius is known', async () => {
  const x0 = [0.5 + 0.25, 0.5 - 0.4, 0.5 + 0.05, 0.5];
  const x: Samples = { data: Float32Array.from(x0.flatMap((v) => [v, 0.3, 0.7])), shape: [4, 3] };
  const y = Int32Array.from([1, 0, 1, 1]);
  const sigma = 0.25;
  const r = await certify(halfPlane, x, { sigma, n: 20000, n0: 100, alpha: 0.001, seed: 1 });
  for (let i = 0; i < 3; i++) {
    const truth = Math.abs(x0[i] - 0.5);
    assert.equal(r.predicted[i], y[i]);
    // Sound: never more than the real distance to the boundary. Tight: close to it at n = 20,000.
    assert.ok(r.radius[i] <= truth, `sample ${i}: certified ${r.radius[i]} > true radius ${truth}`);
    assert.ok(r.radius[i] >= 0.8 * truth, `sample ${i}: certified ${r.radius[i]} is far below ${truth}`);
  }
  assert.equal(r.predicted[3], ABSTAIN, 'a point on the boundary gets no certificate');
  assert.equal(r.radius[3], 0);
  assert.equal(certifiedAccuracy(r, y, 0), 0.75);
  assert.equal(certifiedAccuracy(r, y, 0.2), 0.5);
  assert.equal(certifiedAccuracy(r, y, 0.5), 0);

  const p = await smoothedPredict(halfPlane, x, { sigma, n: 2000, alpha: 0.001, seed: 2 });
  // 0.05 from the boundary is still a clear majority at σ = 0.25 (58% of votes); on it, a coin toss.
  assert.deepEqual(Array.from(p.predicted), [1, 0, 1, ABSTAIN]);

  const votes = await smoothedModel(halfPlane, { sigma, n: 400, seed: 3 }).predict(x);
  // Vote shares estimate Φ(distance / σ): Φ(1) ≈ 0.841 and Φ(1.6) ≈ 0.945.
  assert.ok(Math.abs(votes.data[1] - 0.841) < 0.06, `vote share ${votes.data[1]}`);
  assert.ok(Math.abs(votes.data[2] - 0.945) < 0.04, `vote share ${votes.data[2]}`);
  await assert.rejects(() => certify(halfPlane, x, { sigma: 0 }), /sigma must be a positive number/);
  await assert.rejects(() => certify(halfPlane, x, { sigma: 0.25, alpha: 0.7 }), /alpha must be in \(0, 0\.5\)/);
});
