import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { PostgresGatewayStore } from '../../src/gateway/index.js';
import { entryPayload, iterateEntries, openPostgresLedger, verifyLedger } from '../../src/provenance/index.js';
import { bulwark } from '../cli/helpers.js';
import { POSTGRES_URL, REDIS_URL, call, firstRows, inferBody, pgExec, probePostgres, probeRedis, redisDeletePrefix, removeDir, tempDir, trainDigitsModel, serveProcess, type ServeProcess } from './helpers.js';

const redisDown = await probeRedis();
const pgDown = await probePostgres();
const why = redisDown ? `Redis not reachable at ${REDIS_URL}: ${redisDown}` : pgDown ? `PostgreSQL not reachable at ${POSTGRES_URL}: ${pgDown}` : null;


test('two gateway processes on one Redis and one PostgreSQL: one limit, one budget, one revocation, one log', { timeout: 60_000 }, async (t) => {
  if (why) return t.skip(why);
  const dir = tempDir('gw-scale');
  const schema = `bulwark_gw_scale_${process.pid}_${randomBytes(4).toString('hex')}`;
  const prefix = `bulwark-test-${process.pid}-${randomBytes(4).toString('hex')}`;
  const servers: ServeProcess[] = [];
  after(async () => {
    for (const s of servers) if (s.child.exitCode === null) s.child.kill('SIGKILL');
    await Promise.all(servers.map((s) => s.exited));
    await redisDeletePrefix(prefix);
    await pgExec(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    removeDir(dir);
  });
  const modelDir = path.join(dir, 'digits');
  const { test: testSet } = await trainDigitsModel(modelDir);
  const policyFile = path.join(dir, 'policy.json');
  writeFileSync(
    policyFile,
    JSON.stringify({
      tiers: { rate: { rateLimit: { requests: 6, perSeconds: 60 } }, budget: { budget: { samplesPerDay: 10 } }, ops: { output: { kind: 'label' } } },
    }),
  );
  const storeArgs = ['--postgres', POSTGRES_URL, '--pg-schema', schema];
  const key = async (scopes: string, tier: string) => {
    const r = await bulwark(['keys', 'create', ...storeArgs, '--scopes', scopes, '--tier', tier, '--name', tier, '--json']);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as { key: string; id: string };
  };
  // One key through the CLI, the others straight into the same tables.
  const adminKey = await key('admin,infer', 'ops');
  const direct = await PostgresGatewayStore.open(POSTGRES_URL, { schema });
  const rateKey = (await direct.createKey({ name: 'rate', scopes: ['infer'], tier: 'rate' })).key;
  const budgetKey = (await direct.createKey({ name: 'budget', scopes: ['infer'], tier: 'budget' })).key;
  await direct.close();
  const args = ['--model', modelDir, '--model', modelDir, '--name', 'digits', '--allow-unsigned', '--policy', policyFile, ...storeArgs, '--redis', REDIS_URL, '--redis-prefix', prefix];
  servers.push(...(await Promise.all([serveProcess(args), serveProcess(args)])));
  const [a, b] = servers;
  const one = inferBody(firstRows(testSet.x, 1));
  let answered = 0;
  const send = async (s: Server, k: string, body = one) => {
    const r = await call(`${s.url}/v2/models/digits/infer`, { key: k, body });
    if (r.status === 200) answered++;
    return r.status;
  };

  // One rate limit: 6 requests per minute in all, whichever replica is asked.
  const rate: number[] = [];
  for (let i = 0; i < 10; i++) rate.push(await send(i % 2 ? b : a, rateKey));
  assert.deepEqual(rate, [200, 200, 200, 200, 200, 200, 429, 429, 429, 429]);

  // One budget: 10 samples a day in all; concurrent requests to both replicas cannot overspend it.
  const budget = await Promise.all(Array.from({ length: 16 }, (_, i) => send(i % 2 ? b : a, budgetKey)));
  assert.equal(budget.filter((s) => s === 200).length, 10, budget.join(','));
  assert.equal(budget.filter((s) => s === 429).length, 6);

  // A live switch through one replica reaches the other.
  const sw = await call(`${a.url}/admin/models/digits/live`, { key: adminKey.key, body: '{"version":"1"}' });
  assert.equal(sw.status, 200, sw.text);
  const deadline = Date.now() + 5000;
  let seen = '';
  while (Date.now() < deadline) {
    const r = await call(`${b.url}/v2/models/digits/infer`, { key: adminKey.key, body: one });
    answered++;
    seen = String(r.body.model_version);
    if (seen === '1') break;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.equal(seen, '1', 'replica b follows the switch made through a');

  // One revocation, through the CLI on the shared store: both replicas refuse the key at once.
  assert.equal(await send(b, adminKey.key), 200);
  const rv = await bulwark(['keys', 'revoke', adminKey.id, ...storeArgs]);
  assert.equal(rv.code, 0, rv.stderr);
  assert.equal(await send(a, adminKey.key), 401);
  assert.equal(await send(b, adminKey.key), 401);
  const list = await bulwark(['keys', 'list', ...storeArgs, '--json']);
  assert.ok((JSON.parse(list.stdout) as { id: string; revokedAt: string | null }[]).find((k) => k.id === adminKey.id)?.revokedAt);

  // Both stop cleanly on SIGTERM, having flushed the log.
  for (const s of servers) s.child.kill('SIGTERM');
  assert.deepEqual(await Promise.all(servers.map((s) => s.exited)), [0, 0]);

  // One log: a single chain holding every 2xx from both processes.
  const ledger = await openPostgresLedger(POSTGRES_URL, { schema, readonly: true });
  try {
    const v = await verifyLedger(ledger);
    assert.equal(v.valid, true, JSON.stringify(v.firstBad));
    let ok = 0;
    const replicas = new Set<string>();
    for await (const e of iterateEntries(ledger)) {
      const p = entryPayload(e) as { status: number; replica: string; url: string };
      if (p.status === 200 && p.url.endsWith('/infer')) ok++;
      replicas.add(p.replica);
    }
    assert.equal(ok, answered);
    assert.equal(replicas.size, 2);
  } finally {
    await ledger.close();
  }
});
