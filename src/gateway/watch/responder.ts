import os from 'node:os';
import type { FastifyBaseLogger } from 'fastify';
import type { Redis } from 'ioredis';
import type { EntryDraft, JsonValue, LedgerStore } from '../../provenance/index.js';
import type { KeyRestriction } from '../keys.js';
import type { GatewayStore } from '../store/types.js';
import { KEY_ACTIONS, type Alert, type AlertDraft, type ResponseAction } from './alerts.js';
import type { WebhookSender } from './webhook.js';

export const ALERT_KIND = 'gateway.alert';
export const RESPONSE_KIND = 'gateway.response';

const REPLICA = `${os.hostname()}:${process.pid}`;

/** What fired: a rule of the policy, its detector, and for per-key rules the key. */
export interface AlertEvent {
  rule: string;
  detector: string;
  key: string | null;
  model: string | null;
  version: string | null;
  score: number;
  threshold: number;
  detail: string;
}

/**
 * Which (rule, key) pairs were already answered, so a key that stays flagged is answered once.
 * In Redis when replicas share detector state, else in this process.
 */
export interface Claims {
  /** True when this call claimed it (first), false when someone had. */
  claim(id: string, at: number): Promise<boolean>;
  /** When it was claimed, or null. */
  claimedAt(id: string): Promise<number | null>;
  /** Moves the claim's time (after the responses are in place). */
  set(id: string, at: number): Promise<void>;
  release(id: string): Promise<void>;
}

export function memoryClaims(): Claims {
  const m = new Map<string, number>();
  return {
    async claim(id, at) {
      if (m.has(id)) return false;
      m.set(id, at);
      return true;
    },
    async claimedAt(id) {
      return m.get(id) ?? null;
    },
    async set(id, at) {
      m.set(id, at);
    },
    async release(id) {
      m.delete(id);
    },
  };
}

export function redisClaims(redis: Redis, prefix: string): Claims {
  const k = (id: string) => `${prefix}:claim:${id}`;
  return {
    async claim(id, at) {
      return (await redis.set(k(id), String(at), 'NX')) === 'OK';
    },
    async claimedAt(id) {
      const v = await redis.get(k(id));
      return v === null ? null : Number(v);
    },
    async set(id, at) {
      await redis.set(k(id), String(at));
    },
    async release(id) {
      await redis.del(k(id));
    },
  };
}

export interface ResponderOptions {
  store: GatewayStore;
  ledger: LedgerStore;
  webhook?: WebhookSender;
  throttle: { requests: number; perSeconds: number };
  log: FastifyBaseLogger;
  /** Told of every alert raised (metrics). */
  onAlert?: (event: AlertEvent) => void;
}

/**
 * Carries out the policy's responses to one alert: keeps it in the alert list, restricts the
 * key in the store (where every replica reads it on the key's next request), posts the
 * webhook, and writes each step into the audit ledger.
 */
export class Responder {
  constructor(private readonly opts: ResponderOptions) {}

  async respond(event: AlertEvent, actions: readonly ResponseAction[]): Promise<Alert | AlertDraft> {
    const { store, ledger, log } = this.opts;
    const at = new Date().toISOString();
    const draft: AlertDraft = { at, ...event, responses: [...actions], replica: REPLICA };
    let alert: Alert | AlertDraft = draft;
    this.opts.onAlert?.(event);
    if (actions.includes('alert')) alert = await store.addAlert(draft);
    const entries: EntryDraft[] = [{ kind: ALERT_KIND, actor: 'bulwark-gateway', payload: alertPayload(alert) }];
    const patch = restrictionFor(event, actions, this.opts.throttle, at);
    if (patch && event.key !== null) {
      const record = await store.restrictKey(event.key, patch);
      for (const action of actions.filter((a) => KEY_ACTIONS.includes(a))) {
        entries.push({
          kind: RESPONSE_KIND,
          actor: 'bulwark-gateway',
          payload: {
            action,
            at,
            key: event.key,
            rule: event.rule,
            detector: event.detector,
            applied: record !== null,
            restriction: (record?.restriction ?? null) as unknown as JsonValue,
            replica: REPLICA,
          },
        });
      }
      if (!record) log.warn({ key: event.key }, 'monitoring flagged a key the store no longer has');
    }
    await ledger.appendMany(entries);
    if (actions.includes('webhook') && this.opts.webhook) {
      const queued = this.opts.webhook.send({ type: 'bulwark.alert', sentAt: new Date().toISOString(), alert }, (d) => {
        ledger
          .append({
            kind: RESPONSE_KIND,
            actor: 'bulwark-gateway',
            payload: { action: 'webhook', at: new Date().toISOString(), key: event.key, rule: event.rule, detector: event.detector, alertAt: at, ...d, replica: REPLICA },
          })
          .catch((e: unknown) => log.error({ err: e }, 'audit log append failed for a webhook delivery'));
        if (!d.delivered) log.error({ attempts: d.attempts, status: d.status, error: d.error }, 'alert webhook not delivered');
      });
      if (!queued) log.error('alert webhook queue full or closed; delivery dropped');
    }
    return alert;
  }

  /** An admin lifted a key's restrictions: the log says who and when. */
  async restored(keyId: string, by: string, previous: KeyRestriction | null): Promise<void> {
    await this.opts.ledger.append({
      kind: RESPONSE_KIND,
      actor: by,
      payload: { action: 'restore', at: new Date().toISOString(), key: keyId, previous: previous as unknown as JsonValue, replica: REPLICA },
    });
  }
}

function alertPayload(a: Alert | AlertDraft): { [k: string]: JsonValue } {
  return { ...(a as unknown as { [k: string]: JsonValue }), listed: 'id' in a };
}

export function restrictionFor(event: AlertEvent, actions: readonly ResponseAction[], throttle: { requests: number; perSeconds: number }, at: string): KeyRestriction | null {
  const degrade = actions.includes('degrade');
  const misinform = actions.includes('misinform');
  const slow = actions.includes('throttle');
  const suspend = actions.includes('suspend');
  if (!degrade && !misinform && !slow && !suspend) return null;
  return {
    ...(degrade ? { labelOnly: true } : {}),
    ...(misinform ? { misinform: true } : {}),
    ...(slow ? { throttle: { ...throttle } } : {}),
    ...(suspend ? { suspended: true } : {}),
    by: `${event.rule}/${event.detector}`,
    reason: event.detail,
    since: at,
  };
}
