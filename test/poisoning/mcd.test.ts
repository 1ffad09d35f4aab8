import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Rng } from '../../src/core/index.js';
import { fastMcd } from '../../src/poisoning/defences/mcd.js';
import { cholesky, cholLogDet } from '../../src/poisoning/defences/linalg.js';
import { chi2Quantile, rocAuc } from '../../src/poisoning/defences/stats.js';
import { mcdTestData } from './mcd-data.js';

// scikit-learn 1.2's MinCovDet on mcdTestData(), computed once with Debian's python3; the
// command that regenerates it is in the fixture's "generator" field (and make-mcd-fixture.ts).
interface SkFit {
  support_fraction: number | null;
  raw_logdet: number;
  raw_support: number[];
  location: number[];
  covariance: number[][];
  support: number[];
  dist: number[];
}
const fixture = JSON.parse(readFileSync(new URL('./fixtures/mcd-sklearn.json', import.meta.url), 'utf8')) as {
  chi2: { k: number; p: number; q: number }[];
  fits: SkFit[];
};
const { x, n, d, outliers } = mcdTestData();
const logDet = (c: ArrayLike<number>): number => cholLogDet(cholesky(Float64Array.from(c), d)!, d);
const indices = (mask: Uint8Array): number[] => [...mask].flatMap((v, i) => (v ? [i] : []));
const close = (a: number, b: number, rel = 1e-9): boolean => Math.abs(a - b) <= rel * Math.max(1, Math.abs(b));

test('χ² quantiles agree with SciPy', () => {
  for (const { k, p, q } of fixture.chi2) assert.ok(close(chi2Quantile(p, k), q, 1e-9), `χ²_${k}(${p}) = ${chi2Quantile(p, k)}, SciPy ${q}`);
});

test('MCD matches scikit-learn MinCovDet where the optimum is unique (support fraction 0.85)', () => {
  const sk = fixture.fits.find((f) => f.support_fraction === 0.85)!;
  const r = fastMcd(x, n, d, { supportFraction: 0.85, seed: 7 });
  assert.equal(r.supportSize, 140, 'h = floor(0.85 n), as scikit-learn');
  // Our search may find a smaller determinant than scikit-learn's (never a larger one) …
  assert.ok(logDet(r.rawCovariance) <= sk.raw_logdet + 1e-9, `raw log det ${logDet(r.rawCovariance)} vs scikit-learn ${sk.raw_logdet}`);
  // … and after the consistency correction and reweighting both land on the same rows and numbers.
  assert.deepEqual(indices(r.support), sk.support);
  sk.location.forEach((v, j) => assert.ok(close(r.location[j], v), `location[${j}] ${r.location[j]} vs ${v}`));
  sk.covariance.flat().forEach((v, j) => assert.ok(close(r.covariance[j], v), `covariance[${j}] ${r.covariance[j]} vs ${v}`));
  sk.dist.forEach((v, i) => assert.ok(close(r.distances[i], v, 1e-7), `dist[${i}] ${r.distances[i]} vs ${v}`));
  assert.deepEqual(r.warnings, []);
});

test('MCD with the default support: at least as small a determinant as scikit-learn, same outliers excluded', () => {
  const sk = fixture.fits.find((f) => f.support_fraction === null)!;
  const r = fastMcd(x, n, d, { seed: 7 });
  assert.equal(r.supportSize, sk.raw_support.length);
  assert.ok(logDet(r.rawCovariance) <= sk.raw_logdet + 1e-9, `raw log det ${logDet(r.rawCovariance)} vs scikit-learn ${sk.raw_logdet}`);
  for (const i of outliers) {
    assert.equal(r.support[i], 0, `planted outlier ${i} is outside our support`);
    assert.ok(!sk.support.includes(i), `planted outlier ${i} is outside scikit-learn's support`);
  }
  // The reweighted supports may differ by a few borderline rows, no more.
  const ours = new Set(indices(r.support));
  const diff = sk.support.filter((i) => !ours.has(i)).length + [...ours].filter((i) => !sk.support.includes(i)).length;
  assert.ok(diff <= 6, `${diff} rows differ between the reweighted supports`);
});

test('robust distances rank shifted outliers first (AUC > 0.99)', () => {
  const rng = new Rng(5);
  const m = 600;
  const dim = 8;
  const bad = 60;
  const rows = new Float64Array((m + bad) * dim);
  const truth = new Uint8Array(m + bad);
  for (let i = 0; i < m + bad; i++) {
    for (let j = 0; j < dim; j++) rows[i * dim + j] = rng.normal();
    if (i >= m) {
      truth[i] = 1;
      for (let j = 0; j < 3; j++) rows[i * dim + j] += 3;
    }
  }
  const r = fastMcd(rows, m + bad, dim, { seed: 1 });
  const auc = rocAuc(r.distances, truth);
  assert.ok(auc > 0.99, `AUC ${auc}`);
});

test('fewer rows than columns: shrinkage with a warning, not a crash', () => {
  const rng = new Rng(9);
  const rows = Float64Array.from({ length: 12 * 20 }, () => rng.normal());
  const r = fastMcd(rows, 12, 20, { seed: 1 });
  assert.ok(r.shrinkage > 0);
  assert.match(r.warnings.join('\n'), /fewer rows \(12\) than columns \(20\).*shrunk/);
  assert.ok(r.distances.every((v) => Number.isFinite(v)));
});

test('a singular covariance (a column that copies another) is shrunk with a warning', () => {
  const rng = new Rng(3);
  const rows = new Float64Array(200 * 3);
  for (let i = 0; i < 200; i++) {
    rows[i * 3] = rng.normal();
    rows[i * 3 + 1] = rng.normal();
    rows[i * 3 + 2] = rows[i * 3] - rows[i * 3 + 1];
  }
  const r = fastMcd(rows, 200, 3, { seed: 1 });
  assert.ok(r.shrinkage > 0);
  assert.match(r.warnings.join('\n'), /singular/);
});
