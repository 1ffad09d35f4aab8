import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { bulwark, tempDir } from './helpers.js';

const cache = tempDir('cache');
const env = { BULWARK_CACHE_DIR: cache };

test('bulwark audit with no target trains the digits MLP, writes both reports, then reuses the model', async () => {
  const out = path.join(tempDir('audit'), 'report');
  const first = await bulwark(['audit', '--out', out], env);
  assert.equal(first.code, 0, first.stderr);
  assert.doesNotMatch(first.stderr, /tensors were not released/);
  // The terminal summary names the findings and where the report went.
  assert.match(first.stdout, /Test accuracy/);
  assert.match(first.stdout, /report written to .*report\.json and .*report\.html/);

  const report = JSON.parse(readFileSync(path.join(out, 'report.json'), 'utf8'));
  assert.equal(report.tool, 'bulwark');
  assert.deepEqual(report.sections.map((s: { id: string }) => s.id).slice(0, 2), ['model', 'provenance']);
  const model = report.sections[0].findings;
  const acc = model.find((f: { metric: string }) => f.metric === 'test accuracy');
  assert.ok(acc.value >= 0.95, `digits MLP test accuracy ${acc.value} below 95%`);
  const confusion = model.find((f: { chart?: { kind: string } }) => f.chart?.kind === 'heatmap').chart.values as number[][];
  assert.equal(confusion.length, 10);
  assert.equal(confusion.flat().reduce((a, b) => a + b, 0), 2000, 'confusion matrix counts every test digit');
  const prov = report.sections[1].findings;
  assert.ok(prov.some((f: { evidence: string[] }) => f.evidence.some((e) => /^sha256 [0-9a-f]{64}/.test(e))));

  const ledger = prov.find((f: { title: string }) => f.title === 'Ledger');
  assert.equal(ledger.passed, true, 'the audit ledger verifies');
  const entries = await bulwark(['ledger', 'show', '--ledger', path.join(cache, 'ledger.db'), '--json']);
  const kinds = entries.stdout.trim().split('\n').map((l) => JSON.parse(l).kind);
  assert.deepEqual(kinds, ['model.trained', 'audit.started', 'audit.fingerprints', 'audit.completed']);

  const html = readFileSync(path.join(out, 'report.html'), 'utf8');
  assert.match(html, /<svg/);
  const external = html.match(/(?:src|href)\s*=\s*["']?https?:/gi);
  assert.equal(external, null, 'the HTML report must open offline');

  // Second run: the cached model is reused, so the figures are identical.
  const second = await bulwark(['audit', '--out', out, '--json'], env);
  assert.equal(second.code, 0, second.stderr);
  const again = JSON.parse(second.stdout);
  assert.equal(again.sections[0].findings[0].value, acc.value);
  assert.ok(existsSync(path.join(cache, 'digits-mlp-seed42', 'model.json')));
});

test('bulwark audit --fail-on gates on failed findings', async () => {
  // A 1-epoch logistic model of digits still passes 90%, so gate on a model that cannot:
  // train on 1 epoch with a tiny learning rate.
  const dir = tempDir('weak');
  const m = path.join(dir, 'weak');
  const t = await bulwark(['train', '--model', 'logistic', '--epochs', '1', '--learning-rate', '0.00001', '--out', m]);
  assert.equal(t.code, 0, t.stderr);
  const r = await bulwark(['audit', '--model', m, '--out', path.join(dir, 'rep'), '--fail-on', 'medium', '--json'], env);
  assert.equal(r.code, 1, 'a failed medium finding exits 1');
  const out = JSON.parse(r.stdout);
  assert.ok(out.failed >= 1);
  const accuracy = out.sections[0].findings.find((f: { metric: string }) => f.metric === 'test accuracy');
  assert.equal(accuracy.passed, false, 'the weak model fails the accuracy finding');
});
