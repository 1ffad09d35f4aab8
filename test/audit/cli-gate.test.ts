import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { bulwarkSrc as bulwark, tempDir } from './helpers.js';

const env = { BULWARK_CACHE_DIR: tempDir('cache') };

test('bulwark audit --fail-on gates on failed findings; the config moves the thresholds', async () => {
  // A logistic model trained for 1 epoch at a tiny learning rate cannot reach 90%.
  const dir = tempDir('weak');
  const m = path.join(dir, 'weak');
  const t = await bulwark(['train', '--model', 'logistic', '--epochs', '1', '--learning-rate', '0.00001', '--out', m]);
  assert.equal(t.code, 0, t.stderr);
  const rep = path.join(dir, 'rep');
  const r = await bulwark(['audit', '--model', m, '--threats', 'provenance', '--out', rep, '--fail-on', 'medium', '--json', '--no-ledger'], env);
  assert.equal(r.code, 1, 'a failed medium finding exits 1');
  assert.match(r.stderr, /finding\(s\) at or above 'medium' failed/);
  const out = JSON.parse(r.stdout);
  assert.ok(out.failed >= 1);
  assert.equal(out.summary.verdict, 'fail');
  assert.equal(out.summary.failOn, 'medium');
  const accuracy = out.sections[0].findings.find((f: { id: string }) => f.id === 'model.test-accuracy');
  assert.equal(accuracy.passed, false, 'the weak model fails the accuracy finding');
  assert.ok(['medium', 'high'].includes(accuracy.severity));
  assert.match(accuracy.remedies[0].command, /^bulwark train /);
  // What was not asked for is listed, not dropped.
  const skipped = out.sections.filter((s: { status: string }) => s.status === 'skipped').map((s: { id: string }) => s.id);
  assert.deepEqual(skipped, ['evasion', 'evasion-api', 'poisoning', 'privacy', 'extraction', 'serving']);
  const sarif = JSON.parse(readFileSync(path.join(rep, 'report.sarif'), 'utf8'));
  assert.ok(sarif.runs[0].results.some((x: { ruleId: string; level: string }) => x.ruleId === 'model.test-accuracy' && ['warning', 'error'].includes(x.level)));
  const junit = readFileSync(path.join(rep, 'report.junit.xml'), 'utf8');
  assert.match(junit, /<testcase classname="bulwark\.model" name="model\.test-accuracy: Test accuracy" time="0">\n\s+<failure /);

  // The same run, with the accuracy rule relaxed in the config (failOn from the config too).
  const cfg = path.join(dir, 'bulwark.config.json');
  writeFileSync(cfg, JSON.stringify({ failOn: 'medium', threats: ['provenance'], rules: { 'model.test-accuracy': { thresholds: { medium: 0.01 } } } }));
  const relaxed = await bulwark(['audit', '--model', m, '--config', cfg, '--out', rep, '--json', '--no-ledger'], env);
  assert.equal(relaxed.code, 0, relaxed.stderr);
  const again = JSON.parse(relaxed.stdout);
  assert.equal(again.sections[0].findings[0].passed, true);
  assert.equal(again.run.config, cfg);
});

test('bulwark audit --help documents the flags and the severity rules', async () => {
  const r = await bulwark(['audit', '--help']);
  assert.equal(r.code, 0);
  for (const flag of ['--model', '--data', '--train-data', '--label', '--threats', '--budget', '--quick', '--config', '--out', '--fail-on', '--key']) assert.match(r.stdout, new RegExp(`${flag} `));
  assert.match(r.stdout, /evasion\.pgd-robust-accuracy\s+low < 0\.5, medium < 0\.3, high < 0\.1/);
  assert.match(r.stdout, /privacy\.membership-tpr-low-fpr\s+medium > 0\.02, high > 0\.05/);
  assert.match(r.stdout, /Exit codes: 0 .*\n.*\n2 bad input/);
});
