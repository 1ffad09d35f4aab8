import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { bulwark, tempDir } from './helpers.js';
import { initTfjs, loadTfjsModel, serveOip } from '../../src/engines/index.js';

const dir = tempDir('train');

test('train, eval, export to ONNX and eval again: one accuracy across engines', async () => {
  const out = path.join(dir, 'logistic');
  const trained = await bulwark(['train', '--dataset', 'digits', '--model', 'logistic', '--epochs', '2', '--out', out, '--json']);
  assert.equal(trained.code, 0, trained.stderr);
  const t = JSON.parse(trained.stdout);
  assert.ok(t.testAccuracy > 0.8, `logistic regression on digits should pass 80% after 2 epochs, got ${t.testAccuracy}`);
  assert.ok(t.trainSeconds > 0);
  for (const f of ['model.json', 'weights.bin', 'bulwark.json']) assert.ok(existsSync(path.join(out, f)), f);

  const evaluated = await bulwark(['eval', '--model', out, '--dataset', 'digits', '--json']);
  assert.equal(evaluated.code, 0, evaluated.stderr);
  assert.equal(JSON.parse(evaluated.stdout).accuracy, t.testAccuracy);

  const onnx = path.join(dir, 'logistic.onnx');
  const exported = await bulwark(['export', '--model', out, '--format', 'onnx', '--out', onnx]);
  assert.equal(exported.code, 0, exported.stderr);
  const viaOnnx = await bulwark(['eval', '--model', onnx, '--json']);
  assert.equal(viaOnnx.code, 0, viaOnnx.stderr);
  const o = JSON.parse(viaOnnx.stdout);
  assert.equal(o.engine, 'onnx');
  assert.ok(Math.abs(o.accuracy - t.testAccuracy) <= 0.001, `onnx ${o.accuracy} vs tfjs ${t.testAccuracy}`);

  // The same model behind the Open Inference Protocol answers the same through the http engine.
  await initTfjs();
  const { model } = await loadTfjsModel(out);
  const server = await serveOip(model, { name: 'digits' });
  try {
    const remote = await bulwark(['eval', '--model', server.url, '--json']);
    assert.equal(remote.code, 0, remote.stderr);
    const r = JSON.parse(remote.stdout);
    assert.equal(r.engine, 'http');
    assert.ok(Math.abs(r.accuracy - t.testAccuracy) <= 0.001, `http ${r.accuracy} vs local ${t.testAccuracy}`);
  } finally {
    await server.close();
    model.dispose();
  }
});

test('a CSV with a categorical column trains, evaluates, and refuses data encoded differently', async () => {
  const csv = path.join(dir, 'people.csv');
  const rows = ['id,age,income,city,bought'];
  // Learnable by construction: buyers are older and richer.
  for (let i = 0; i < 200; i++) {
    const buys = i % 2;
    rows.push(`${i},${20 + buys * 25 + (i % 7)},${30 + buys * 40 + (i % 11)},${['oslo', 'rome', 'lima'][i % 3]},${buys ? 'yes' : 'no'}`);
  }
  writeFileSync(csv, rows.join('\n') + '\n');
  const out = path.join(dir, 'csv-model');
  const trained = await bulwark(['train', '--dataset', csv, '--label', 'bought', '--drop', 'id', '--model', 'mlp', '--epochs', '40', '--out', out, '--json']);
  assert.equal(trained.code, 0, trained.stderr);
  assert.ok(JSON.parse(trained.stdout).testAccuracy >= 0.9, trained.stdout);
  const card = JSON.parse(readFileSync(path.join(out, 'bulwark.json'), 'utf8'));
  assert.deepEqual(card.classNames, ['no', 'yes']);

  // A file where one city never appears one-hot encodes to fewer columns: refused by name.
  const other = path.join(dir, 'other.csv');
  writeFileSync(other, rows.filter((r, i) => i === 0 || !r.includes('lima')).join('\n') + '\n');
  const bad = await bulwark(['eval', '--model', out, '--dataset', other, '--label', 'bought', '--drop', 'id']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /expects samples of shape|encodes its features differently/);
});

test('every command has --help that exits 0', async () => {
  for (const cmd of [[], ['train'], ['eval'], ['export'], ['audit']]) {
    const r = await bulwark([...cmd, '--help']);
    assert.equal(r.code, 0, `${cmd.join(' ')} --help: ${r.stderr}`);
    assert.match(r.stdout, /Usage: bulwark/);
  }
});
