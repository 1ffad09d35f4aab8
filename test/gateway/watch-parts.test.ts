import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import http from 'node:http';
import path from 'node:path';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import { BulwarkError } from '../../src/core/errors.js';
import { MemoryGatewayStore, PostgresGatewayStore, SqliteGatewayStore, WebhookSender, parsePolicy, redisCounters, memoryCounters, volumeDetector, type GatewayStore } from '../../src/gateway/index.js';
import { POSTGRES_URL, REDIS_URL, pgExec, probePostgres, probeRedis, redisDeletePrefix, removeDir, tempDir } from './helpers.js';

const dir = tempDir('gw-watch-parts');
after(() => removeDir(dir));

function fails(text: string, re: RegExp): void {
  assert.throws(
    () => parsePolicy(text, 'policy.yaml'),
    (e: unknown) => e instanceof BulwarkError && re.test(e.message),
    `expected ${re}`,
  );
}

test('the monitoring section: defaults, one or several extraction detectors, errors at the line', () => {
  const p = parsePolicy(
    `tiers: { default: {} }
monitoring:
  extraction:
    - { detector: prada, delta: 0.9, respond: [alert, webhook, degrade] }
    - { detector: volume, rows: 1000, perSeconds: 60, respond: [suspend] }
  drift: { window: 500 }
  ood: { respond: [alert, throttle] }
  webhook: { url: "https://hooks.example/bulwark", secretEnv: HOOK_SECRET }
  throttle: { requests: 2, perSeconds: 1 }
`,
    'p.yaml',
  );
  const m = p.monitoring!;
  assert.deepEqual(m.extraction, [
    { detector: 'prada', delta: 0.9, respond: ['alert', 'webhook', 'degrade'] },
    { detector: 'volume', rows: 1000, perSeconds: 60, respond: ['suspend'] },
  ]);
  assert.deepEqual(m.drift, { window: 500, respond: ['alert'] });
  assert.deepEqual(m.ood, { fpr: 0.01, maxRate: 0.5, minQueries: 50, respond: ['alert', 'throttle'] });
  assert.deepEqual(m.webhook, { url: 'https://hooks.example/bulwark', secretEnv: 'HOOK_SECRET', retries: 5, backoffMs: 1000, timeoutMs: 5000 });
  assert.deepEqual(m.throttle, { requests: 2, perSeconds: 1 });
  assert.equal(parsePolicy('tiers: { default: {} }\n', 'p.yaml').monitoring, undefined);

  // A drifted model raises an alert, never a refusal: the schema refuses key responses for drift.
  fails('tiers: { default: {} }\nmonitoring:\n  drift: { window: 100, respond: [alert, suspend] }\n', /policy\.yaml:3:\d+: monitoring\.drift\.respond\.1 must be one of "alert", "webhook"/);
  fails('tiers: { default: {} }\nmonitoring:\n  extraction: { detector: prada, respond: [alert, webhook] }\n', /policy\.yaml:3:\d+: monitoring\.extraction\.respond asks for 'webhook' but monitoring\.webhook/);
  fails('tiers: { default: {} }\nmonitoring:\n  extraction: { detector: prada, rows: 5 }\n', /policy\.yaml:3:\d+: monitoring\.extraction has an unknown field 'rows'/);
  fails('tiers: { default: {} }\nmonitoring:\n  extraction: { detector: sniff }\n', /policy\.yaml:3:\d+: monitoring\.extraction\.detector must be one of "prada", "similarity", "volume"/);
  fails('tiers: { default: {} }\nmonitoring:\n  ood: { respond: [explode] }\n', /policy\.yaml:3:\d+: monitoring\.ood\.respond\.0 must be one of "alert", "webhook", "degrade", "misinform", "throttle", "suspend"/);
  fails('tiers: { default: {} }\nmonitoring:\n  webhook: { url: "ftp://x", secretEnv: S }\n', /monitoring\.webhook\.url must match pattern/);
  fails('tiers: { default: {} }\nmonitoring:\n  extraction: [{ detector: volume }, { detector: volume }]\n', /names the detector 'volume' twice/);
});

