import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import type { Predictor, Samples } from '../../src/core/index.js';
import {
  MemoryGatewayStore,
  ModelRegistry,
  PostgresGatewayStore,
  auditPlugin,
  authPlugin,
  contextPlugin,
  errorsPlugin,
  limitsPlugin,
  oipRoutes,
  policyPlugin,
  validationPlugin,
  parsePolicy,
  type GatewayPolicy,
  type RouteKind,
} from '../../src/gateway/index.js';
import type { EntryDraft, LedgerStore } from '../../src/provenance/index.js';
import { POSTGRES_URL, REDIS_URL, pgExec, probePostgres, probeRedis, redisDeletePrefix } from './helpers.js';

const redisDown = await probeRedis();
const pgDown = await probePostgres();

/** A fixed model: 2 inputs, 3 classes, probabilities [0.2, 0.5, 0.3] whatever the input. */
const fixed: Predictor = {
  info: { name: 'fixed', engine: 'test', inputShape: [2], numClasses: 3 },
  predict: async (x: Samples) => ({ data: Float32Array.from({ length: x.shape[0] * 3 }, (_, i) => [0.2, 0.5, 0.3][i % 3]), shape: [x.shape[0], 3] }),
};

/** A bare Fastify app with only the given plugins, and one route of each kind. */
async function bare(register: (app: FastifyInstance) => Promise<void>): Promise<FastifyInstance> {
  const app = Fastify();
  await app.register(contextPlugin);
  await app.register(errorsPlugin);
  await register(app);
  for (const kind of ['health', 'model', 'infer', 'admin', 'metrics'] as RouteKind[]) app.get(`/${kind}`, { config: { bulwark: kind } }, async () => ({ kind }));
  after(() => app.close());
  return app;
}

test('auth alone: no key 401, wrong scope 403, right scope 200, health open, revocation immediate', async () => {
  const store = new MemoryGatewayStore();
  const app = await bare(async (a) => void (await a.register(authPlugin, { store })));
  const { key, record } = await store.createKey({ name: 't', scopes: ['infer'], tier: 'default' });
  const get = (url: string, k?: string) => app.inject({ url, headers: k ? { authorization: `Bearer ${k}` } : {} });
  assert.equal((await get('/health')).statusCode, 200);
  assert.equal((await get('/infer')).statusCode, 401);
  assert.equal((await get('/infer', key)).statusCode, 200);
  assert.equal((await app.inject({ url: '/infer', headers: { 'x-api-key': key } })).statusCode, 200);
  assert.equal((await get('/admin', key)).statusCode, 403);
  assert.equal((await get('/metrics', key)).statusCode, 403);
  assert.equal((await get('/infer', key.toUpperCase())).statusCode, 401);
  assert.equal((await get('/infer', 'not-a-key')).statusCode, 401);
  await store.revokeKey(record.id);
  const r = await get('/infer', key);
  assert.equal(r.statusCode, 401);
  assert.deepEqual(JSON.parse(r.body), { error: 'the API key is not valid (unknown or revoked)' });
});

test('keys are 256-bit, shown once, stored as SHA-256 hashes only', async () => {
  const store = new MemoryGatewayStore();
  const { key, record } = await store.createKey({ name: 't', scopes: ['infer', 'metrics'], tier: 'gold' });
  const secret = key.slice('bwk_'.length + 16 + 1);
  assert.equal(Buffer.from(secret, 'base64url').length, 32);
  const listed = await store.listKeys();
  assert.equal(listed.length, 1);
  assert.ok(!JSON.stringify(listed).includes(secret));
  assert.match(record.hash, /^[0-9a-f]{64}$/);
  await assert.rejects(store.createKey({ name: 't', scopes: ['root' as 'infer'], tier: 'x' }), /unknown scope 'root'/);
});

const policy = (text: string): GatewayPolicy => parsePolicy(text, 'test-policy.yaml');

async function limited(p: GatewayPolicy, redis?: Redis, prefix?: string) {
  const store = new MemoryGatewayStore();
  const app = await bare(async (a) => {
    await a.register(limitsPlugin, { policy: p, ...(redis ? { redis } : {}), ...(prefix ? { prefix } : {}) });
    await a.register(authPlugin, { store });
  });
  return { app, store };
}

