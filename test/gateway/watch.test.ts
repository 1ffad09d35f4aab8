import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { Rng, takeSamples, type Samples } from '../../src/core/index.js';
import { loadDigitsSplit } from '../../src/data/index.js';
import { startGateway, ALERT_KIND, RESPONSE_KIND } from '../../src/gateway/index.js';
import { entryPayload, iterateEntries, openSqliteLedger, verifyLedger } from '../../src/provenance/index.js';
import { digitsVictim } from '../extraction/helpers.js';
import { jacobianQueries, seedSet } from '../monitor/jacobian.js';
import { call, inferBody, removeDir, tempDir } from './helpers.js';

const dir = tempDir('gw-watch');
const modelDir = path.join(dir, 'digits-mlp');
const { target, pool } = await digitsVictim(modelDir);
const { test: testSet } = await loadDigitsSplit();
// The victim trained on the first 4,000 training digits; the next 4,000 (\`pool\`) are real digits it never saw,
// and not the gateway's drift reference (the 2,000 test digits) either: what benign users send.

// The receiver a security team would run: it checks the signature itself and fails the first post.
const SECRET = 'a-long-random-secret-shared-with-the-receiver';
process.env.BULWARK_TEST_WATCH_SECRET = SECRET;
const posts: { body: string; signatureOk: boolean; status: number }[] = [];
const hook = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString('utf8');
    const expected = `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`;
    const status = posts.length === 0 ? 500 : 200;
    posts.push({ body, signatureOk: req.headers['x-bulwark-signature'] === expected, status });
    res.writeHead(status).end();
  });
});
await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
const hookUrl = `http://127.0.0.1:${(hook.address() as { port: number }).port}/alerts`;

const policyFile = path.join(dir, 'policy.yaml');
writeFileSync(
  policyFile,
  `tiers:
  default: { output: { kind: full } }
monitoring:
  extraction: { detector: prada, delta: 0.9, respond: [alert, webhook, degrade] }
  drift: { window: 500, respond: [alert] }
  ood: { minQueries: 50, maxRate: 0.5, respond: [alert] }
  webhook: { url: "${hookUrl}", secretEnv: BULWARK_TEST_WATCH_SECRET, retries: 3, backoffMs: 50 }
`,
);
const ledgerFile = path.join(dir, 'audit.db');
const gw = await startGateway({ models: [modelDir], allowUnsigned: true, name: 'digits', policyFile, port: 0, store: path.join(dir, 'gateway.db'), ledger: ledgerFile });
after(async () => {
  await gw.close();
  await new Promise<void>((r) => hook.close(() => r()));
  removeDir(dir);
});

const infer = `${gw.url}/v2/models/digits/infer`;
const mk = async (name: string, scopes: ('infer' | 'admin' | 'metrics')[]) => (await gw.store.createKey({ name, scopes, tier: 'default' })).key;
const benignKey = await mk('benign', ['infer']);
const thiefKey = await mk('thief', ['infer']);
const noisyKey = await mk('noisy', ['infer']);
const adminKey = await mk('admin', ['admin', 'metrics']);
const idOf = (k: string) => k.slice(4, 20);

function rows(x: Samples, from: number, n: number): Samples {
  return takeSamples(x, Array.from({ length: n }, (_, i) => from + i));
}
const outputs = (a: { body: Record<string, unknown> }) => (a.body.outputs as { data: number[] }[])[0].data;
/** True when every row of the answer is one-hot (label-only). */
function oneHot(data: number[]): boolean {
  for (let i = 0; i < data.length; i += 10) {
    const r = data.slice(i, i + 10);
    if (!(r.filter((v) => v === 1).length === 1 && r.filter((v) => v === 0).length === 9)) return false;
  }
  return true;
}
/** Sends `x` in requests of `batch` rows; returns each answer's status and whether it was one-hot. */
async function send(key: string, x: Samples, batch = 10) {
  const out: { status: number; oneHot: boolean; policy: string }[] = [];
  for (let i = 0; i < x.shape[0]; i += batch) {
    const a = await call(infer, { key, body: inferBody(rows(x, i, Math.min(batch, x.shape[0] - i))) });
    const policy = String((a.body.parameters as Record<string, unknown> | undefined)?.output_policy ?? a.text.slice(0, 80));
    // Label-only: the policy says so and every row is one-hot (a confident model's full answer can be too, so both).
    out.push({ status: a.status, oneHot: a.status === 200 && /^label/.test(policy) && oneHot(outputs(a)), policy });
  }
  return out;
}

