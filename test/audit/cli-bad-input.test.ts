import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { loadDigitsSplit } from '../../src/data/index.js';
import { initTfjs, saveTfjsModel } from '../../src/engines/index.js';
import { createZooModel } from '../../src/zoo/index.js';
import { startGateway } from '../../src/gateway/index.js';
import { bulwarkSrc, tempDir } from './helpers.js';

// Every case is input the user can fix: a clear message naming what and where, exit 2, and
// no report directory (a partial report must never pass for a complete one).
const dir = tempDir('audit-bad');
await initTfjs();
const { train, test: held } = await loadDigitsSplit();
const modelDir = path.join(dir, 'digits-logistic');
const model = createZooModel('logistic', { inputShape: [28, 28, 1], numClasses: 10, classNames: train.classNames, seed: 1, name: modelDir });
await model.fit(train, { epochs: 1, seed: 1 });
await saveTfjsModel(model, modelDir, { classNames: [...train.classNames], dataset: 'digits', architecture: 'logistic', seed: 1 });
model.dispose();

const gw = await startGateway({ models: [modelDir], allowUnsigned: true, name: 'digits', port: 0, store: path.join(dir, 'gw.db') });
after(async () => {
  await gw.close();
  rmSync(dir, { recursive: true, force: true });
});
const env = { BULWARK_CACHE_DIR: path.join(dir, 'cache') };

async function refused(args: string[], message: RegExp): Promise<void> {
  const out = path.join(tempDir('audit-bad-out'), 'report');
  const r = await bulwarkSrc(['audit', ...args, '--out', out, '--no-ledger'], env);
  assert.equal(r.code, 2, `exit code for ${args.join(' ')}: ${r.stderr}`);
  assert.match(r.stderr, message);
  assert.doesNotMatch(r.stderr, /internal error|\n\s+at /, 'a message, not a stack trace');
  assert.equal(existsSync(out), false, 'no report is written');
}

/** A CSV of the first `rows` test digits: 784 pixel columns and a label column made by `label`. */
function digitsCsv(file: string, rows: number, label: (digit: number) => string, columns = 784): string {
  const header = [...Array.from({ length: columns }, (_, j) => `p${j}`), 'label'].join(',');
  const lines = Array.from({ length: rows }, (_, i) => [...Array.from(held.x.data.subarray(i * 784, i * 784 + columns), (v) => v.toFixed(3)), label(held.y[i])].join(','));
  writeFileSync(file, [header, ...lines].join('\n') + '\n');
  return file;
}

test('an unreachable URL', async () => {
  // A port that was free a moment ago: nothing listens there.
  const port = await new Promise<number>((resolve) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(p));
    });
  });
  const url = `http://127.0.0.1:${port}/v2/models/digits`;
  await refused(['--model', url, '--key', 'k'], new RegExp(`--model ${url.replace(/[./]/g, '\\$&')}: cannot reach .*ECONNREFUSED.*Check the address and that the server is running`));
});

test('a key without the infer scope, and no key at all', async () => {
  const { key } = await gw.store.createKey({ name: 'ops', scopes: ['metrics'], tier: 'default' });
  const url = `${gw.url}/v2/models/digits`;
  await refused(['--model', url, '--key', key], /the key was refused \(403\); the audit needs a key with the 'infer' scope \('bulwark keys create --scopes infer'\).*lacks the 'infer' scope/);
  await refused(['--model', url], /the server wants an API key \(401\); give one with the 'infer' scope with --key KEY/);
});

test('data whose columns do not match the model inputs', async () => {
  const csv = digitsCsv(path.join(dir, 'narrow.csv'), 30, (d) => String(d), 20);
  await refused(['--model', modelDir, '--data', csv, '--label', 'label'], /--data .*narrow\.csv has 20 feature columns besides the label 'label', but model '.*digits-logistic' takes inputs of shape \[28, 28, 1\] \(784 values\)/);
});

test('a label column with classes the model does not know', async () => {
  const csv = digitsCsv(path.join(dir, 'letters.csv'), 30, (d) => (d < 5 ? String(d) : `class-${d}`));
  await refused(['--model', modelDir, '--data', csv, '--label', 'label'], /--data .*letters\.csv \(label column 'label'\) has classes the model does not know: 'class-\d', .*the model's classes are '0', '1'/);
  // The same data with a wrong --train-data label is caught too, before anything runs.
  const good = digitsCsv(path.join(dir, 'good.csv'), 30, (d) => String(d));
  await refused(['--model', modelDir, '--data', good, '--train-data', csv, '--label', 'label'], /--train-data .*letters\.csv \(label column 'label'\) has classes the model does not know/);
});

test('an invalid config file names the JSON pointer and why', async () => {
  const cfg = path.join(dir, 'bulwark.config.json');
  writeFileSync(cfg, JSON.stringify({ budget: 'lots', rules: { 'evasion.pgd-robust-accuracy': { thresholds: { high: 0.5, medium: 0.2 } }, 'evasion.pgd': {} } }));
  await refused(['--config', cfg], /bulwark\.config\.json is not a valid audit config:\n\s+\/budget: must be integer\n\s+\/rules\/evasion\.pgd: no such rule/);
  writeFileSync(cfg, JSON.stringify({ rules: { 'evasion.pgd-robust-accuracy': { thresholds: { high: 0.5, medium: 0.2 } } } }));
  await refused(['--config', cfg], /\/rules\/evasion\.pgd-robust-accuracy\/thresholds\/high: 0\.5 must be at most the 'medium' threshold 0\.2/);
  writeFileSync(cfg, '{ "budget": 3000, }');
  await refused(['--config', cfg], /bulwark\.config\.json is not valid JSON/);
  await refused(['--config', path.join(dir, 'missing.json')], /config file .*missing\.json: not found/);
});

test('bad flags', async () => {
  await refused(['--threats', 'evasion,theft'], /'theft' is not a threat; choose from evasion, poisoning, privacy, extraction, provenance/);
  await refused(['--budget', '0'], /'0' is not a positive integer/);
  await refused(['--data', 'mnist'], /without --model the audit runs on the built-in digits model/);
});
