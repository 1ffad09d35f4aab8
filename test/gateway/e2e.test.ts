import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { argmaxRows } from '../../src/core/index.js';
import { connectHttpModel } from '../../src/engines/index.js';
import { SqliteGatewayStore, startGateway, AUDIT_KIND } from '../../src/gateway/index.js';
import { withOutputPolicy } from '../../src/outputs/index.js';
import { entryPayload, iterateEntries, openSqliteLedger, signPath, verifyLedger, writeKeyPair, writeSignature, loadPrivateKey } from '../../src/provenance/index.js';
import { bulwark } from '../cli/helpers.js';
import { call, firstRows, inferBody, removeDir, tempDir, trainDigitsModel } from './helpers.js';

const dir = tempDir('gw-e2e');
const modelDir = path.join(dir, 'digits');
const { model, test: testSet } = await trainDigitsModel(modelDir);
const keyFiles = await writeKeyPair('ed25519', path.join(dir, 'release'));
const sigFile = path.join(dir, 'digits.sig');
await writeSignature(await signPath(modelDir, await loadPrivateKey(keyFiles.privateFile)), sigFile);

const policyFile = path.join(dir, 'policy.yaml');
writeFileSync(
  policyFile,
  `# tiers for the e2e test
tiers:
  basic:
    output: { kind: round, decimals: 1 }
    rateLimit: { requests: 1000, perSeconds: 1 }
  labels:
    output: { kind: label }
  tiny:
    output: [{ kind: top-k, k: 2 }]
    budget: { samplesPerDay: 5 }
  ops:
    output: { kind: full }
validation:
  maxBatch: 64
  maxBodyBytes: 2000000
`,
);
const storeFile = path.join(dir, 'gateway.db');
const ledgerFile = path.join(dir, 'audit.db');
const gw = await startGateway({ models: [modelDir, modelDir], sigs: [sigFile, sigFile], pub: keyFiles.publicFile, name: 'digits', live: '1', policyFile, port: 0, store: storeFile, ledger: ledgerFile });
after(async () => {
  await gw.close();
  removeDir(dir);
});

const base = gw.url;
const infer = `${base}/v2/models/digits/infer`;
const mk = async (scopes: ('infer' | 'admin' | 'metrics')[], tier: string) => (await gw.store.createKey({ name: `${tier}-${scopes.join('+')}`, scopes, tier })).key;
const basicKey = await mk(['infer'], 'basic');
const labelKey = await mk(['infer'], 'labels');
const tinyKey = await mk(['infer'], 'tiny');
const metricsKey = await mk(['metrics'], 'ops');
const adminKey = await mk(['admin', 'infer'], 'ops');
const x3 = firstRows(testSet.x, 3);
/** Every 2xx inference answer, to find in the log at the end. */
const answered: string[] = [];
async function ok(key: string, body: string) {
  const a = await call(infer, { key, body });
  assert.equal(a.status, 200, a.text);
  answered.push(a.text);
  return a;
}
const data = (a: { body: Record<string, unknown> }) => ((a.body.outputs as { data: number[] }[])[0]).data;

test('only the health routes answer without a key', async () => {
  assert.equal((await call(`${base}/v2/health/live`)).status, 200);
  assert.deepEqual((await call(`${base}/v2/health/ready`)).body, { ready: true });
  for (const url of [`${base}/v2/models/digits`, `${base}/v2/models/digits/ready`, `${base}/metrics`, `${base}/admin/models`, `${base}/nowhere`]) {
    const a = await call(url);
    assert.equal(a.status, 401, url);
    assert.match(String(a.body.error), /needs an API key/);
  }
  const a = await call(infer, { body: inferBody(x3) });
  assert.equal(a.status, 401);
  assert.equal(a.headers.get('www-authenticate'), 'Bearer realm="bulwark"');
  assert.equal((await call(infer, { key: 'bwk_0000000000000000_' + 'A'.repeat(43), body: inferBody(x3) })).status, 401);
  assert.equal((await call(infer, { key: basicKey.slice(0, -1) + (basicKey.endsWith('A') ? 'B' : 'A'), body: inferBody(x3) })).status, 401);
});

test('a key without the route\'s scope gets 403', async () => {
  const a = await call(infer, { key: metricsKey, body: inferBody(x3) });
  assert.equal(a.status, 403);
  assert.match(String(a.body.error), /lacks the 'infer' scope/);
  assert.equal((await call(`${base}/metrics`, { key: basicKey })).status, 403);
  assert.equal((await call(`${base}/admin/models`, { key: basicKey })).status, 403);
});