test('limits alone (memory): a key over its rate gets 429 with Retry-After and RateLimit headers', async () => {
  const { app, store } = await limited(policy('tiers:\n  t:\n    rateLimit: { requests: 3, perSeconds: 60 }\n'));
  const { key } = await store.createKey({ name: 'k', scopes: ['infer'], tier: 't' });
  const codes: number[] = [];
  let last;
  for (let i = 0; i < 5; i++) {
    last = await app.inject({ url: '/infer', headers: { authorization: `Bearer ${key}` } });
    codes.push(last.statusCode);
  }
  assert.deepEqual(codes, [200, 200, 200, 429, 429]);
  assert.ok(Number(last?.headers['retry-after']) > 0 && Number(last?.headers['retry-after']) <= 60);
  assert.equal(last?.headers['ratelimit-limit'], '3');
  assert.equal(last?.headers['ratelimit-remaining'], '0');
  assert.match(JSON.parse(last?.body ?? '{}').error, /over its rate limit of 3 requests per 60 s/);
  // Another key of the same tier has its own count.
  const other = await store.createKey({ name: 'k2', scopes: ['infer'], tier: 't' });
  assert.equal((await app.inject({ url: '/infer', headers: { authorization: `Bearer ${other.key}` } })).statusCode, 200);
});

test('limits alone: the client address limit applies before auth; a key of an unknown tier is refused', async () => {
  const { app, store } = await limited(policy('tiers:\n  t: {}\nclientRateLimit: { requests: 2, perSeconds: 60 }\n'));
  const { key } = await store.createKey({ name: 'k', scopes: ['infer'], tier: 'missing' });
  assert.equal((await app.inject({ url: '/infer', headers: { authorization: `Bearer ${key}` } })).statusCode, 403);
  assert.equal((await app.inject({ url: '/infer' })).statusCode, 401);
  const r = await app.inject({ url: '/infer' });
  assert.equal(r.statusCode, 429);
  assert.match(JSON.parse(r.body).error, /too many requests from this address/);
  assert.equal((await app.inject({ url: '/health' })).statusCode, 200, 'health is never limited');
});

test('validation and policy alone: a request is checked, then shaped for its tier', async () => {
  const registry = new ModelRegistry();
  registry.add({ name: 'm', version: '1', model: fixed, source: 'test', admitted: 'unsigned', loadedAt: new Date().toISOString() });
  const p = policy('tiers:\n  default:\n    output: { kind: top-k, k: 1 }\nvalidation: { maxBatch: 2, range: [-1, 1] }\n');
  const app = Fastify();
  await app.register(contextPlugin);
  await app.register(errorsPlugin);
  await app.register(validationPlugin, { registry, rules: p.validation });
  await app.register(policyPlugin, { policy: p });
  await app.register(oipRoutes, { registry, policy: p });
  after(() => app.close());
  const post = (payload: unknown) => app.inject({ method: 'POST', url: '/v2/models/m/infer', payload: payload as object });
  const good = await post({ id: 'r1', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 2], data: [0.5, -0.5] }] });
  assert.equal(good.statusCode, 200, good.body);
  assert.deepEqual(JSON.parse(good.body), {
    model_name: 'm',
    model_version: '1',
    id: 'r1',
    parameters: { output_policy: 'top-1' },
    outputs: [{ name: 'probabilities', datatype: 'FP32', shape: [1, 3], data: [0, 1, 0] }],
  });
  const far = await post({ inputs: [{ name: 'input', datatype: 'FP64', shape: [1, 2], data: [[0.5, 2]] }] });
  assert.equal(far.statusCode, 400);
  assert.match(JSON.parse(far.body).error, /^input 'input': rule 'range': value 1 \(row 0, position 1\) is 2, outside \[-1, 1\] \(validation\.range in the policy\)/);
  const many = await post({ inputs: [{ name: 'input', datatype: 'FP32', shape: [3, 2], data: [0, 0, 0, 0, 0, 0] }] });
  assert.match(JSON.parse(many.body).error, /rule 'batch size'/);
});

