import type { Redis } from 'ioredis';

/**
 * Small per-key counters for the gateway's own detectors: in this process, or in Redis so
 * every replica adds to the same numbers.
 */
export interface Counters {
  /** Adds to the named fields of `key` and returns all its fields after. `ttlSeconds` (re)sets the key's lifetime. */
  add(key: string, fields: Record<string, number>, ttlSeconds?: number): Promise<Record<string, number>>;
  get(key: string): Promise<Record<string, number>>;
  delete(keys: string[]): Promise<void>;
}

export function memoryCounters(): Counters {
  const m = new Map<string, { values: Record<string, number>; expiresAt: number }>();
  const live = (key: string) => {
    const e = m.get(key);
    if (e && e.expiresAt <= Date.now()) {
      m.delete(key);
      return undefined;
    }
    return e;
  };
  return {
    async add(key, fields, ttlSeconds) {
      let e = live(key);
      if (!e) {
        e = { values: {}, expiresAt: ttlSeconds ? Date.now() + ttlSeconds * 1000 : Infinity };
        m.set(key, e);
      }
      if (ttlSeconds) e.expiresAt = Date.now() + ttlSeconds * 1000;
      for (const [f, v] of Object.entries(fields)) e.values[f] = (e.values[f] ?? 0) + v;
      return { ...e.values };
    },
    async get(key) {
      return { ...(live(key)?.values ?? {}) };
    },
    async delete(keys) {
      for (const k of keys) m.delete(k);
    },
  };
}

export function redisCounters(redis: Redis, prefix: string): Counters {
  const k = (key: string) => `${prefix}:${key}`;
  const numbers = (h: Record<string, string>) => Object.fromEntries(Object.entries(h).map(([f, v]) => [f, Number(v)]));
  return {
    async add(key, fields, ttlSeconds) {
      const m = redis.multi();
      for (const [f, v] of Object.entries(fields)) m.hincrbyfloat(k(key), f, v);
      if (ttlSeconds) m.expire(k(key), Math.ceil(ttlSeconds));
      m.hgetall(k(key));
      const res = await m.exec();
      if (!res) throw new Error('Redis transaction aborted');
      const last = res[res.length - 1];
      if (last[0]) throw last[0];
      return numbers(last[1] as Record<string, string>);
    },
    async get(key) {
      return numbers(await redis.hgetall(k(key)));
    },
    async delete(keys) {
      if (keys.length > 0) await redis.del(...keys.map(k));
    },
  };
}
