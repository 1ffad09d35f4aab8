import { Worker } from 'node:worker_threads';
import type { Redis, RedisOptions } from 'ioredis';
import type { Samples } from '../../core/index.js';
import { DetectionChain, type ChainConfig, type ChainItem, type ChainResult, type ChainStatus } from './chain.js';

/** Where the detectors run: in the server's thread, or in a thread of their own. */
export interface DetectionEngine {
  observe(items: ChainItem[]): Promise<ChainResult>;
  prepare(model: string, version: string, probabilities: Samples): Promise<void>;
  reset(key: string): Promise<void>;
  status(): Promise<ChainStatus>;
  close(): Promise<void>;
}

export async function localEngine(cfg: ChainConfig, store: { redis?: Redis; prefix: string }): Promise<DetectionEngine> {
  const chain = await DetectionChain.create(cfg, store);
  return {
    observe: (items) => chain.observe(items),
    prepare: async (model, version, p) => chain.prepare(model, version, p),
    reset: (key) => chain.reset(key),
    status: async () => chain.status(),
    close: async () => {},
  };
}

/** What a detection thread needs to open its own Redis connection (functions do not cross threads). */
export function redisConnection(redis: Redis): RedisOptions {
  const o = redis.options;
  const pick: RedisOptions = {};
  for (const k of ['host', 'port', 'path', 'family', 'username', 'password', 'db', 'tls', 'connectTimeout', 'keyPrefix'] as const) {
    if (o[k] !== undefined && typeof o[k] !== 'function') (pick as Record<string, unknown>)[k] = o[k];
  }
  return pick;
}

interface Reply {
  id: number;
  ok: boolean;
  result?: unknown;
  error?: string;
}

/**
 * The detectors in a worker thread: the OOD score, PRADA, the similarity search and the drift
 * tests take about a millisecond of CPU per row together, which the thread answering requests
 * must not pay. Rows cross as transferred buffers; verdicts come back per batch.
 */
export async function workerEngine(cfg: ChainConfig, store: { redis?: Redis; prefix: string }): Promise<DetectionEngine> {
  const here = import.meta.url;
  const workerData = { cfg, redis: store.redis ? redisConnection(store.redis) : null, prefix: store.prefix };
  // Run from source (tests under tsx), the thread registers tsx itself before loading the .ts file.
  const worker = here.endsWith('.ts')
    ? new Worker(`import('tsx/esm/api').then((t) => t.register()).then(() => import(${JSON.stringify(new URL('./detect-worker.ts', here).href)}))`, { eval: true, workerData })
    : new Worker(new URL('./detect-worker.js', here), { workerData });
  let next = 1;
  const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let dead: Error | null = null;
  const fail = (e: Error) => {
    dead = e;
    for (const w of waiting.values()) w.reject(e);
    waiting.clear();
  };
  worker.on('message', (m: Reply) => {
    const w = waiting.get(m.id);
    if (!w) return;
    waiting.delete(m.id);
    if (m.ok) w.resolve(m.result);
    else w.reject(new Error(m.error));
  });
  worker.on('error', (e) => fail(e));
  worker.on('exit', (code) => fail(new Error(`the detection thread stopped (exit code ${code})`)));
  const ask = <T>(op: string, args: Record<string, unknown> = {}, transfer: ArrayBuffer[] = []): Promise<T> => {
    if (dead) return Promise.reject(dead);
    const id = next++;
    return new Promise<T>((resolve, reject) => {
      waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      worker.postMessage({ id, op, ...args }, transfer);
    });
  };
  try {
    await ask('ready');
  } catch (e) {
    await worker.terminate();
    throw e;
  }
  // A thread idle between batches must not keep the process alive.
  worker.unref();
  return {
    observe(items) {
      // Copies: the request's own arrays stay with it; the copies move to the thread without another copy.
      const moved = items.map((i) => ({ ...i, x: i.x.slice(), probabilities: i.probabilities.slice() }));
      return ask<ChainResult>('observe', { items: moved }, moved.flatMap((i) => [i.x.buffer as ArrayBuffer, i.probabilities.buffer as ArrayBuffer]));
    },
    prepare: (model, version, probabilities) => ask('prepare', { model, version, probabilities }),
    reset: (key) => ask('reset', { key }),
    status: () => ask<ChainStatus>('status'),
    async close() {
      if (!dead) await ask('close').catch(() => undefined);
      await worker.terminate();
    },
  };
}
