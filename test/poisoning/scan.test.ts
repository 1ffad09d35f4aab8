import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Rng, subset } from '../../src/core/index.js';
import { loadDigitsSplit } from '../../src/data/index.js';
import {
  CovarianceAccumulator,
  detectionRates,
  poison,
  rocAuc,
  scanCsvStream,
  scanDataset,
  scanInputOf,
} from '../../src/poisoning/index.js';
import { meanCov } from '../../src/poisoning/defences/linalg.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'bulwark-scan-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** n normal rows in d dimensions, the last `bad` shifted by +shift in the first 3 columns. */
function blobs(n: number, d: number, bad: number, shift: number, seed: number): { x: Float64Array; truth: Uint8Array } {
  const rng = new Rng(seed);
  const x = new Float64Array((n + bad) * d);
  const truth = new Uint8Array(n + bad);
  for (let i = 0; i < n + bad; i++) {
    for (let j = 0; j < d; j++) x[i * d + j] = rng.normal();
    if (i >= n) {
      truth[i] = 1;
      for (let j = 0; j < 3; j++) x[i * d + j] += shift;
    }
  }
  return { x, truth };
}

test('outlier scores rank shifted rows first (AUC) and flag them with few false alarms', () => {
  const { x, truth } = blobs(1500, 10, 30, 4, 1);
  const r = scanDataset({ x, n: 1530, d: 10 }, { seed: 1 });
  const auc = rocAuc(r.scores.outlier, truth);
  assert.ok(auc > 0.995, `outlier AUC ${auc}`);
  const flaggedOutliers = Uint8Array.from(r.scores.outlier, (v) => (v > 1 ? 1 : 0));
  const rates = detectionRates(flaggedOutliers, truth);
  assert.ok(rates.recall >= 0.8 && rates.fpr <= 0.01, JSON.stringify(rates));
  assert.ok(rocAuc(r.scores.isolation, truth) > 0.9, 'the isolation forest agrees');
  assert.equal(r.scores.labelIssue, undefined, 'no label, no label scores');
});

test('uniform label flips on a digits subset are found (AUC, precision and recall)', async () => {
  const { train } = await loadDigitsSplit();
  const ds = subset(train, new Rng(3).permutation(train.y.length).subarray(0, 2500));
  const p = await poison(ds, { kind: 'label-flip', rate: 0.1, seed: 4 });
  const truth = new Uint8Array(ds.y.length);
  for (const i of p.poisonedIndices) truth[i] = 1;
  const r = scanDataset(scanInputOf(p.dataset), { seed: 2 });
  const auc = rocAuc(r.scores.labelIssue!, truth);
  assert.ok(auc > 0.97, `label-issue AUC ${auc}`);
  const flagged = Uint8Array.from({ length: ds.y.length }, (_, i) => (r.reasons.get(i)?.some((x) => x.kind === 'likely mislabeled') ? 1 : 0));
  const rates = detectionRates(flagged, truth);
  assert.ok(rates.precision >= 0.75 && rates.recall >= 0.85, JSON.stringify(rates));
  const top = r.suspicious.find((s) => s.reasons.some((x) => x.kind === 'likely mislabeled'))!;
  assert.match(top.reasons.find((x) => x.kind === 'likely mislabeled')!.detail, /labelled '\d' .*looks like '\d'/);
});

