import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initTfjs } from '../../src/engines/index.js';
import { runAudit } from '../../src/audit/index.js';
import { tempDir, withoutTimings } from './helpers.js';

test('the quick audit of the built-in example: every section accounted for, the same report twice', async () => {
  process.env.BULWARK_CACHE_DIR = tempDir('audit-cache');
  await initTfjs();
  const root = tempDir('audit-det');
  // The first run trains the built-in model into the cache (not timed); the second reuses it.
  const first = await runAudit({ quick: true, out: path.join(root, 'a'), ledger: null });
  const before = tf.memory().numTensors;
  // Its time is a benchmark figure (npm run bench -- audit), not a test: this machine's load varies.
  const second = await runAudit({ quick: true, out: path.join(root, 'b'), ledger: null });
  assert.equal(tf.memory().numTensors, before, 'no tensor left behind');

  const a = readFileSync(path.join(root, 'a', 'report.json'), 'utf8');
  const b = readFileSync(path.join(root, 'b', 'report.json'), 'utf8');
  assert.notEqual(a, b, 'the time stamps differ');
  assert.equal(JSON.stringify(withoutTimings(JSON.parse(a))), JSON.stringify(withoutTimings(JSON.parse(b))), 'same seed, same report apart from createdAt and seconds');
  assert.deepEqual(withoutTimings(first.report), withoutTimings(second.report));

  const report = second.report;
  assert.equal(report.run!.quick, true);
  assert.equal(report.run!.access, 'white-box');
  // Every registered section and every threat asked for is in the report: run, or skipped with a reason.
  assert.deepEqual(
    report.sections.map((s) => [s.id, s.status]),
    [
      ['model', 'ran'],
      ['provenance', 'ran'],
      ['evasion', 'ran'],
      ['evasion-api', 'skipped'],
      ['poisoning', 'ran'],
      ['privacy', 'ran'],
      ['extraction', 'ran'],
      ['serving', 'ran'],
    ],
  );
  for (const s of report.sections) {
    assert.ok(s.about && s.about.tested && s.about.how, `${s.id} says what it tested and how`);
    if (s.status !== 'ran') assert.ok(s.reason && s.reason.length > 20, `${s.id} says why it did not run`);
    for (const f of s.findings) {
      assert.ok(f.id, `'${f.title}' has an id`);
      if (f.passed === false) assert.ok(f.remedies?.length && f.remedies.every((r) => r.command.startsWith('bulwark ')), `${f.id} names a Bulwark command to fix it`);
    }
  }
  const pgd = report.sections[2].findings.find((f) => f.id === 'evasion.pgd-robust-accuracy')!;
  assert.equal(pgd.severity, (pgd.value as number) < 0.1 ? 'high' : (pgd.value as number) < 0.3 ? 'medium' : (pgd.value as number) < 0.5 ? 'low' : 'info');
  assert.equal(report.summary!.threats.find((t) => t.id === 'evasion')!.severity, pgd.severity);
  assert.deepEqual(second.files.map((f) => path.basename(f)), ['report.json', 'report.html', 'report.sarif', 'report.junit.xml']);
  const junit = readFileSync(path.join(root, 'b', 'report.junit.xml'), 'utf8');
  const checks = report.sections.filter((s) => s.status === 'ran').reduce((n, s) => n + s.findings.length, 0);
  const skipped = report.sections.filter((s) => s.status !== 'ran').length;
  assert.equal((junit.match(/<testcase /g) ?? []).length, checks + skipped, 'one test case per check, one per section not run');
  assert.equal((junit.match(/<failure /g) ?? []).length, report.sections.flatMap((s) => s.findings).filter((f) => f.passed === false).length);
});
