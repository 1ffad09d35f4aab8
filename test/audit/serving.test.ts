import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import { loadDigitsSplit } from '../../src/data/index.js';
import { initTfjs, serveOip } from '../../src/engines/index.js';
import { createZooModel } from '../../src/zoo/index.js';
import { runAudit } from '../../src/audit/index.js';
import { tempDir } from './helpers.js';

const cache = tempDir('audit-serving-cache');
process.env.BULWARK_CACHE_DIR = cache;
await initTfjs();
after(() => rmSync(cache, { recursive: true, force: true }));

const leftovers = () => new Set(readdirSync(os.tmpdir()).filter((f) => f.startsWith('bulwark-audit-serving-')));

test('the serving section on the built-in digits model (--quick): two fidelity curves, a lower one behind the gateway, and the detection result', async () => {
  // Trains the built-in model into this test's cache first, so the run below measures the section alone.
  await runAudit({ threats: ['provenance'], quick: true, ledger: null });
  const before = leftovers();
  const tensors = tf.memory().numTensors;
  const t0 = performance.now();
  const { report } = await runAudit({ threats: ['extraction'], quick: true, ledger: null, seed: 42 });
  const seconds = (performance.now() - t0) / 1000;
  const section = report.sections.find((s) => s.id === 'serving');
  assert.ok(section, `no serving section: ${report.sections.map((s) => s.id).join(', ')}`);
  assert.equal(section.status, 'ran', section.reason);
  assert.equal(section.threat, 'extraction');
  assert.ok(section.seconds < 30, `the quick serving section took ${section.seconds.toFixed(1)} s (whole run ${seconds.toFixed(1)} s)`);

  const fidelity = section.findings.find((f) => f.id === 'serving.defended-fidelity');
  assert.ok(fidelity?.chart, 'the fidelity finding carries the chart');
  assert.equal(fidelity.chart.kind, 'line');
  const series = fidelity.chart.series;
  assert.equal(series.length, 2, series.map((s) => s.name).join(' | '));
  assert.match(series[0].name, /undefended/);
  assert.match(series[1].name, /labels only/);
  const last = (i: number) => series[i].points[series[i].points.length - 1];
  const [openQueries, openFidelity] = last(0);
  const [defendedQueries, defendedFidelity] = last(1);
  assert.equal(openQueries, 1000, 'the undefended gateway answers the whole --quick budget');
  // The tested tier's daily budget (500 rows) stops the copier there.
  assert.equal(defendedQueries, 500);
  assert.ok(defendedFidelity < openFidelity, `behind the gateway the copy agrees less: ${defendedFidelity} vs ${openFidelity}`);
  assert.equal(fidelity.value, defendedFidelity);
  assert.ok(fidelity.evidence.some((e) => /fidelity drop: \d+\.\d points/.test(e)), fidelity.evidence.join('\n'));
  assert.ok(fidelity.evidence.some((e) => /HTTP 429: the daily budget/.test(e)));
  // Graded by the severity table, never above what the value says.
  assert.equal(fidelity.threshold, 0.7);
  assert.equal(fidelity.passed, defendedFidelity <= 0.7);

  const detected = section.findings.find((f) => f.id === 'serving.extraction-detected');
  assert.ok(detected, 'the detection result is reported');
  assert.equal(typeof detected.passed, 'boolean');
  if (detected.passed) {
    assert.match(String(detected.value), /^after \d+ queries$/);
    assert.match(detected.title, /flagged the Jacobian extraction client after \d+ queries; the key was suspended/);
    assert.ok(detected.evidence.some((e) => /HTTP 403: the key was suspended/.test(e)), detected.evidence.join('\n'));
  } else {
    assert.equal(detected.value, 'no');
    assert.equal(detected.severity, 'medium');
    assert.ok(detected.remedies?.length);
  }
  // No key id (new on every run) in the report: the same seed gives the same findings.
  assert.ok(!JSON.stringify(section.findings).match(/\bkey [0-9a-f]{16}\b/));

  assert.equal(tf.memory().numTensors, tensors, 'no tensor left behind');
  const after = leftovers();
  assert.deepEqual([...after].filter((f) => !before.has(f)), [], 'the temporary audit log is removed');
});

test('a URL target is skipped, saying why and what to run instead', async () => {
  const { train } = await loadDigitsSplit();
  // Untrained: the audit only has to reach it.
  const model = createZooModel('logistic', { inputShape: [28, 28, 1], numClasses: 10, classNames: train.classNames, seed: 1 });
  const server = await serveOip(model, { name: 'digits' });
  try {
    // A budget too small for the extraction section keeps the run short.
    const { report } = await runAudit({ model: server.url, threats: ['extraction'], budget: 600, quick: true, ledger: null });
    const section = report.sections.find((s) => s.id === 'serving');
    assert.equal(section?.status, 'skipped');
    assert.match(section.reason!, /cannot put its own gateway in front of someone else's server/);
    assert.match(section.reason!, /bulwark serve --model MODEL --policy policy\.yaml/);
    assert.deepEqual(section.findings, []);
  } finally {
    await server.close();
    model.dispose();
  }
});
