import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { access } from 'node:fs/promises';
import { loadDigits, loadDigitsSplit, digitsSourceFiles, DIGITS_TEST_COUNT } from '../../src/data/digits.js';
import { classCounts, type Dataset } from '../../src/core/dataset.js';

const ROW = 28 * 28;

/** A hash of each row's pixels together with its label. */
function rowHashes(ds: Dataset): string[] {
  const bytes = new Uint8Array(ds.x.data.buffer, ds.x.data.byteOffset, ds.x.data.byteLength);
  const out: string[] = [];
  for (let i = 0; i < ds.y.length; i++) {
    out.push(createHash('sha1').update(bytes.subarray(i * ROW * 4, (i + 1) * ROW * 4)).update(String(ds.y[i])).digest('hex'));
  }
  return out;
}

function countBy(keys: string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const k of keys) m.set(k, (m.get(k) ?? 0) + 1);
  return m;
}

test('the digits are 10,000 28×28 grey images in [0, 1] with 10 well-filled classes', async () => {
  const ds = await loadDigits();
  assert.equal(ds.name, 'digits');
  assert.deepEqual(ds.x.shape, [10000, 28, 28, 1]);
  assert.equal(ds.x.data.length, 10000 * ROW);
  assert.equal(ds.y.length, 10000);
  assert.deepEqual(ds.classNames, ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
  let min = Infinity;
  let max = -Infinity;
  for (const v of ds.x.data) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  assert.ok(min >= 0 && max <= 1, `values in [${min}, ${max}]`);
  assert.ok(max > 0.9, 'the images have ink');
  const counts = classCounts(ds);
  assert.equal(counts.length, 10);
  assert.equal(counts.reduce((a, b) => a + b, 0), 10000);
  for (const [digit, c] of counts.entries()) assert.ok(c > 800, `digit ${digit} has ${c} samples`);
  // Every image has some ink and some background.
  for (let i = 0; i < 10000; i += 97) {
    const img = ds.x.data.subarray(i * ROW, (i + 1) * ROW);
    const ink = img.reduce((s, v) => s + (v > 0.5 ? 1 : 0), 0);
    assert.ok(ink > 10 && ink < ROW / 2, `image ${i} has ${ink} inked pixels`);
  }
  // Loading again gives the same (cached) data.
  assert.equal(await loadDigits(), ds);
  // The provenance files exist.
  const files = digitsSourceFiles();
  assert.equal(files.length, 10);
  for (const f of files) await access(f);
  assert.deepEqual(ds.sources, files);
});

test('the digits split is 8000/2000, deterministic, and a partition of the data', async () => {
  const all = await loadDigits();
  const a = await loadDigitsSplit();
  const b = await loadDigitsSplit();
  assert.equal(DIGITS_TEST_COUNT, 2000);
  assert.deepEqual(a.train.x.shape, [8000, 28, 28, 1]);
  assert.deepEqual(a.test.x.shape, [2000, 28, 28, 1]);
  assert.equal(a.train.y.length, 8000);
  assert.equal(a.test.y.length, 2000);
  assert.deepEqual(a.train.classNames, all.classNames);

  // Deterministic: a second call gives the very same split.
  assert.deepEqual(Array.from(a.test.y), Array.from(b.test.y));
  assert.deepEqual(Array.from(a.train.y), Array.from(b.train.y));
  const bytes = (f: Float32Array) => Buffer.from(f.buffer, f.byteOffset, f.byteLength);
  assert.ok(bytes(a.test.x.data).equals(bytes(b.test.x.data)), 'identical test images');

  // Shuffled, not the first/last 2000 rows (which would hold only 8s and 9s).
  const testCounts = classCounts(a.test);
  for (const [digit, c] of testCounts.entries()) assert.ok(c > 100, `digit ${digit} has ${c} test samples`);

  // Train and test together are exactly the full dataset, row for row (as a multiset, since
  // a handwritten digit could in principle appear twice): no row is in both, none is lost.
  const full = countBy(rowHashes(all));
  const train = countBy(rowHashes(a.train));
  const test = countBy(rowHashes(a.test));
  for (const [h, c] of full) {
    assert.equal((train.get(h) ?? 0) + (test.get(h) ?? 0), c, 'each row of the dataset is in exactly one side');
  }
  for (const h of test.keys()) {
    assert.ok(full.has(h));
    if (full.get(h) === 1) assert.ok(!train.has(h), 'a test row is not also in train');
  }
  assert.equal([...train.values()].reduce((s, c) => s + c, 0), 8000);

  // The split does not modify the cached dataset.
  assert.deepEqual(all.x.shape, [10000, 28, 28, 1]);
});
