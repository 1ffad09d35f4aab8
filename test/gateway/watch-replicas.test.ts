import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startGateway, RESPONSE_KIND } from '../../src/gateway/index.js';
import { entryPayload, iterateEntries, openSqliteLedger, verifyLedger } from '../../src/provenance/index.js';
import { call, firstRows, inferBody, removeDir, tempDir, trainDigitsModel } from './helpers.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dir = tempDir('gw-watch-replicas');
const modelDir = path.join(dir, 'digits');
const { test: testSet } = await trainDigitsModel(modelDir);
const policyFile = path.join(dir, 'policy.yaml');
writeFileSync(
  policyFile,
  `tiers:
  default: { output: { kind: full } }
monitoring:
  # More than 30 rows in a minute: suspended everywhere.
  extraction: { detector: volume, rows: 30, perSeconds: 60, respond: [alert, suspend] }
`,
);
const store = path.join(dir, 'gateway.db');
const ledgerFile = path.join(dir, 'audit.db');
const opts = { models: [modelDir], allowUnsigned: true, name: 'digits', policyFile, port: 0, store, ledger: ledgerFile };
// Two replicas on one SQLite store and one audit log, each with its own detector memory.
const a = await startGateway(opts);
const b = await startGateway(opts);
after(async () => {
  await a.close();
  await b.close();
  removeDir(dir);
});

/** The command line from the sources, as `bulwark ARGS` runs it. */
function bulwark(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const code = `const { main } = await import(${JSON.stringify(path.join(root, 'src/cli/main.ts'))}); process.exitCode = await main(process.argv);`;
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code, 'bulwark', ...args], { cwd: root }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

const x10 = firstRows(testSet.x, 10);
const infer = (url: string) => `${url}/v2/models/digits/infer`;

test('a key suspended through one replica gets 403 from the other at its next request', async () => {
  const { key, record } = await a.store.createKey({ name: 'greedy', scopes: ['infer'], tier: 'default' });
  const admin = (await a.store.createKey({ name: 'ops', scopes: ['admin'], tier: 'default' })).key;
  for (let i = 0; i < 4; i++) assert.equal((await call(infer(a.url), { key, body: inferBody(x10) })).status, 200, `request ${i + 1} (${(i + 1) * 10} rows) is answered`);
  // The 4th request took the key over 30 rows. Its rows are checked just after its answer leaves, so a
  // request to the same replica waits for that; another replica sees the suspension once it is stored
  // (milliseconds later) — here the test waits for it rather than race it.
  await a.app.watch.idle();
  const refused = await call(infer(b.url), { key, body: inferBody(x10) });
  assert.equal(refused.status, 403);
  assert.match(String(refused.body.error), new RegExp(`key ${record.id} is suspended by the gateway's monitoring since .* \\(extraction/volume: key ${record.id} sent 40 rows within 60 s, over the 30 allowed before an alert\\); an administrator can lift it with 'bulwark keys restore ${record.id}'`));
  assert.equal((await call(infer(a.url), { key, body: inferBody(x10) })).status, 403);
  assert.equal((await call(`${a.url}/v2/models/digits`, { key })).status, 403, 'metadata too');
  // Both replicas list the one alert (the store holds it).
  const listed = await call(`${b.url}/admin/alerts`, { key: admin });
  assert.deepEqual((listed.body.alerts as { key: string; responses: string[] }[]).map((x) => [x.key, x.responses]), [[record.id, ['alert', 'suspend']]]);

  // `bulwark keys restore` lifts it on every replica, and is logged.
  const restored = await bulwark(['keys', 'restore', record.id, '--store', store, '--ledger', ledgerFile, '--json']);
  assert.equal(restored.code, 0, restored.stderr);
  assert.deepEqual(JSON.parse(restored.stdout).previous.suspended, true);
  const unknown = await bulwark(['keys', 'restore', 'ffffffffffffffff', '--store', store]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /no API key with id 'ffffffffffffffff'/);
  assert.equal((await call(infer(b.url), { key, body: inferBody(x10) })).status, 200);
  // Replica a still remembers 40 rows in this window; it starts the key afresh instead of suspending it again at once.
  assert.equal((await call(infer(a.url), { key, body: inferBody(x10) })).status, 200);
  await a.app.watch.idle();
  assert.equal((await call(infer(a.url), { key, body: inferBody(x10) })).status, 200);
  const list = await bulwark(['keys', 'list', '--store', store]);
  assert.match(list.stdout, new RegExp(`${record.id}\\s+active`));
});

test('the suspension and the restore are in the shared audit log, and its chain verifies', async () => {
  await a.app.watch.idle();
  await b.app.watch.idle();
  const ledger = await openSqliteLedger(ledgerFile, { readonly: true });
  try {
    const v = await verifyLedger(ledger);
    assert.equal(v.valid, true, JSON.stringify(v.firstBad));
    const actions: string[] = [];
    let alerts = 0;
    for await (const e of iterateEntries(ledger)) {
      if (e.kind === 'gateway.alert') alerts++;
      if (e.kind === RESPONSE_KIND) actions.push(String((entryPayload(e) as Record<string, unknown>).action));
    }
    assert.equal(alerts, 1);
    assert.deepEqual(actions, ['suspend', 'restore']);
  } finally {
    await ledger.close();
  }
});