test('a good key gets the answer its tier\'s output policy allows', async () => {
  const want = argmaxRows(await model.predict(x3));
  const rounded = data(await ok(basicKey, inferBody(x3)));
  assert.equal(rounded.length, 30);
  for (let i = 0; i < 3; i++) {
    const row = rounded.slice(i * 10, i * 10 + 10);
    for (const v of row) assert.ok(Math.abs(v * 10 - Math.round(v * 10)) < 1e-6, `${v} is not a multiple of 0.1`);
    assert.ok(Math.abs(row.reduce((s, v) => s + v, 0) - 1) < 1e-6);
  }
  const labels = data(await ok(labelKey, inferBody(x3)));
  for (let i = 0; i < 3; i++) {
    const row = labels.slice(i * 10, i * 10 + 10);
    assert.deepEqual(row.filter((v) => v !== 0), [1]);
    assert.equal(row.indexOf(1), want[i]);
  }
  const meta = await call(`${base}/v2/models/digits`, { key: labelKey });
  assert.equal((meta.body.parameters as Record<string, unknown>).output_policy, 'label');
  assert.deepEqual((meta.body.parameters as Record<string, unknown>).input_range, [0, 1]);
});

test('a key the monitoring misinforms gets the runner-up class, is not told, and the log says so', async () => {
  const made = await gw.store.createKey({ name: 'thief', scopes: ['infer'], tier: 'labels' });
  await gw.store.restrictKey(made.record.id, { misinform: true, by: 'extraction/prada', reason: 'test', since: new Date().toISOString() });
  const x = firstRows(testSet.x, 20);
  const p = await model.predict(x);
  const a = await ok(made.key, inferBody(x));
  assert.equal((a.body.parameters as Record<string, unknown>).output_policy, 'label', 'the answer looks like any label-only answer');
  const got = data(a);
  for (let i = 0; i < 20; i++) {
    const row = Array.from(p.data.subarray(i * 10, i * 10 + 10));
    const order = row.map((v, j) => [v, j]).sort((u, v) => v[0] - u[0]).map(([, j]) => j);
    assert.equal(got.slice(i * 10, i * 10 + 10).indexOf(1), order[1], `row ${i}: the runner-up class, not ${order[0]}`);
  }
  // The same input gets the same wrong answer: nothing to average away.
  assert.deepEqual(data(await ok(made.key, inferBody(x))), got);
  const ledger = await openSqliteLedger(ledgerFile, { readonly: true });
  const mine = [];
  for await (const e of iterateEntries(ledger)) {
    const q = entryPayload(e);
    if (e.kind === AUDIT_KIND && q.key === made.record.id) mine.push(q);
  }
  await ledger.close();
  assert.equal(mine.length, 2);
  assert.ok(mine.every((q) => q.misinformed === true && q.status === 200), JSON.stringify(mine[0]));
});

test('an attack-side connectHttpModel with a key sees the policy-shaped model', async () => {
  const remote = await connectHttpModel(`${base}/v2/models/digits`, { apiKey: basicKey });
  const x = firstRows(testSet.x, 20);
  const got = await remote.predict(x);
  const local = await withOutputPolicy(model, { kind: 'round', decimals: 1 }).predict(x);
  assert.deepEqual(got.shape, [20, 10]);
  for (let i = 0; i < got.data.length; i++) assert.ok(Math.abs(got.data[i] - local.data[i]) < 1e-6, `value ${i}: ${got.data[i]} vs ${local.data[i]}`);
  assert.equal(remote.queries, 20);
  answered.push('(connectHttpModel)');
});

test('budgets are counted in samples; an exhausted budget answers 429 with Retry-After', async () => {
  await ok(tinyKey, inferBody(firstRows(testSet.x, 3)));
  const refused = await call(infer, { key: tinyKey, body: inferBody(firstRows(testSet.x, 3)) });
  assert.equal(refused.status, 429);
  assert.match(String(refused.body.error), /3 samples asked, 2 of 5 left this day/);
  const wait = Number(refused.headers.get('retry-after'));
  assert.ok(wait >= 1 && wait <= 86_400, `Retry-After ${wait}`);
  // The refused batch did not eat the budget: the 2 samples left can still be spent.
  await ok(tinyKey, inferBody(firstRows(testSet.x, 2)));
  const spent = await call(infer, { key: tinyKey, body: inferBody(firstRows(testSet.x, 1)) });
  assert.equal(spent.status, 429);
  assert.ok(Number(spent.headers.get('retry-after')) >= 1);
});

