import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { GatewayError } from '../errors.js';
import type { Budget, GatewayPolicy, RateLimit, Tier } from '../policy-file.js';
import { shared } from './context.js';

export interface LimitsOptions extends Record<string, unknown> {
  policy: GatewayPolicy;
  /** Shared counters for every replica; without it, counters live in this process. */
  redis?: Redis;
  /** Prefix of every counter's key. Default 'bulwark'. */
  prefix?: string;
}

type Limiter = RateLimiterAbstract;

/** When the current UTC day / month ends, and the period's label. */
function period(kind: 'day' | 'month', now: Date): { label: string; endsAt: number } {
  const y = now.getUTCFullYear();
  const m = now.getUTCMonth();
  if (kind === 'day') return { label: now.toISOString().slice(0, 10), endsAt: Date.UTC(y, m, now.getUTCDate() + 1) };
  return { label: now.toISOString().slice(0, 7), endsAt: Date.UTC(y, m + 1, 1) };
}

function isLimitRes(e: unknown): e is RateLimiterRes {
  return e instanceof RateLimiterRes;
}

/** Headers of draft-ietf-httpapi-ratelimit-headers. */
function rateHeaders(reply: FastifyReply, limit: RateLimit, res: RateLimiterRes): void {
  reply.header('RateLimit-Limit', String(limit.requests));
  reply.header('RateLimit-Remaining', String(Math.max(0, res.remainingPoints)));
  reply.header('RateLimit-Reset', String(Math.ceil(res.msBeforeNext / 1000)));
  reply.header('RateLimit-Policy', `${limit.requests};w=${limit.perSeconds}`);
}

/**
 * Rate limits per client address (every keyed route) and per key (its tier's), counted in
 * requests; query budgets per key and UTC day / month, counted in samples. Built on
 * rate-limiter-flexible: in memory, or in Redis so that all replicas share one count.
 * A store that does not answer fails closed (503): an outage must not lift the limits.
 */
