import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { BulwarkError } from '../core/index.js';

/**
 * How a detector turns a key's stream of events into its state. Every detector state is a
 * fold over the key's events in stream order, so any process that applies the same events
 * in the same order holds the same state: that is what lets replicas share one stream per key.
 */
export interface DetectorStream<S, E> {
  /** Names the stream in the store; include every option that changes how events fold. */
  readonly id: string;
  init(): S;
  apply(state: S, event: E): void;
  encode(event: E): Buffer;
  decode(bytes: Buffer): E;
}

/** Where detectors keep per-key state: memory (one process) or Redis (shared by replicas). */
export interface DetectorStateStore {
  readonly kind: 'memory' | 'redis';
  /** Appends `events` to the key's stream and returns the state after every event before and including them. */
  append<S, E>(stream: DetectorStream<S, E>, key: string, events: readonly E[]): Promise<S>;
  /** The key's current state (catching up with other replicas), or null when the key has no events. */
  read<S, E>(stream: DetectorStream<S, E>, key: string): Promise<S | null>;
  clear<S, E>(stream: DetectorStream<S, E>, key: string): Promise<void>;
}

/** Keys kept in memory before the least recently used one is dropped (its stream starts again). */
export const DEFAULT_MAX_KEYS = 1000;

/** A least-recently-used map: idle keys must not hold detector state forever. */
class LruMap<V> {
  private readonly map = new Map<string, V>();
  constructor(private readonly max: number) {}
  get(k: string): V | undefined {
    const v = this.map.get(k);
    if (v !== undefined) {
      this.map.delete(k);
      this.map.set(k, v);
    }
    return v;
  }
  set(k: string, v: V): void {
    this.map.delete(k);
    this.map.set(k, v);
    while (this.map.size > this.max) this.map.delete(this.map.keys().next().value as string);
  }
  delete(k: string): void {
    this.map.delete(k);
  }
}

/** Events of one key are applied one batch at a time, in arrival order. */
class KeyedMutex {
  private readonly tails = new Map<string, Promise<unknown>>();
  run<T>(k: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(k) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.tails.set(k, tail);
    void tail.then(() => {
      if (this.tails.get(k) === tail) this.tails.delete(k);
    });
    return next;
  }
}

export function memoryDetectorState(opts: { maxKeys?: number } = {}): DetectorStateStore {
  const states = new LruMap<unknown>(positiveInt(opts.maxKeys ?? DEFAULT_MAX_KEYS, 'maxKeys'));
  const slot = (stream: { id: string }, key: string) => `${stream.id}\u0000${key}`;
  return {
    kind: 'memory',
    async append<S, E>(stream: DetectorStream<S, E>, key: string, events: readonly E[]): Promise<S> {
      const k = slot(stream, key);
      let s = states.get(k) as S | undefined;
      if (s === undefined) {
        s = stream.init();
        states.set(k, s);
      }
      for (const e of events) stream.apply(s, e);
      return s;
    },
    async read<S, E>(stream: DetectorStream<S, E>, key: string): Promise<S | null> {
      return (states.get(slot(stream, key)) as S | undefined) ?? null;
    },
    async clear<S, E>(stream: DetectorStream<S, E>, key: string): Promise<void> {
      states.delete(slot(stream, key));
    },
  };
}

/**
 * Appends the events (ARGV[5..]) to the key's log, trims the log to its cap, and returns
 * the generation, the absolute position of the log's first entry and the entries from the
 * caller's position on. A caller on an older generation (the key was reset) gets the whole log.
 */
const SYNC_SCRIPT = `
local log, meta = KEYS[1], KEYS[2]
local cap, ttl, gen_in, from = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local n
if #ARGV > 4 then n = redis.call('RPUSH', log, unpack(ARGV, 5)) else n = redis.call('LLEN', log) end
local gen = redis.call('HGET', meta, 'gen') or '0'
local base = tonumber(redis.call('HGET', meta, 'base') or '0')
if n > cap then
  redis.call('LTRIM', log, n - cap, -1)
  base = base + (n - cap)
  redis.call('HSET', meta, 'base', base)
  n = cap
end
if n > 0 and ttl > 0 then
  redis.call('PEXPIRE', log, ttl)
  redis.call('HSET', meta, 'gen', gen)
  redis.call('PEXPIRE', meta, ttl)
end
if gen ~= gen_in or from < base then from = base end
local out = redis.call('LRANGE', log, from - base, -1)
table.insert(out, 1, tostring(base + n))
table.insert(out, 1, tostring(from))
table.insert(out, 1, gen)
return out
`;
const RESET_SCRIPT = `
redis.call('DEL', KEYS[1])
redis.call('HINCRBY', KEYS[2], 'gen', 1)
redis.call('HSET', KEYS[2], 'base', 0)
return 1
`;
const sha1 = (s: string) => createHash('sha1').update(s).digest('hex');
const SYNC_SHA = sha1(SYNC_SCRIPT);
const RESET_SHA = sha1(RESET_SCRIPT);