test('bad input is refused with 4xx naming the input and the rule', async () => {
  const one = firstRows(testSet.x, 1);
  const values = Array.from(one.data);
  const req = (d: unknown, shape: unknown = [1, 28, 28, 1], datatype: unknown = 'FP32') => JSON.stringify({ inputs: [{ name: 'input', datatype, shape, data: d }] });
  const cases: [string, { body?: string; headers?: Record<string, string>; url?: string }, number, RegExp][] = [
    ['bad JSON', { body: '{"inputs": [' }, 400, /rule 'json'/],
    ['wrong shape', { body: req(values, [1, 784]) }, 400, /input 'input': rule 'shape'.*\[n, 28, 28, 1\]/],
    ['too few values', { body: req(values.slice(1)) }, 400, /rule 'shape'.*784 values but data holds 783/],
    ['NaN as a string', { body: req(['NaN', ...values.slice(1)]) }, 400, /rule 'finite'/],
    ['null', { body: req([null, ...values.slice(1)]) }, 400, /rule 'finite'/],
    ['Infinity via 1e999', { body: req(values.map(() => 0)).replace('[0,', '[1e999,') }, 400, /rule 'finite'.*Infinity/],
    ['out of range', { body: req([7, ...values.slice(1)]) }, 400, /rule 'range'.*value 0 .* is 7, outside \[0, 1\]/],
    ['wrong dtype', { body: req(values, undefined, 'INT8') }, 400, /rule 'dtype'/],
    ['a string value type', { body: req([{}, ...values.slice(1)]) }, 400, /rule 'dtype'/],
    ['batch too large', { body: req(new Array(65 * 784).fill(0), [65, 28, 28, 1]) }, 400, /rule 'batch size'.*at most 64/],
    ['empty batch', { body: req([], [0, 28, 28, 1]) }, 400, /rule 'batch size'/],
    ['deep nesting', { body: `{"inputs":[{"name":"input","datatype":"FP32","shape":[1,28,28,1],"data":${'['.repeat(100_000)}${']'.repeat(100_000)}}]}` }, 400, /rule 'shape'.*nested deeper/],
    ['wrong input name', { body: JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 28, 28, 1], data: values }] }) }, 400, /rule 'name'/],
    ['no inputs', { body: '{"id": "1"}' }, 400, /rule 'request'/],
    ['huge body', { body: JSON.stringify({ pad: 'x'.repeat(2_100_000) }) }, 413, /rule 'body size'/],
    ['wrong content type', { body: req(values), headers: { 'content-type': 'text/plain' } }, 415, /rule 'content type'/],
    ['unknown model', { body: req(values), url: `${base}/v2/models/nope/infer` }, 404, /unknown model 'nope'/],
    ['path trick in the name', { body: req(values), url: `${base}/v2/models/..%2F..%2Fetc%2Fpasswd/infer` }, 404, /unknown model '\.\.\/\.\.\/etc\/passwd'/],
    ['path trick in the version', { body: req(values), url: `${base}/v2/models/digits/versions/..%2F1/infer` }, 404, /has no version '\.\.\/1'/],
    ['dot segments', { body: req(values), url: `${base}/v2/models/digits/../../admin/models` }, 404, /no route|unknown model/],
  ];
  for (const [what, c, status, re] of cases) {
    const a = await call(c.url ?? infer, { key: basicKey, body: c.body, headers: c.headers });
    assert.equal(a.status, status, `${what}: ${a.text.slice(0, 300)}`);
    assert.match(String(a.body.error), re, what);
  }
  assert.deepEqual((await call(`${base}/v2/health/live`)).body, { live: true }, 'still alive');
});