test('benign test-set traffic is answered in full and raises nothing', async () => {
  const order = new Rng(5).permutation(4000).slice(0, 1000);
  const answers = await send(benignKey, takeSamples(pool, order));
  assert.ok(answers.every((a) => a.status === 200));
  await gw.app.watch.idle();
  const alerts = (await call(`${gw.url}/admin/alerts`, { key: adminKey })).body.alerts as { rule: string; key: string | null }[];
  assert.ok(answers.every((a) => a.policy === 'full'), `benign answers stay full probabilities; alerts: ${JSON.stringify(alerts)}`);
  assert.deepEqual(alerts, [], 'no alert for benign traffic (no extraction, no drift, no OOD)');
  const monitor = (await call(`${gw.url}/admin/monitor`, { key: adminKey })).body as { drift: { windows: number; drifted: boolean }[]; ood: { rows: number; rate: number } };
  assert.equal(monitor.drift[0].windows, 2);
  assert.equal(monitor.drift[0].drifted, false);
  assert.equal(monitor.ood.rows, 1000);
  assert.ok(monitor.ood.rate < 0.05, `OOD rate on unseen digits ${monitor.ood.rate}`);
});

test('a Jacobian-augmentation extraction client is flagged and degraded to label-only from its next request', async () => {
  // Five seeds a class: with one, the ten seeds' augmentations keep W near 0.95, over PRADA's δ (src/monitor/prada.ts).
  const queries = await jacobianQueries(target, seedSet(testSet.x, testSet.y, 5), { budget: 500, lambda: 0.1 });
  const answers = await send(thiefKey, queries);
  assert.ok(answers.every((a) => a.status === 200), 'degraded, not refused');
  const first = answers.findIndex((a) => a.oneHot);
  assert.ok(first > 0, `the thief was never degraded: ${JSON.stringify(answers.slice(-2))}`);
  assert.ok(answers.slice(first).every((a) => a.oneHot), `once degraded, every answer is one-hot: ${answers.map((a) => (a.oneHot ? 1 : 0)).join('')}`);
  assert.match(answers[first].policy, /label \(degraded by monitoring: extraction\/prada\)/);
  await gw.app.watch.idle();
  const alerts = (await call(`${gw.url}/admin/alerts?limit=10`, { key: adminKey })).body.alerts as { rule: string; detector: string; key: string; responses: string[]; detail: string }[];
  const mine = alerts.filter((a) => a.key === idOf(thiefKey) && a.rule === 'extraction');
  assert.equal(mine.length, 1, 'one alert, not one per request');
  assert.deepEqual([mine[0].rule, mine[0].detector, mine[0].responses], ['extraction', 'prada', ['alert', 'webhook', 'degrade']]);
  assert.ok(!alerts.some((a) => a.key === idOf(benignKey)));
  const record = await gw.store.getKey(idOf(thiefKey));
  assert.equal(record?.restriction?.labelOnly, true);
  assert.equal((await gw.store.getKey(idOf(benignKey)))?.restriction, null);
  // The benign key still gets full answers after the thief was caught.
  assert.ok((await send(benignKey, rows(testSet.x, 0, 10))).every((a) => a.status === 200 && !a.oneHot));
});

test('the webhook got a signed POST, retried after a 500', async () => {
  for (let i = 0; i < 100 && posts.length < 2; i++) await new Promise((r) => setTimeout(r, 50));
  assert.equal(posts.length, 2, 'one failed attempt, one delivered');
  assert.deepEqual(posts.map((p) => [p.status, p.signatureOk]), [[500, true], [200, true]]);
  const msg = JSON.parse(posts[1].body) as { type: string; alert: { key: string; rule: string; detector: string } };
  assert.equal(msg.type, 'bulwark.alert');
  assert.deepEqual([msg.alert.key, msg.alert.rule, msg.alert.detector], [idOf(thiefKey), 'extraction', 'prada']);
  assert.equal(posts[0].body, posts[1].body, 'the retry sends the same signed message');
});

test('noisy digits raise a drift alert and an OOD alert, and every request still answers 200', async () => {
  const rng = new Rng(11);
  const x = rows(testSet.x, 1000, 500);
  const noisy = { data: x.data.map((v) => Math.min(1, Math.max(0, v + 0.5 * rng.normal()))), shape: x.shape };
  const answers = await send(noisyKey, noisy);
  assert.ok(answers.every((a) => a.status === 200 && !a.oneHot), 'drift and OOD alerts refuse nothing, and alert-only rules degrade nothing');
  await gw.app.watch.idle();
  const alerts = (await call(`${gw.url}/admin/alerts`, { key: adminKey })).body.alerts as { rule: string; key: string | null; detail: string; responses: string[] }[];
  const drift = alerts.find((a) => a.rule === 'drift');
  assert.ok(drift, `no drift alert: ${JSON.stringify(alerts.map((a) => a.rule))}`);
  assert.equal(drift.key, null);
  assert.match(drift.detail, /drifted from the training data/);
  const ood = alerts.find((a) => a.rule === 'ood');
  assert.equal(ood?.key, idOf(noisyKey));
  assert.equal((await gw.store.getKey(idOf(noisyKey)))?.restriction, null, 'alert only: the key is not restricted');
  const monitor = (await call(`${gw.url}/admin/monitor`, { key: adminKey })).body as Record<string, unknown>;
  const d = (monitor.drift as { drifted: boolean; latest: { shareDrifted: number; features: unknown[] } }[])[0];
  assert.equal(d.drifted, true);
  assert.ok(d.latest.shareDrifted > 0.3 && d.latest.features.length > 0, JSON.stringify(d.latest).slice(0, 200));
  const rules = monitor.rules as { rule: string; flaggedKeys: { key: string }[] }[];
  assert.deepEqual(rules.find((r) => r.rule === 'extraction')?.flaggedKeys.map((k) => k.key), [idOf(thiefKey)]);
  // The thief's synthetic queries are out of distribution too.
  assert.deepEqual(rules.find((r) => r.rule === 'ood')?.flaggedKeys.map((k) => k.key).sort(), [idOf(noisyKey), idOf(thiefKey)].sort());
  assert.ok((monitor.restrictedKeys as { id: string }[]).some((k) => k.id === idOf(thiefKey)));
});