/** A receiver that answers the given statuses in turn and records what it got. */
async function receiver(statuses: number[]) {
  const got: { body: string; signature: string | undefined; status: number; at: number }[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const status = statuses[Math.min(got.length, statuses.length - 1)];
      got.push({ body: Buffer.concat(chunks).toString('utf8'), signature: req.headers['x-bulwark-signature'] as string | undefined, status, at: Date.now() });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return { url: `http://127.0.0.1:${port}/hook`, got, close: () => new Promise<void>((r) => server.close(() => r())) };
}

test('the webhook posts signed JSON, retries 5xx with growing waits, and gives up on a 4xx', async () => {
  const secret = 'correct horse battery staple';
  const r = await receiver([500, 503, 200]);
  const sender = new WebhookSender({ url: r.url, secret, retries: 4, backoffMs: 40, timeoutMs: 2000 });
  const delivery = await new Promise<{ delivered: boolean; attempts: number; status: number | null }>((resolve) => assert.ok(sender.send({ hello: 'world' }, resolve)));
  assert.deepEqual(delivery, { delivered: true, attempts: 3, status: 200 });
  assert.equal(r.got.length, 3);
  for (const g of r.got) {
    assert.deepEqual(JSON.parse(g.body), { hello: 'world' });
    // The receiver's check, computed here independently of the sender's code.
    assert.equal(g.signature, `sha256=${createHmac('sha256', secret).update(g.body).digest('hex')}`);
  }
  assert.ok(r.got[2].at - r.got[1].at > r.got[1].at - r.got[0].at, 'the second wait is longer than the first');
  await r.close();

  const refuse = await receiver([400]);
  const s2 = new WebhookSender({ url: refuse.url, secret, retries: 4, backoffMs: 10, timeoutMs: 2000 });
  const d2 = await new Promise<{ delivered: boolean; attempts: number; error?: string }>((resolve) => s2.send({ x: 1 }, resolve));
  assert.equal(d2.delivered, false);
  assert.equal(d2.attempts, 1);
  assert.match(d2.error ?? '', /refused it with HTTP 400/);
  await refuse.close();

  // Nobody listening: every attempt fails, then it is reported, never thrown.
  const s3 = new WebhookSender({ url: refuse.url, secret, retries: 2, backoffMs: 5, timeoutMs: 500 });
  const d3 = await new Promise<{ delivered: boolean; attempts: number }>((resolve) => s3.send({ x: 2 }, resolve));
  assert.deepEqual([d3.delivered, d3.attempts], [false, 3]);
  assert.deepEqual(s3.counts, { delivered: 0, failed: 1, dropped: 0 });
});

async function restrictionsHold(store: GatewayStore) {
  const { record } = await store.createKey({ name: 'k', scopes: ['infer'], tier: 'default' });
  assert.equal(record.restriction, null);
  assert.equal((await store.getKey(record.id))?.restriction, null);
  await store.restrictKey(record.id, { labelOnly: true, by: 'extraction/prada', reason: 'first', since: '2026-01-01T00:00:00.000Z' });
  // A second response (another replica, another rule) adds to the first.
  const both = await store.restrictKey(record.id, { suspended: true, throttle: { requests: 1, perSeconds: 10 }, by: 'ood/ood', reason: 'second', since: '2026-01-01T00:00:01.000Z' });
  assert.deepEqual(both?.restriction, { labelOnly: true, suspended: true, throttle: { requests: 1, perSeconds: 10 }, by: 'ood/ood', reason: 'second', since: '2026-01-01T00:00:01.000Z' });
  assert.deepEqual((await store.listKeys()).find((k) => k.id === record.id)?.restriction, both?.restriction);
  assert.equal((await store.restoreKey(record.id))?.restriction, null);
  assert.equal((await store.getKey(record.id))?.restriction, null);
  assert.equal(await store.restrictKey('0000000000000000', { suspended: true, by: 'x', reason: 'y', since: 'z' }), null);

  const base = { rule: 'extraction', detector: 'volume', key: record.id, model: 'm', version: '1', score: 5, threshold: 3, detail: 'd', responses: ['alert' as const], replica: 'r' };
  await store.addAlert({ ...base, at: '2026-01-01T00:00:00.000Z' });
  await store.addAlert({ ...base, at: '2026-01-02T00:00:00.000Z', detector: 'prada' });
  await store.addAlert({ ...base, at: '2026-01-03T00:00:00.000Z', key: null, rule: 'drift', detector: 'drift' });
  const all = await store.listAlerts();
  assert.deepEqual(all.map((a) => a.detector), ['drift', 'prada', 'volume'], 'newest first');
  assert.deepEqual(all[0].responses, ['alert']);
  assert.equal(all[0].key, null);
  assert.deepEqual((await store.listAlerts({ since: '2026-01-02T00:00:00.000Z' })).map((a) => a.detector), ['drift', 'prada']);
  assert.deepEqual((await store.listAlerts({ limit: 1 })).map((a) => a.detector), ['drift']);
}

test('restrictions and alerts in the memory store', async () => {
  await restrictionsHold(new MemoryGatewayStore());
});

test('restrictions and alerts in SQLite, and a store made before restrictions is migrated on open', async () => {
  const file = path.join(dir, 'old.db');
  // The version-1 schema, as the gateway wrote it before keys could be restricted.
  const db = new Database(file);
  db.exec(`CREATE TABLE gateway_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE gateway_keys (id TEXT PRIMARY KEY, name TEXT NOT NULL, scopes TEXT NOT NULL, tier TEXT NOT NULL, created_at TEXT NOT NULL, revoked_at TEXT, hash TEXT NOT NULL);
    CREATE TABLE gateway_live (model TEXT PRIMARY KEY, version TEXT NOT NULL, history TEXT NOT NULL, changed_at TEXT NOT NULL);
    INSERT INTO gateway_meta VALUES ('format', 'bulwark-gateway'), ('version', '1');
    INSERT INTO gateway_keys VALUES ('0123456789abcdef', 'old', '["infer"]', 'default', '2025-01-01T00:00:00.000Z', NULL, '${'a'.repeat(64)}');`);
  db.close();
  const store = SqliteGatewayStore.open(file);
  try {
    const old = await store.getKey('0123456789abcdef');
    assert.equal(old?.name, 'old');
    assert.equal(old?.restriction, null);
    assert.equal((await store.restrictKey('0123456789abcdef', { labelOnly: true, by: 'a', reason: 'b', since: 'c' }))?.restriction?.labelOnly, true);
    await restrictionsHold(store);
  } finally {
    await store.close();
  }
  // Opening again (the column exists now) changes nothing.
  const again = SqliteGatewayStore.open(file);
  assert.equal((await again.getKey('0123456789abcdef'))?.restriction?.labelOnly, true);
  await again.close();
});

test('restrictions and alerts in PostgreSQL, and an old table gains the column', async (t) => {
  const down = await probePostgres();
  if (down) return t.skip(`PostgreSQL not reachable at ${POSTGRES_URL}: ${down}`);
  const schema = `bulwark_watch_${process.pid}`;
  await pgExec(`DROP SCHEMA IF EXISTS ${schema} CASCADE; CREATE SCHEMA ${schema};
    CREATE TABLE ${schema}.bulwark_gateway_keys (id TEXT PRIMARY KEY, name TEXT NOT NULL, scopes TEXT[] NOT NULL, tier TEXT NOT NULL, created_at TEXT NOT NULL, revoked_at TEXT, hash TEXT NOT NULL);
    INSERT INTO ${schema}.bulwark_gateway_keys VALUES ('0123456789abcdef', 'old', '{infer}', 'default', '2025-01-01T00:00:00.000Z', NULL, '${'a'.repeat(64)}');`);
  const store = await PostgresGatewayStore.open(POSTGRES_URL, { schema });
  try {
    assert.equal((await store.getKey('0123456789abcdef'))?.restriction, null);
    await restrictionsHold(store);
  } finally {
    await store.close();
    await pgExec(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  }
});

test('the volume detector flags a key over its rows per window; in Redis two replicas count together', async (t) => {
  const obs = (key: string, n: number) => Array.from({ length: n }, () => ({ key, x: new Float32Array(4), probabilities: new Float32Array([0.5, 0.5]) }));
  const mem = volumeDetector({ rows: 25, perSeconds: 60, counters: memoryCounters() });
  const v1 = await mem.observe([...obs('a', 20), ...obs('b', 5)]);
  assert.deepEqual(v1.map((v) => [v.key, v.flagged, v.score]), [['a', false, 20], ['b', false, 5]]);
  const [v2] = await mem.observe(obs('a', 6));
  assert.equal(v2.flagged, true);
  assert.match(v2.detail, /sent 26 rows within 60 s, over the 25 allowed/);
  assert.equal((await mem.status('a'))?.flagged, true);
  await mem.reset('a');
  assert.equal(await mem.status('a'), null);

  const down = await probeRedis();
  if (down) return t.skip(`Redis not reachable at ${REDIS_URL}: ${down}`);
  const prefix = `bulwark-watch-test-${process.pid}`;
  const r1 = new Redis(REDIS_URL);
  const r2 = new Redis(REDIS_URL);
  try {
    const d1 = volumeDetector({ rows: 25, perSeconds: 60, counters: redisCounters(r1, prefix) });
    const d2 = volumeDetector({ rows: 25, perSeconds: 60, counters: redisCounters(r2, prefix) });
    assert.equal((await d1.observe(obs('k', 15)))[0].flagged, false);
    const [v] = await d2.observe(obs('k', 15));
    assert.equal(v.flagged, true, 'the second replica sees the first one’s rows');
    assert.equal(v.score, 30);
    assert.equal((await d1.status('k'))?.flagged, true);
  } finally {
    r1.disconnect();
    r2.disconnect();
    await redisDeletePrefix(prefix);
  }
});