test('switching the live version or rolling back drops no request in flight', async () => {
  const body = inferBody(firstRows(testSet.x, 1));
  const inflight = Array.from({ length: 40 }, () => call(infer, { key: adminKey, body }));
  const switched = await call(`${base}/admin/models/digits/live`, { key: adminKey, body: JSON.stringify({ version: '2' }) });
  assert.equal(switched.status, 200, switched.text);
  assert.equal((switched.body.live as { version: string }).version, '2');
  const after1 = Array.from({ length: 10 }, () => call(infer, { key: adminKey, body }));
  const results = await Promise.all([...inflight, ...after1]);
  for (const r of results) {
    assert.equal(r.status, 200, r.text);
    answered.push(r.text);
  }
  assert.ok(results.slice(40).every((r) => r.body.model_version === '2'));
  const back = await call(`${base}/admin/models/digits/rollback`, { key: adminKey, method: 'POST', body: '{}' });
  assert.equal((back.body.live as { version: string }).version, '1');
  assert.equal((await ok(adminKey, body)).body.model_version, '1');
  assert.equal((await call(`${base}/admin/models/digits/rollback`, { key: adminKey, body: '{}' })).status, 409);
  assert.equal((await call(`${base}/admin/models/digits/live`, { key: adminKey, body: '{"version":"9"}' })).status, 404);
});

test('a revoked key stops working at once', async () => {
  const key = await mk(['infer'], 'basic');
  // Twice, so the server holds the key's record in its cache when the revocation lands.
  await ok(key, inferBody(x3));
  await ok(key, inferBody(x3));
  // Revoked by another process on the same file, as an operator would.
  const id = key.split('_')[1];
  const revoked = await bulwark(['keys', 'revoke', id, '--store', storeFile]);
  assert.equal(revoked.code, 0, revoked.stderr);
  const a = await call(infer, { key, body: inferBody(x3) });
  assert.equal(a.status, 401);
});

test('metrics count requests per model and outcome, with no key in sight', async () => {
  const m = await call(`${base}/metrics`, { key: metricsKey });
  assert.equal(m.status, 200);
  assert.match(m.text, /bulwark_requests_total\{model="digits",version="1",outcome="ok"\} \d+/);
  assert.match(m.text, /bulwark_requests_total\{model="-",version="-",outcome="unauthorized"\} \d+/);
  assert.match(m.text, /bulwark_requests_total\{model="digits",version="1",outcome="budget_exhausted"\} 2/);
  assert.match(m.text, /bulwark_request_duration_seconds_bucket\{le="0.005",model="digits",outcome="ok"\}/);
  for (const k of await gw.store.listKeys()) assert.ok(!m.text.includes(k.id), 'no key ids in labels');
  assert.ok(!m.text.includes('passwd'), 'no client-chosen names in labels');
});

test('every 2xx answer is in the audit log, and the log verifies', async () => {
  const ledger = await openSqliteLedger(ledgerFile, { readonly: true });
  try {
    const v = await verifyLedger(ledger);
    assert.equal(v.valid, true, JSON.stringify(v.firstBad));
    const logged = new Set<string>();
    let windowed = 0;
    let statuses = new Map<number, number>();
    for await (const e of iterateEntries(ledger)) {
      assert.equal(e.kind, AUDIT_KIND);
      const p = entryPayload(e) as Record<string, unknown>;
      statuses.set(p.status as number, (statuses.get(p.status as number) ?? 0) + 1);
      if (p.status === 200 && p.outputSha256) logged.add(p.outputSha256 as string);
      assert.ok(!JSON.stringify(p).includes('bwk_'), 'never the key itself');
      // An answer admitted under a rate limit names the window that admitted it (basic: 1 s windows).
      if (p.status === 200 && p.tier === 'basic' && p.samples !== null) {
        const closes = Date.parse(p.rateWindowEndsAt as string) - Date.parse(p.receivedAt as string);
        assert.ok(closes >= 0 && closes <= 1100, `the window closes within 1 s of arrival: ${p.rateWindowEndsAt} for ${p.receivedAt}`);
        windowed++;
      }
      if (p.tier === 'labels') assert.equal(p.rateWindowEndsAt, undefined, 'no rate limit, no window');
    }
    assert.ok(windowed > 0, 'some answers came through a rate-limited tier');
    const { createHash } = await import('node:crypto');
    for (const text of answered) if (text !== '(connectHttpModel)') assert.ok(logged.has(createHash('sha256').update(text).digest('hex')), `a 2xx answer is missing from the log: ${text.slice(0, 80)}`);
    assert.ok((statuses.get(401) ?? 0) >= 5 && (statuses.get(429) ?? 0) >= 2 && (statuses.get(400) ?? 0) >= 10, JSON.stringify([...statuses]));
    statuses = new Map();
  } finally {
    await ledger.close();
  }
});