test('a throttled key gets the lower rate limit from its next request', async () => {
  const file = path.join(dir, 'throttle.yaml');
  writeFileSync(
    file,
    `tiers:
  default: { output: { kind: full }, rateLimit: { requests: 100, perSeconds: 1 } }
monitoring:
  extraction: { detector: volume, rows: 5, perSeconds: 60, respond: [throttle] }
  throttle: { requests: 1, perSeconds: 60 }
`,
  );
  const c = await startGateway({ ...opts, policyFile: file, store: ':memory:', ledger: path.join(dir, 'throttle-audit.db') });
  try {
    const { key, record } = await c.store.createKey({ name: 'fast', scopes: ['infer'], tier: 'default' });
    assert.equal((await call(infer(c.url), { key, body: inferBody(x10) })).status, 200);
    const first = await call(infer(c.url), { key, body: inferBody(x10) });
    assert.equal(first.status, 200, 'the throttle admits one request a minute');
    assert.equal(first.headers.get('ratelimit-policy'), '1;w=60');
    const second = await call(infer(c.url), { key, body: inferBody(x10) });
    assert.equal(second.status, 429);
    assert.match(String(second.body.error), new RegExp(`key ${record.id} is throttled by the gateway's monitoring to 1 requests per 60 s \\(extraction/volume\\)`));
    assert.deepEqual((await c.store.getKey(record.id))?.restriction?.throttle, { requests: 1, perSeconds: 60 });
  } finally {
    await c.close();
  }
});

test('a misinformed key keeps getting answers, quietly wrong from its next request, and the log says so', async () => {
  const file = path.join(dir, 'misinform.yaml');
  writeFileSync(file, 'tiers:\n  default: { output: { kind: full } }\nmonitoring:\n  extraction: { detector: volume, rows: 5, perSeconds: 60, respond: [alert, misinform] }\n');
  const auditFile = path.join(dir, 'misinform-audit.db');
  const c = await startGateway({ ...opts, policyFile: file, store: ':memory:', ledger: auditFile });
  try {
    const { key, record } = await c.store.createKey({ name: 'thief', scopes: ['infer'], tier: 'default' });
    const top2 = (d: number[], i: number) => {
      const row = d.slice(i * 10, i * 10 + 10);
      const order = row.map((v, j) => [v, j]).sort((u, v) => v[0] - u[0]);
      return [order[0][1], order[1][1], order[0][0], order[1][0]];
    };
    const rows = (a: { body: Record<string, unknown> }) => (a.body.outputs as { data: number[] }[])[0].data;
    const honest = await call(infer(c.url), { key, body: inferBody(x10) });
    assert.equal(honest.status, 200);
    const lied = await call(infer(c.url), { key, body: inferBody(x10) });
    assert.equal(lied.status, 200, 'misinformation is not a refusal');
    assert.equal((lied.body.parameters as Record<string, unknown>).output_policy, 'full', 'and the answer does not say so');
    for (let i = 0; i < 10; i++) {
      const [first, second, p1, p2] = top2(rows(honest), i);
      const [lFirst, lSecond, q1, q2] = top2(rows(lied), i);
      assert.deepEqual([lFirst, lSecond], [second, first], `row ${i}: the top two classes trade places`);
      assert.ok(Math.abs(q1 - p1) < 1e-6 && Math.abs(q2 - p2) < 1e-6, `row ${i}: the confidences stay`);
    }
    assert.equal((await c.store.getKey(record.id))?.restriction?.misinform, true);
  } finally {
    await c.close();
  }
  const ledger = await openSqliteLedger(auditFile, { readonly: true });
  const mine = [];
  for await (const e of iterateEntries(ledger)) mine.push({ kind: e.kind, ...entryPayload(e) });
  await ledger.close();
  assert.ok(mine.some((p) => p.kind === RESPONSE_KIND && p.action === 'misinform' && p.applied === true), 'the response is in the log');
  assert.deepEqual(mine.filter((p) => p.status === 200).map((p) => p.misinformed === true), [false, true], 'each answer says whether it was misinformation');
});

test('serve refuses to start, with a usage error, when monitoring lacks its reference data or webhook secret', async () => {
  const other = path.join(dir, 'no-card-dataset');
  cpSync(modelDir, other, { recursive: true });
  const card = JSON.parse(readFileSync(path.join(other, 'bulwark.json'), 'utf8')) as Record<string, unknown>;
  delete card.dataset;
  writeFileSync(path.join(other, 'bulwark.json'), JSON.stringify(card));
  const file = path.join(dir, 'drift.yaml');
  writeFileSync(file, 'tiers: { default: {} }\nmonitoring:\n  drift: { window: 100 }\n');
  const r = await bulwark(['serve', '--model', other, '--allow-unsigned', '--policy', file, '--store', path.join(dir, 'x.db'), '--port', '0']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /monitoring\.drift compare traffic with the model's training data, but none was found for .*no-card-dataset \(it has no bulwark\.json naming its dataset\); give it with --reference FILE/);
  const hookFile = path.join(dir, 'hook.yaml');
  writeFileSync(hookFile, 'tiers: { default: {} }\nmonitoring:\n  extraction: { detector: volume, respond: [webhook] }\n  webhook: { url: "http://127.0.0.1:9/x", secretEnv: BULWARK_TEST_UNSET_SECRET }\n');
  await assert.rejects(
    startGateway({ ...opts, policyFile: hookFile, store: ':memory:', ledger: path.join(dir, 'hook-audit.db') }),
    /signs its posts with the secret in \$BULWARK_TEST_UNSET_SECRET, which is not set/,
  );
});