export const limitsPlugin = shared('bulwark-limits', async (app: FastifyInstance, opts: LimitsOptions) => {
  const prefix = opts.prefix ?? 'bulwark';
  const make = (keyPrefix: string, points: number, duration: number): Limiter =>
    opts.redis
      ? new RateLimiterRedis({ storeClient: opts.redis, keyPrefix: `${prefix}:${keyPrefix}`, points, duration })
      : new RateLimiterMemory({ keyPrefix: `${prefix}:${keyPrefix}`, points, duration });
  // Windows shorter than a second are counted in milliseconds by neither store; round up.
  const seconds = (l: RateLimit) => Math.max(1, Math.ceil(l.perSeconds));
  const clientLimit = opts.policy.clientRateLimit;
  const clientLimiter = clientLimit ? make('client', clientLimit.requests, seconds(clientLimit)) : undefined;
  const tiers = new Map<string, { rate?: Limiter; day?: Limiter; month?: Limiter }>();
  const forTier = (name: string, tier: Tier) => {
    let t = tiers.get(name);
    if (!t) {
      const b: Budget = tier.budget ?? {};
      t = {
        ...(tier.rateLimit ? { rate: make(`rate:${name}`, tier.rateLimit.requests, seconds(tier.rateLimit)) } : {}),
        // Keys carry the period, so a window only has to outlive it.
        ...(b.samplesPerDay ? { day: make(`day:${name}`, b.samplesPerDay, 2 * 86_400) } : {}),
        // In memory a month-long window would overflow setTimeout (at most 24.8 days); such keys
        // never expire instead (one small counter per key and month).
        ...(b.samplesPerMonth ? { month: make(`month:${name}`, b.samplesPerMonth, opts.redis ? 32 * 86_400 : 0) } : {}),
      };
      tiers.set(name, t);
    }
    return t;
  };
  const tierOf = (tierName: string): Tier => {
    const tier = opts.policy.tiers[tierName];
    if (!tier) throw new GatewayError(403, 'forbidden', `the key's tier '${tierName}' is not defined in the policy (${opts.policy.source})`);
    return tier;
  };
  const unavailable = (e: unknown) => {
    app.log.error({ err: e }, 'limits store failed');
    return new GatewayError(503, 'unavailable', 'the rate-limit store is not answering; try again shortly', { 'retry-after': '1' });
  };

  app.addHook('onRequest', async (request, reply) => {
    const kind = request.bulwark.kind;
    if (!clientLimiter || !clientLimit || kind === 'health') return;
    try {
      rateHeaders(reply, clientLimit, await clientLimiter.consume(request.ip));
    } catch (e) {
      if (!isLimitRes(e)) throw unavailable(e);
      const wait = Math.max(1, Math.ceil(e.msBeforeNext / 1000));
      rateHeaders(reply, clientLimit, e);
      throw new GatewayError(429, 'rate_limited', `too many requests from this address: at most ${clientLimit.requests} per ${clientLimit.perSeconds} s; retry after ${wait} s`, { 'retry-after': String(wait) });
    }
  });

  // A throttled key (monitoring) has a second, lower limit on top of its tier's; one limiter per distinct limit.
  const throttles = new Map<string, Limiter>();
  const throttleFor = (l: RateLimit): Limiter => {
    const name = `${l.requests}:${l.perSeconds}`;
    let t = throttles.get(name);
    if (!t) {
      t = make(`throttle:${name}`, l.requests, seconds(l));
      throttles.set(name, t);
    }
    return t;
  };

  app.addHook('preParsing', async (request, reply, payload) => {
    const s = request.bulwark;
    if (!s.key || (s.kind !== 'infer' && s.kind !== 'model')) return payload;
    const throttle = s.key.restriction?.throttle;
    if (throttle) {
      try {
        rateHeaders(reply, throttle, await throttleFor(throttle).consume(s.key.id));
      } catch (e) {
        if (!isLimitRes(e)) throw unavailable(e);
        const wait = Math.max(1, Math.ceil(e.msBeforeNext / 1000));
        rateHeaders(reply, throttle, e);
        throw new GatewayError(
          429,
          'rate_limited',
          `key ${s.key.id} is throttled by the gateway's monitoring to ${throttle.requests} requests per ${throttle.perSeconds} s (${s.key.restriction?.by}); retry after ${wait} s`,
          { 'retry-after': String(wait) },
        );
      }
    }
    const tier = tierOf(s.key.tier);
    const t = forTier(s.key.tier, tier);
    if (!t.rate || !tier.rateLimit) return payload;
    try {
      const res = await t.rate.consume(s.key.id);
      s.rateWindowEndsAt = new Date(Date.now() + res.msBeforeNext).toISOString();
      // The throttle is the tighter limit; its headers are the ones worth reading.
      if (!throttle) rateHeaders(reply, tier.rateLimit, res);
    } catch (e) {
      if (!isLimitRes(e)) throw unavailable(e);
      const wait = Math.max(1, Math.ceil(e.msBeforeNext / 1000));
      rateHeaders(reply, tier.rateLimit, e);
      throw new GatewayError(429, 'rate_limited', `key ${s.key.id} is over its rate limit of ${tier.rateLimit.requests} requests per ${tier.rateLimit.perSeconds} s; retry after ${wait} s`, {
        'retry-after': String(wait),
      });
    }
    return payload;
  });

  app.addHook('preHandler', async (request, reply) => {
    const s = request.bulwark;
    if (!s.key || s.kind !== 'infer' || !s.samples) return;
    const tier = tierOf(s.key.tier);
    const t = forTier(s.key.tier, tier);
    const n = s.samples.shape[0];
    const now = new Date();
    const spent: [Limiter, string][] = [];
    for (const [which, limiter, cap] of [
      ['day', t.day, tier.budget?.samplesPerDay],
      ['month', t.month, tier.budget?.samplesPerMonth],
    ] as const) {
      if (!limiter || !cap) continue;
      const p = period(which, now);
      const key = `${s.key.id}:${p.label}`;
      try {
        const res = await limiter.consume(key, n);
        spent.push([limiter, key]);
        reply.header(`X-Budget-Remaining-${which === 'day' ? 'Day' : 'Month'}`, String(res.remainingPoints));
      } catch (e) {
        // Give back what this request took, so a refused batch does not eat the budget it was refused for.
        await Promise.all([...spent, [limiter, key] as [Limiter, string]].map(([l, k]) => l.reward(k, n).catch(() => undefined)));
        if (!isLimitRes(e)) throw unavailable(e);
        const left = Math.max(0, cap - (e.consumedPoints - n));
        const wait = Math.max(1, Math.ceil((p.endsAt - now.getTime()) / 1000));
        const why = n > cap ? `a batch of ${n} samples is over the whole ${which}ly budget of ${cap}` : `${n} samples asked, ${left} of ${cap} left this ${which} (UTC)`;
        throw new GatewayError(429, 'budget_exhausted', `key ${s.key.id} has spent its query budget: ${why}; retry after ${wait} s`, {
          'retry-after': String(wait),
          [`x-budget-remaining-${which}`]: String(left),
        });
      }
    }
  });
});
