import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { bulwarkSrc as bulwark, tempDir } from '../audit/helpers.js';

const cache = tempDir('cache');
const env = { BULWARK_CACHE_DIR: cache };

test('bulwark audit with no target trains the digits MLP, writes every report file, then reuses the model', async () => {
  const out = path.join(tempDir('audit'), 'report');
  const first = await bulwark(['audit', '--out', out], env);
  assert.equal(first.code, 0, first.stderr);
  assert.doesNotMatch(first.stderr, /tensors were not released/);
  // Progress: each section announced with the time left (on stderr, also without a terminal).
  assert.match(first.stderr, /\[1\/7\] Model card: about (\d+ min )?\d+ s left/);
  assert.match(first.stderr, /\[7\/7\] Serving.*: about (\d+ min )?\d+ s left/);
  // The terminal summary names the findings, what did not run and where the report went.
  assert.match(first.stdout, /Test accuracy/);
  assert.match(first.stdout, /not run: Evasion through the API .*: the model gives gradients/);
  assert.match(first.stdout, /verdict: (pass|warn|fail)/);
  assert.match(first.stdout, /report written to .*report\.json, .*report\.html, .*report\.sarif and .*report\.junit\.xml/);

  const report = JSON.parse(readFileSync(path.join(out, 'report.json'), 'utf8'));
  assert.equal(report.tool, 'bulwark');
  assert.deepEqual(report.sections.map((s: { id: string }) => s.id).slice(0, 2), ['model', 'provenance']);
  const model = report.sections[0].findings;
  const acc = model.find((f: { id: string }) => f.id === 'model.test-accuracy');
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
  // The built-in model, then (during the evasion section) its adversarially trained twin.
  assert.deepEqual(kinds, ['model.trained', 'audit.started', 'audit.fingerprints', 'model.trained', 'audit.completed']);

  const html = readFileSync(path.join(out, 'report.html'), 'utf8');
  assert.match(html, /<svg/);
  const external = html.match(/(?:src|href)\s*=\s*["']?https?:/gi);
  assert.equal(external, null, 'the HTML report must open offline');
  const sarif = JSON.parse(readFileSync(path.join(out, 'report.sarif'), 'utf8'));
  assert.equal(sarif.version, '2.1.0');
  const failed = report.sections.flatMap((s: { findings: { passed?: boolean }[] }) => s.findings).filter((f: { passed?: boolean }) => f.passed === false);
  assert.equal(sarif.runs[0].results.length, failed.length, 'one SARIF result per failed finding');

  // Second run, quick and provenance only: the cached model is reused, so the model card's figures are identical.
  const second = await bulwark(['audit', '--out', out, '--json', '--quick', '--threats', 'provenance'], env);
  assert.equal(second.code, 0, second.stderr);
  const again = JSON.parse(second.stdout);
  assert.equal(again.sections[0].findings[0].value, acc.value);
  assert.equal(again.run.quick, true);
  assert.ok(existsSync(path.join(cache, 'digits-mlp-seed42', 'model.json')));
});