test('/admin/alerts and /admin/monitor need the admin scope; metrics carry no key', async () => {
  for (const url of [`${gw.url}/admin/alerts`, `${gw.url}/admin/monitor`]) {
    assert.equal((await call(url)).status, 401);
    assert.equal((await call(url, { key: benignKey })).status, 403);
    assert.equal((await call(url, { key: adminKey })).status, 200);
  }
  assert.equal((await call(`${gw.url}/admin/alerts?since=yesterday`, { key: adminKey })).status, 400);
  assert.equal((await call(`${gw.url}/admin/alerts?limit=0`, { key: adminKey })).status, 400);
  const future = await call(`${gw.url}/admin/alerts?since=2999-01-01T00:00:00Z`, { key: adminKey });
  assert.deepEqual(future.body.alerts, []);
  const m = await call(`${gw.url}/metrics`, { key: adminKey });
  assert.match(m.text, /bulwark_monitor_alerts_total\{rule="extraction",detector="prada"\} 1/);
  assert.match(m.text, /bulwark_monitor_alerts_total\{rule="drift",detector="drift"\} [12]/);
  assert.match(m.text, /bulwark_monitor_flagged_keys\{rule="extraction",detector="prada"\} 1/);
  assert.match(m.text, /bulwark_monitor_drift_share\{model="digits",version="1"\} (1|0\.\d+)/);
  assert.match(m.text, /bulwark_monitor_ood_rows_total \d+/);
  for (const k of await gw.store.listKeys()) assert.ok(!m.text.includes(k.id), 'no key ids in labels');
});

test('an admin restores the degraded key: full answers again, and the restore is logged', async () => {
  assert.equal((await call(`${gw.url}/admin/keys/${idOf(thiefKey)}/restore`, { key: benignKey, method: 'POST' })).status, 403);
  const r = await call(`${gw.url}/admin/keys/${idOf(thiefKey)}/restore`, { key: adminKey, method: 'POST' });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.restored, true);
  assert.equal((await call(`${gw.url}/admin/keys/ffffffffffffffff/restore`, { key: adminKey, method: 'POST' })).status, 404);
  const again = await send(thiefKey, rows(testSet.x, 0, 10));
  assert.ok(again.every((a) => a.status === 200 && !a.oneHot));
});

test('the alerts and responses are in the audit ledger, and the chain verifies', async () => {
  await gw.app.watch.idle();
  await gw.close();
  const ledger = await openSqliteLedger(ledgerFile, { readonly: true });
  try {
    const v = await verifyLedger(ledger);
    assert.equal(v.valid, true, JSON.stringify(v.firstBad));
    const kinds: Record<string, unknown>[] = [];
    for await (const e of iterateEntries(ledger)) if (e.kind === ALERT_KIND || e.kind === RESPONSE_KIND) kinds.push({ kind: e.kind, ...(entryPayload(e) as Record<string, unknown>) });
    const thief = idOf(thiefKey);
    assert.ok(kinds.some((p) => p.kind === ALERT_KIND && p.key === thief && p.rule === 'extraction'));
    assert.ok(kinds.some((p) => p.kind === ALERT_KIND && p.rule === 'drift'));
    assert.ok(kinds.some((p) => p.kind === RESPONSE_KIND && p.action === 'degrade' && p.key === thief && p.applied === true));
    const hookEntry = kinds.find((p) => p.kind === RESPONSE_KIND && p.action === 'webhook');
    assert.deepEqual([hookEntry?.delivered, hookEntry?.attempts, hookEntry?.status], [true, 2, 200]);
    assert.ok(kinds.some((p) => p.kind === RESPONSE_KIND && p.action === 'restore' && p.key === thief));
  } finally {
    await ledger.close();
  }
});
