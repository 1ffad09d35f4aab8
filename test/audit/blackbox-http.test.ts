import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadDigitsSplit } from '../../src/data/index.js';
import { initTfjs, saveOnnx } from '../../src/engines/index.js';
import { createZooModel } from '../../src/zoo/index.js';
import { startGateway, AUDIT_KIND } from '../../src/gateway/index.js';
import { entryPayload, iterateEntries, openSqliteLedger } from '../../src/provenance/index.js';
import { runAudit } from '../../src/audit/index.js';
import { tempDir } from './helpers.js';

// The digits MLP, exported to ONNX and served by the gateway with a key and a daily budget
// of exactly the audit's --budget: an audit that overran it would be refused (429) mid-run.
const BUDGET = 3000;
const dir = tempDir('audit-http');
await initTfjs();
const { train } = await loadDigitsSplit();
const mlp = createZooModel('mlp', { inputShape: [28, 28, 1], numClasses: 10, classNames: train.classNames, seed: 3 });
await mlp.fit(train, { epochs: 3, seed: 3 });
const onnxFile = path.join(dir, 'digits.onnx');
await saveOnnx(mlp.net, onnxFile);
mlp.dispose();
const policyFile = path.join(dir, 'policy.json');
writeFileSync(
  policyFile,
  JSON.stringify({ tiers: { default: { output: { kind: 'full' }, rateLimit: { requests: 10000, perSeconds: 1 }, budget: { samplesPerDay: BUDGET } } }, validation: { maxBatch: 256 } }),
);
const ledgerFile = path.join(dir, 'gateway-audit.db');
const gw = await startGateway({ models: [onnxFile], allowUnsigned: true, name: 'digits', policyFile, port: 0, store: path.join(dir, 'gw.db'), ledger: ledgerFile });
let closed = false;
after(async () => {
  if (!closed) await gw.close();
  rmSync(dir, { recursive: true, force: true });
});

test('auditing an ONNX model behind `bulwark serve` over HTTP: black-box evasion findings within the query budget', async () => {
  const { key } = await gw.store.createKey({ name: 'auditor', scopes: ['infer'], tier: 'default' });
  const out = path.join(dir, 'report');
  const url = `${gw.url}/v2/models/digits`;
  const { report, files } = await runAudit({ model: url, key, data: 'digits', budget: BUDGET, out, ledger: null, seed: 42 });

  assert.equal(report.run!.access, 'predict-only');
  const by = new Map(report.sections.map((s) => [s.id, s]));
  assert.equal(by.get('model')!.status, 'ran');
  assert.equal(by.get('evasion')!.status, 'skipped');
  assert.match(by.get('evasion')!.reason!, /white-box attacks need gradients/);
  const api = by.get('evasion-api')!;
  assert.equal(api.status, 'ran', api.reason);
  const ids = api.findings.map((f) => f.id);
  assert.deepEqual(ids, ['evasion.score-robust-accuracy', 'evasion.label-robust-accuracy']);
  const square = api.findings[0];
  assert.ok(typeof square.value === 'number' && square.value < 0.9, `an undefended MLP loses accuracy to Square: ${square.value}`);
  assert.ok(square.passed !== undefined && square.severity !== undefined);
  for (const id of ['privacy', 'poisoning']) assert.match(by.get(id)!.reason!, /--train-data/);
  const extraction = by.get('extraction')!;
  assert.equal(extraction.status, 'ran', extraction.reason);
  const fidelity = extraction.findings.find((f) => f.id === 'extraction.fidelity')!;
  assert.ok(typeof fidelity.value === 'number' && fidelity.value > 0.5, `a copy from a few hundred answers agrees more often than not: ${fidelity.value}`);
  assert.equal(fidelity.chart?.kind, 'line');

  // Client side: the plan's allowances and what each section used.
  const allowed = report.sections.reduce((s, x) => s + (x.queries?.allowed ?? 0), 0);
  const used = report.sections.reduce((s, x) => s + (x.queries?.used ?? 0), 0);
  assert.ok(allowed <= BUDGET - 1, `allowances ${allowed} + the probe fit in ${BUDGET}`);
  for (const s of report.sections) if (s.queries) assert.ok(s.queries.used <= (s.queries.allowed ?? Infinity), `${s.id} used ${s.queries.used} of ${s.queries.allowed}`);
  assert.equal(report.run!.queriesUsed, used + 1, 'the probe query and the sections');
  assert.ok(report.run!.queriesUsed > BUDGET * 0.8, `the budget is put to use: ${report.run!.queriesUsed}`);

  // Server side: the gateway's own audit log counts the samples it answered.
  await gw.close();
  closed = true;
  const ledger = await openSqliteLedger(ledgerFile, { readonly: true });
  let served = 0;
  const statuses = new Set<number>();
  for await (const e of iterateEntries(ledger)) {
    if (e.kind !== AUDIT_KIND) continue;
    const p = entryPayload(e) as { samples: number | null; status: number; url: string };
    if (!p.url.endsWith('/infer')) continue;
    statuses.add(p.status);
    served += p.samples ?? 0;
  }
  await ledger.close();
  assert.deepEqual([...statuses], [200], 'no request was refused');
  assert.equal(served, report.run!.queriesUsed, 'the server counted what the report says');
  assert.ok(served <= BUDGET);

  assert.deepEqual(files.map((f) => path.basename(f)), ['report.json', 'report.html', 'report.sarif', 'report.junit.xml']);
  const sarif = JSON.parse(readFileSync(path.join(out, 'report.sarif'), 'utf8'));
  assert.equal(sarif.runs[0].results[0].locations[0].physicalLocation.artifactLocation.uri, path.relative(process.cwd(), path.join(out, 'report.json')));
  assert.ok(existsSync(path.join(out, 'report.junit.xml')));
});