/** Events kept per key in Redis; older ones are trimmed (replicas that saw them keep their effect). */
export const DEFAULT_REDIS_MAX_EVENTS = 5000;
/** Idle keys' logs expire after a week. */
export const DEFAULT_REDIS_TTL_SECONDS = 7 * 24 * 3600;
/** Lua's unpack() takes a few thousand arguments at most. */
const EVENTS_PER_CALL = 1000;

interface Cached {
  gen: string;
  /** Absolute position of the next event this process has not applied yet. */
  next: number;
  state: unknown;
}

/**
 * State shared by every process pointed at the same Redis: each key's events live in one
 * Redis list (the one stream all replicas agree on), and each process folds the entries it
 * has not seen yet into a local copy, so a request costs one round trip and no state
 * transfer. Logs are capped at `maxEvents` per key and expire when idle.
 */
export function redisDetectorState(
  redis: Redis,
  prefix = 'bulwark:monitor:',
  opts: { maxEvents?: number; ttlSeconds?: number; maxKeys?: number } = {},
): DetectorStateStore {
  const maxEvents = positiveInt(opts.maxEvents ?? DEFAULT_REDIS_MAX_EVENTS, 'maxEvents');
  const ttlMs = Math.round((opts.ttlSeconds ?? DEFAULT_REDIS_TTL_SECONDS) * 1000);
  const cache = new LruMap<Cached>(positiveInt(opts.maxKeys ?? DEFAULT_MAX_KEYS, 'maxKeys'));
  const mutex = new KeyedMutex();
  const names = (stream: { id: string }, key: string) => {
    const base = `${prefix}${stream.id}:{${key}}`;
    return { slot: base, log: `${base}:log`, meta: `${base}:meta` };
  };

  async function evalScript(script: string, sha: string, keys: string[], args: (string | Buffer)[]): Promise<unknown> {
    try {
      return await redis.callBuffer('EVALSHA', [sha, keys.length, ...keys, ...args]);
    } catch (e) {
      if (!(e instanceof Error) || !e.message.includes('NOSCRIPT')) throw wrapRedis(e);
      try {
        return await redis.callBuffer('EVAL', [script, keys.length, ...keys, ...args]);
      } catch (e2) {
        throw wrapRedis(e2);
      }
    }
  }

  async function sync<S, E>(stream: DetectorStream<S, E>, key: string, events: readonly E[]): Promise<S> {
    const n = names(stream, key);
    let c = cache.get(n.slot);
    const encoded = events.map((e) => stream.encode(e));
    let offset = 0;
    do {
      const chunk = encoded.slice(offset, offset + EVENTS_PER_CALL);
      offset += chunk.length;
      const reply = (await evalScript(SYNC_SCRIPT, SYNC_SHA, [n.log, n.meta], [
        String(maxEvents),
        String(ttlMs),
        c?.gen ?? '',
        String(c?.next ?? 0),
        ...chunk,
      ])) as Buffer[];
      const gen = reply[0].toString();
      const from = Number(reply[1].toString());
      const total = Number(reply[2].toString());
      if (!c || c.gen !== gen || c.next !== from) {
        // A reset, a first sight of the key, or events trimmed before this process saw them.
        if (!c || c.gen !== gen || from < c.next) c = { gen, next: from, state: stream.init() };
        else c.next = from;
      }
      const s = c.state as S;
      for (let i = 3; i < reply.length; i++) stream.apply(s, stream.decode(reply[i]));
      c.next = total;
      cache.set(n.slot, c);
    } while (offset < encoded.length);
    return c.state as S;
  }

  return {
    kind: 'redis',
    append<S, E>(stream: DetectorStream<S, E>, key: string, events: readonly E[]): Promise<S> {
      return mutex.run(names(stream, key).slot, () => sync(stream, key, events));
    },
    read<S, E>(stream: DetectorStream<S, E>, key: string): Promise<S | null> {
      return mutex.run(names(stream, key).slot, async () => {
        const s = await sync(stream, key, []);
        return cache.get(names(stream, key).slot)!.next > 0 ? s : null;
      });
    },
    clear<S, E>(stream: DetectorStream<S, E>, key: string): Promise<void> {
      const n = names(stream, key);
      return mutex.run(n.slot, async () => {
        await evalScript(RESET_SCRIPT, RESET_SHA, [n.log, n.meta], []);
        cache.delete(n.slot);
      });
    },
  };
}

function wrapRedis(e: unknown): BulwarkError {
  const msg = e instanceof Error ? e.message : String(e);
  return new BulwarkError('E_REMOTE', `the monitor's Redis state store failed (${msg}); check that Redis is reachable and not read-only`, { cause: e });
}

function positiveInt(v: number, name: string): number {
  if (!Number.isInteger(v) || v < 1) throw new BulwarkError('E_USAGE', `${name} must be a positive integer, got ${v}`);
  return v;
}