test('exact, conflicting and near duplicates; constant columns, one class and n < d are warnings', () => {
  const { x } = blobs(200, 4, 0, 0, 5);
  const d = 5;
  const rows = new Float64Array(203 * d);
  for (let i = 0; i < 200; i++) {
    rows.set(x.subarray(i * 4, i * 4 + 4), i * d);
    rows[i * d + 4] = 7; // a constant column
  }
  rows.set(rows.subarray(10 * d, 11 * d), 200 * d); // exact copy of row 10, same label
  rows.set(rows.subarray(20 * d, 21 * d), 201 * d); // copy of row 20 with another label
  rows.set(rows.subarray(30 * d, 31 * d), 202 * d);
  rows[202 * d] += 1e-4; // a near copy of row 30
  const y = Int32Array.from({ length: 203 }, (_, i) => (i < 100 ? 0 : 1));
  y[200] = y[10];
  y[201] = 1 - y[20];
  const r = scanDataset({ x: rows, n: 203, d, y, classNames: ['a', 'b'], featureNames: ['f0', 'f1', 'f2', 'f3', 'const'] }, { seed: 1 });
  assert.equal(r.scores.duplicateOf[200], 10);
  assert.deepEqual(r.reasons.get(200)!.map((x) => x.kind), ['duplicate']);
  assert.ok(r.reasons.get(201)!.some((x) => x.kind === 'conflicting duplicate'));
  assert.ok(r.reasons.get(20)!.some((x) => x.kind === 'conflicting duplicate'), 'both copies of a conflicting pair are flagged');
  assert.equal(r.reasons.get(10), undefined, 'the first of plain duplicates is kept');
  assert.equal(r.scores.nearDuplicateOf[202], 30);
  assert.match(r.warnings.join('\n'), /constant column \('const'\)/);
  assert.equal(r.features, 4);

  const one = scanDataset({ x: rows, n: 203, d, y: new Int32Array(203), classNames: ['only'] }, { seed: 1 });
  assert.match(one.warnings.join('\n'), /same label \('only'\).*skipped/);
  assert.ok(one.scores.labelIssue!.every((v) => v === 0));

  const wide = blobs(12, 20, 0, 0, 6).x;
  const w = scanDataset({ x: wide, n: 12, d: 20 }, { seed: 1, maxDims: 30 });
  assert.match(w.warnings.join('\n'), /fewer rows \(12\) than columns \(20\)/);
  assert.ok(w.scores.outlier.every(Number.isFinite));
});

test('streaming covariance merges equal the covariance of all rows at once', () => {
  const { x } = blobs(1000, 6, 0, 0, 7);
  for (let i = 0; i < x.length; i++) x[i] = x[i] * 1e-3 + 1e6; // far from the origin: a naive sum of squares would cancel
  const acc = new CovarianceAccumulator(6);
  for (let s = 0; s < 1000; s += 97) acc.addRows(x.subarray(s * 6, Math.min(1000, s + 97) * 6), Math.min(97, 1000 - s));
  const whole = meanCov(x, 6);
  const cov = acc.covariance();
  for (let k = 0; k < 36; k++) assert.ok(Math.abs(cov[k] - whole.cov[k]) <= 1e-6 * Math.abs(whole.cov[k]) + 1e-12, `cov[${k}]: ${cov[k]} vs ${whole.cov[k]}`);
  for (let j = 0; j < 6; j++) assert.ok(Math.abs(acc.mean[j] - whole.mean[j]) < 1e-6);
});

test('a CSV scanned in passes (streaming) agrees with the in-memory scan and keeps row order', async () => {
  const { x, truth } = blobs(3000, 6, 60, 4, 8);
  const n = 3060;
  const lines = ['id,a,b,c,d,e,f,label'];
  for (let i = 0; i < n; i++) lines.push([`r${i}`, ...Array.from({ length: 6 }, (_, j) => x[i * 6 + j].toFixed(5)), x[i * 6 + 4] > 0 ? 'pos' : 'neg'].join(','));
  const file = path.join(dir, 'blobs.csv');
  writeFileSync(file, lines.join('\n') + '\n');
  const scores = path.join(dir, 'scores.csv');
  const clean = path.join(dir, 'clean.csv');
  const r = await scanCsvStream(file, { label: 'label', drop: ['id'], scoresFile: scores, cleanFile: clean, reservoirSize: 1000, seed: 3 });
  assert.equal(r.streamed, true);
  assert.equal(r.rows, n);
  const text = readFileSync(scores, 'utf8').trim().split('\n');
  assert.equal(text[0], 'row,outlier_score,isolation_score,label_issue_score,suggested_label,duplicate_of,reasons');
  assert.equal(text.length, n + 1);
  const outlier = text.slice(1).map((l, i) => {
    const cells = l.split(',');
    assert.equal(Number(cells[0]), i, 'one line per row, in input order');
    return Number(cells[1]);
  });
  assert.ok(rocAuc(outlier, truth) > 0.99);
  const kept = readFileSync(clean, 'utf8').trim().split('\n');
  assert.equal(kept[0], lines[0]);
  assert.equal(kept.length - 1, n - r.counts.flagged);
  assert.ok(kept.includes(lines[1]) || r.suspicious.some((s) => s.row === 0), 'kept rows are copied byte for byte');
  assert.ok(r.methods.some((m) => /streaming covariance merges/.test(m)));
});
