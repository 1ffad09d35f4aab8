import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import { loadDatasetFile, loadDigitsSplit, readNpy } from '../../src/data/index.js';
import { bulwark, tempDir } from '../cli/helpers.js';

const dir = tempDir('poison-images');
after(() => rmSync(dir, { recursive: true, force: true }));

test('attack poison on digits writes images that keep their shape, and a CNN trains on the file', async () => {
  const out = path.join(dir, 'digits-badnets.npy');
  const r = await bulwark(['attack', 'poison', '--dataset', 'digits', '--kind', 'badnets', '--rate', '0.1', '--target', '0', '--out', out, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const res = JSON.parse(r.stdout) as { files: string[]; rows: number; poisonedIndices: number[] };
  const labelsFile = path.join(dir, 'digits-badnets.labels.npy');
  assert.deepEqual(res.files, [out, labelsFile, path.join(dir, 'digits-badnets.poisoned.npy')]);
  assert.ok(res.files.every((f) => existsSync(f)));

  const images = await readNpy(out);
  assert.deepEqual(images.shape, [res.rows, 28, 28, 1], 'the images are not flattened');
  const ds = await loadDatasetFile(out);
  assert.deepEqual(ds.x.shape, [res.rows, 28, 28, 1]);
  // Poisoned rows carry the target label and the 4×4 patch at the bottom right (1-pixel margin).
  const { train } = await loadDigitsSplit();
  const size = 28 * 28;
  const p = res.poisonedIndices[0];
  assert.equal(ds.y[p], 0);
  assert.equal(ds.x.data[p * size + 26 * 28 + 26], 1);
  const clean = [...ds.y.keys()].find((i) => !res.poisonedIndices.includes(i))!;
  assert.equal(ds.y[clean], train.y[clean]);
  assert.deepEqual(ds.x.data.subarray(clean * size, (clean + 1) * size), train.x.data.subarray(clean * size, (clean + 1) * size));

  const model = path.join(dir, 'cnn');
  const t = await bulwark(['train', '--dataset', out, '--model', 'cnn', '--epochs', '1', '--out', model, '--json']);
  assert.equal(t.code, 0, t.stderr);
  const trained = JSON.parse(t.stdout) as { model: string; trainSamples: number; testAccuracy: number };
  assert.equal(trained.model, 'cnn');
  assert.equal(trained.trainSamples, Math.round(res.rows * 0.8));
  assert.ok(trained.testAccuracy > 0.8, `one epoch of the CNN on the poisoned digits reaches ${trained.testAccuracy}`);
});

test('an .npy of images without its labels file says where the labels go', async () => {
  const out = path.join(dir, 'lonely.npy');
  const r = await bulwark(['attack', 'poison', '--dataset', 'digits', '--kind', 'blended', '--rate', '0.05', '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  rmSync(path.join(dir, 'lonely.labels.npy'));
  const t = await bulwark(['train', '--dataset', out, '--model', 'cnn', '--epochs', '1']);
  assert.equal(t.code, 2);
  assert.match(t.stderr, /lonely\.labels\.npy/);
});
