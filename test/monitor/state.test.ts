import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { Rng } from '../../src/core/index.js';
import { memoryDetectorState, pradaDetector, redisDetectorState, similarityDetector, type QueryObservation } from '../../src/monitor/index.js';

const REDIS_URL = process.env.BULWARK_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
let redis: Redis | null = null;

before(async () => {
  const r = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
  r.on('error', () => undefined);
  try {
    await r.connect();
    await r.ping();
    redis = r;
  } catch {
    r.disconnect();
  }
});
after(() => redis?.disconnect());

/** Rows clustered around 10 centres, labelled by centre, so PRADA and similarity have something to chew on. */
function rows(n: number, seed: number, key: string): QueryObservation[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => {
    const c = rng.int(10);
    const x = Float32Array.from({ length: 32 }, (_, j) => (j % 10 === c ? 1 : 0) + 0.3 * rng.normal());
    const p = new Float32Array(10);
    p[c] = 1;
    return { key, x, probabilities: p };
  });
}

test('two detector instances sharing one Redis state see one stream per key', async (t) => {
  if (!redis) return t.skip(`no Redis at ${REDIS_URL}; start redis-server to run this test`);
  const prefix = `bulwark:test:monitor:${process.pid}:${Date.now()}:`;
  const a = pradaDetector({ numClasses: 10, minQueries: 20, state: redisDetectorState(redis, prefix) });
  const b = pradaDetector({ numClasses: 10, minQueries: 20, state: redisDetectorState(redis, prefix) });
  const single = pradaDetector({ numClasses: 10, minQueries: 20, state: memoryDetectorState() });
  const data = rows(300, 1, 'shared');
  // Alternate small batches between the two replicas, some concurrently.
  for (let i = 0; i < data.length; i += 10) {
    const chunk = data.slice(i, i + 10);
    if (i % 40 === 0) await Promise.all([a.observe(chunk.slice(0, 5)), b.observe(chunk.slice(5))]);
    else await (i % 20 === 0 ? a : b).observe(chunk);
  }
  const va = await a.status('shared');
  const vb = await b.status('shared');
  assert.equal(va?.queries, 300);
  assert.equal(vb?.queries, 300);
  assert.equal(va?.score, vb?.score, 'both replicas fold the same stream into the same W');
  // The stream order is Redis's; a single process fed in that order agrees too (the concurrent batches may interleave either way).
  for (let i = 0; i < data.length; i += 10) await single.observe(data.slice(i, i + 10));
  assert.ok(Math.abs((await single.status('shared'))!.score - va!.score) < 0.05);

  await a.reset('shared');
  assert.equal(await b.status('shared'), null, 'a reset on one replica is seen by the other');
  const [v] = await b.observe(data.slice(0, 3));
  assert.equal(v.queries, 3);

  const s1 = similarityDetector({ threshold: 0.5, k: 5, history: 50, alarms: 1, state: redisDetectorState(redis, prefix) });
  const s2 = similarityDetector({ threshold: 0.5, k: 5, history: 50, alarms: 1, state: redisDetectorState(redis, prefix) });
  const same = Array.from({ length: 8 }, () => ({ key: 'dup', x: new Float32Array(32).fill(0.5), probabilities: new Float32Array(10) }));
  await s1.observe(same.slice(0, 4));
  const [dv] = await s2.observe(same.slice(4));
  assert.equal(dv.queries, 8);
  assert.equal(dv.flagged, true, 'identical queries spread over two replicas are caught as one stream');
  const keys = await redis!.keys(`${prefix}*`);
  if (keys.length) await redis!.del(...keys);
});

test('the memory store forgets the least recently used keys beyond maxKeys', async () => {
  const det = pradaDetector({ numClasses: 10, state: memoryDetectorState({ maxKeys: 2 }) });
  for (const key of ['k1', 'k2', 'k3']) await det.observe(rows(3, 2, key));
  assert.equal(await det.status('k1'), null);
  assert.equal((await det.status('k3'))?.queries, 3);
});