test('limits in Redis: two gateways on one Redis share one count per key', async (t) => {
  if (redisDown) return t.skip(`Redis not reachable at ${REDIS_URL}: ${redisDown}`);
  const prefix = `bulwark-test-${process.pid}-${randomBytes(4).toString('hex')}`;
  const r1 = new Redis(REDIS_URL);
  const r2 = new Redis(REDIS_URL);
  t.after(async () => {
    await redisDeletePrefix(prefix);
    r1.disconnect();
    r2.disconnect();
  });
  const p = policy('tiers:\n  t:\n    rateLimit: { requests: 4, perSeconds: 60 }\n');
  const a = await limited(p, r1, prefix);
  const b = await limited(p, r2, prefix);
  // Both replicas know the same key (a shared store, here written twice).
  const { key, record } = await a.store.createKey({ name: 'k', scopes: ['infer'], tier: 't' });
  (b.store as unknown as { keys: Map<string, unknown> }).keys.set(record.id, { ...record });
  const codes: number[] = [];
  for (let i = 0; i < 8; i++) codes.push((await (i % 2 ? a : b).app.inject({ url: '/infer', headers: { authorization: `Bearer ${key}` } })).statusCode);
  assert.deepEqual(codes, [200, 200, 200, 200, 429, 429, 429, 429]);
});

test('the PostgreSQL store: keys and live versions shared, revocation seen by every handle', async (t) => {
  if (pgDown) return t.skip(`PostgreSQL not reachable at ${POSTGRES_URL}: ${pgDown}`);
  const schema = `bulwark_gw_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  t.after(() => pgExec(`DROP SCHEMA IF EXISTS ${schema} CASCADE`));
  const [s1, s2] = await Promise.all([PostgresGatewayStore.open(POSTGRES_URL, { schema }), PostgresGatewayStore.open(POSTGRES_URL, { schema })]);
  t.after(async () => {
    await s1.close();
    await s2.close();
  });
  const { record } = await s1.createKey({ name: 'pg', scopes: ['infer', 'admin'], tier: 'gold' });
  assert.deepEqual((await s2.getKey(record.id))?.scopes, ['infer', 'admin']);
  assert.equal((await s2.revokeKey(record.id))?.id, record.id);
  assert.ok((await s1.getKey(record.id))?.revokedAt);
  assert.equal(await s1.revokeKey('ffffffffffffffff'), null);
  await s1.setLive('m', { version: '2', history: ['1'], changedAt: '2026-01-01T00:00:00.000Z' });
  assert.deepEqual(await s2.getLive('m'), { version: '2', history: ['1'], changedAt: '2026-01-01T00:00:00.000Z' });
  assert.equal((await s2.listKeys()).length, 1);
});

test('audit alone: a 2xx waits for its entry; if the log cannot take it the client gets 503, never the answer', async () => {
  const drafts: EntryDraft[] = [];
  let broken = false;
  let release: () => void = () => {};
  const ledger = {
    location: 'fake',
    append: async (d: EntryDraft) => {
      if (broken) throw new Error('disk full');
      await new Promise<void>((r) => (release = r));
      drafts.push(d);
      return {} as never;
    },
  } as unknown as LedgerStore;
  const app = await bare(async (a) => void (await a.register(auditPlugin, { ledger })));
  let answered = false;
  const pending = app.inject({ url: '/infer' }).then((r) => {
    answered = true;
    return r;
  });
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(answered, false, 'the answer is held until the entry is written');
  release();
  const r = await pending;
  assert.equal(r.statusCode, 200);
  assert.equal(drafts.length, 1);
  const p = drafts[0].payload as Record<string, unknown>;
  assert.equal(p.status, 200);
  assert.equal(p.url, '/infer');
  assert.match(String(p.outputSha256), /^[0-9a-f]{64}$/);
  assert.equal((await app.inject({ url: '/health' })).statusCode, 200);
  assert.equal(drafts.length, 1, 'health checks are not logged');
  broken = true;
  const failed = await app.inject({ url: '/infer' });
  assert.equal(failed.statusCode, 503);
  assert.deepEqual(JSON.parse(failed.body), { error: 'the audit log cannot be written; the answer was withheld' });
});
