import { parentPort, workerData } from 'node:worker_threads';
import { Redis, type RedisOptions } from 'ioredis';
import type { Samples } from '../../core/index.js';
import { DetectionChain, type ChainConfig, type ChainItem } from './chain.js';

/** The detection thread: one DetectionChain, driven by messages from the server's thread, one at a time. */
const data = workerData as { cfg: ChainConfig; redis: RedisOptions | null; prefix: string };
const port = parentPort!;
let redis: Redis | undefined;
let chain: DetectionChain | undefined;
let startError: Error | undefined;
const ready = (async () => {
  if (data.redis) {
    redis = new Redis({ ...data.redis, maxRetriesPerRequest: 1, enableOfflineQueue: false, lazyConnect: true });
    redis.on('error', () => {}); // reconnects by itself; the batches meanwhile fail and are logged
    await redis.connect();
  }
  chain = await DetectionChain.create(data.cfg, { ...(redis ? { redis } : {}), prefix: data.prefix });
})().catch((e: unknown) => {
  startError = e as Error;
});

type Message = { id: number; op: string; items?: ChainItem[]; key?: string; model?: string; version?: string; probabilities?: Samples };

let queue: Promise<void> = Promise.resolve();
port.on('message', (m: Message) => {
  queue = queue.then(async () => {
    try {
      await ready;
      if (startError || !chain) throw startError ?? new Error('the detectors did not start');
      let result: unknown = null;
      if (m.op === 'observe') result = await chain.observe(m.items ?? []);
      else if (m.op === 'prepare') chain.prepare(m.model!, m.version!, m.probabilities!);
      else if (m.op === 'reset') await chain.reset(m.key!);
      else if (m.op === 'status') result = chain.status();
      else if (m.op === 'close') redis?.disconnect();
      port.postMessage({ id: m.id, ok: true, result });
    } catch (e) {
      port.postMessage({ id: m.id, ok: false, error: (e as Error).message });
    }
  });
});
