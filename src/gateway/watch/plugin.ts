import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { BulwarkError, type Samples } from '../../core/index.js';
import type { DetectorVerdict } from '../../monitor/index.js';
import type { ApiKeyRecord } from '../keys.js';
import { suspendedError } from '../plugins/auth.js';
import { shared } from '../plugins/context.js';
import type { ModelVersion } from '../registry.js';
import type { ChainItem, ChainResult, WatchRule } from './chain.js';
import { Batcher } from './batcher.js';
import { localEngine, workerEngine, type DetectionEngine } from './engine.js';
import { watchMetrics, type WatchMetrics } from './metrics.js';
import { needsReference, restrictsKeys, type MonitoringPolicy } from './policy.js';
import { Responder, memoryClaims, redisClaims, type AlertEvent, type Claims } from './responder.js';
import { WebhookSender } from './webhook.js';

/** The model's training data, for drift, OOD and an 'auto' similarity threshold. */
export interface WatchReference {
  /** Training features: the OOD fit. */
  train: Samples;
  /**
   * Held-out rows: the drift reference (the model's confidence on rows it never trained on is
   * what live traffic should look like; on its own training rows it is higher), and the
   * calibration of the OOD and similarity thresholds.
   */
  heldOut: Samples;
  /** Where it came from, for /admin/monitor. */
  source: string;
}

export type { WatchRule } from './chain.js';

/** What the monitoring takes beside the policy's section. */
export interface WatchInputs {
  reference?: WatchReference;
  /** The webhook's HMAC secret (read from monitoring.webhook.secretEnv by the caller). */
  webhookSecret?: string;
  /** Detector state shared by replicas; default the gateway's --redis, else memory. */
  redis?: Redis;
  /** Prefix of the Redis keys. Default 'bulwark'. */
  prefix?: string;
  /** More per-key rules, beside those of the policy (run in the server's thread). */
  rules?: WatchRule[];
  /** Run the policy's detectors in a thread of their own (default), or in the server's thread. */
  detectionThread?: boolean;
}

export interface WatchOptions extends WatchInputs, Record<string, unknown> {
  monitoring: MonitoringPolicy;
}

/** What the admin routes reach through `app.watch`. */
export interface WatchHandle {
  status(): Promise<Record<string, unknown>>;
  /** Forgets what the detectors hold about a key (after an admin lifts its restrictions). */
  forget(keyId: string, by: string, previous: ApiKeyRecord['restriction']): Promise<void>;
  /** Resolves when every row answered so far has been through the detectors. */
  idle(): Promise<void>;
}

declare module 'fastify' {
  interface FastifyInstance {
    watch: WatchHandle;
  }
}

interface Item {
  key: ApiKeyRecord;
  receivedAt: number;
  model: ModelVersion;
  x: Samples;
  probabilities: Samples;
}

const ruleId = (rule: string, detector: string) => `${rule}/${detector}`;

/**
 * Watches every answered inference: its rows and the model's own probabilities go to the
 * detectors after the answer is sent, batched across requests, in a thread of their own. A
 * key's next request waits for its previous rows to have been seen, so a response (degrade, misinform,
 * throttle, suspend) holds from that request on; responses are stored with the key, where
 * every replica reads them.
 */
export const watchPlugin = shared('bulwark-watch', async (app: FastifyInstance, opts: WatchOptions) => {
  const { store, ledger, registry } = app.gateway;
  const m = opts.monitoring;
  const redis = opts.redis ?? app.gateway.redis;
  const prefix = `${opts.prefix ?? 'bulwark'}:watch`;
  const missing = needsReference(m);
  if (missing.length > 0 && !opts.reference) {
    throw new BulwarkError('E_USAGE', `${missing.join(' and ')} compare traffic with the model's training data: give the gateway a reference (watch.reference; --reference FILE for bulwark serve)`);
  }
  const first = registry.names()[0];
  const cfg = {
    monitoring: m,
    ...(opts.reference ? { train: opts.reference.train, heldOut: opts.reference.heldOut } : {}),
    numClasses: first ? registry.resolve(first).model.info.numClasses : 2,
  };
  const where = { ...(redis ? { redis } : {}), prefix };
  const open = (monitoring: MonitoringPolicy) => (opts.detectionThread === false ? localEngine({ ...cfg, monitoring }, where) : workerEngine({ ...cfg, monitoring }, where));
  // Two threads: the per-key detectors, whose verdicts a key's next request waits for, and drift,
  // whose window tests (a few hundred ms each) must never hold a request up.
  const { drift: driftRule, ...perKey } = m;
  const engine: DetectionEngine = await open(perKey);
  let driftEngine: DetectionEngine | undefined;
  try {
    if (driftRule) driftEngine = await open({ ...m, extraction: [], drift: driftRule, ood: undefined });
  } catch (e) {
    await engine.close();
    throw e;
  }
  const extra: WatchRule[] = opts.rules ?? [];
  const claims: Claims = redis ? redisClaims(redis, prefix) : memoryClaims();
  const prepared = new Set<string>();
  const prepare = async (v: ModelVersion) => {
    const id = `${v.name}@${v.version}`;
    if (!m.drift || !opts.reference || prepared.has(id)) return;
    prepared.add(id);
    await driftEngine?.prepare(v.name, v.version, await v.model.predict(opts.reference.heldOut));
  };
  const closeEngines = async () => {
    await engine.close();
    await driftEngine?.close();
  };
  try {
    for (const name of registry.names()) for (const v of registry.versions(name)) await prepare(v);
  } catch (e) {
    await closeEngines();
    throw e;
  }
  const status = async () => {
    const [a, b] = await Promise.all([engine.status(), driftEngine?.status()]);
    return { ...a, ...(b?.drift ? { drift: b.drift, driftShares: b.driftShares } : {}) };
  };
  const initial = await status();

  const webhook = m.webhook && opts.webhookSecret ? new WebhookSender({ ...m.webhook, secret: opts.webhookSecret }) : undefined;
  /** The latest status numbers, for the metrics (a scrape must not wait for the detection thread). */
  let latest = initial;
  let refreshedAt = 0;
  const metrics: WatchMetrics | undefined = app.hasDecorator('metrics') ? watchMetrics(app.metrics, { ...(webhook ? { webhook } : {}), drift: () => latest.driftShares ?? [] }) : undefined;
  const responder = new Responder({ store, ledger, throttle: m.throttle, log: app.log, ...(webhook ? { webhook } : {}), onAlert: (e) => metrics?.alert(e) });
  const rules = [...initial.rules, ...extra.map((r) => ({ rule: r.rule, detector: r.detector.name, respond: r.respond }))];
  const respondOf = new Map(rules.map((r) => [ruleId(r.rule, r.detector), r.respond]));
  /** Keys flagged, per rule: what /admin/monitor and the flagged-keys gauge show (this process's view). */
  const flagged = new Map<string, Map<string, DetectorVerdict & { flaggedAt: string }>>();
  for (const r of rules) flagged.set(ruleId(r.rule, r.detector), new Map());
  metrics?.flaggedFrom(flagged);
  /** Keys this process restricted: a request that raced the restriction re-reads its key. */
  const restrictedAt = new Map<string, number>();
  const stats = { rows: 0, batches: 0, errors: 0 };

  const onFlag = async (rule: string, v: DetectorVerdict, item: Item) => {
    const rid = ruleId(rule, v.detector);
    const respond = respondOf.get(rid) ?? ['alert'];
    const id = `${rule}:${v.detector}:${v.key}`;
    const when = await claims.claimedAt(id);
    if (when !== null) {
      // Someone lifted the key's restrictions since (e.g. `bulwark keys restore`): start afresh.
      if (restrictsKeys(respond) && item.key.restriction === null && item.receivedAt > when) {
        await resetKey(v.key);
        await claims.release(id);
        flagged.get(rid)?.delete(v.key);
        restrictedAt.delete(v.key);
      }
      return;
    }
    if (!(await claims.claim(id, Number.MAX_SAFE_INTEGER))) return;
    flagged.get(rid)?.set(v.key, { ...v, flaggedAt: new Date().toISOString() });
    const event: AlertEvent = { rule, detector: v.detector, key: v.key, model: item.model.name, version: item.model.version, score: v.score, threshold: v.threshold, detail: v.detail };
    await responder.respond(event, respond);
    // Requests received from now on read the restriction from the store.
    await claims.set(id, Date.now());
    if (restrictsKeys(respond)) restrictedAt.set(v.key, Date.now());
  };

  const resetKey = async (key: string) => {
    await engine.reset(key);
    for (const r of extra) await r.detector.reset(key);
  };

  const toChain = (batch: Item[]): ChainItem[] =>
    batch.map((i) => ({ key: i.key.id, model: i.model.name, version: i.model.version, x: i.x.data, probabilities: i.probabilities.data, rows: i.x.shape[0], shape: i.x.shape.slice(1) }));

  const failed = (rule: string, detector: string, e: unknown) => {
    stats.errors++;
    metrics?.error(rule, detector);
    app.log.error({ err: e, rule, detector }, 'monitoring: a detector failed; the rows were not seen by it');
  };

  const perKeyBatch = async (batch: Item[]) => {
    const last = new Map<string, Item>();
    for (const item of batch) last.set(item.key.id, item);
    const items = toChain(batch);
    let result: ChainResult;
    try {
      result = await engine.observe(items);
    } catch (e) {
      return failed('all', 'engine', e);
    }
    stats.rows += result.rows;
    stats.batches++;
    for (const err of result.errors) failed(err.rule, err.detector, err.message);
    const flags = [...result.flags];
    if (extra.length > 0) {
      const obs = items.flatMap((i) => {
        const d = i.x.length / i.rows;
        const c = i.probabilities.length / i.rows;
        return Array.from({ length: i.rows }, (_, r) => ({ key: i.key, x: i.x.subarray(r * d, (r + 1) * d), probabilities: i.probabilities.subarray(r * c, (r + 1) * c) }));
      });
      for (const r of extra) {
        try {
          for (const v of await r.detector.observe(obs)) if (v.flagged) flags.push({ rule: r.rule, verdict: v });
        } catch (e) {
          failed(r.rule, r.detector.name, e);
        }
      }
    }
    for (const f of flags) {
      try {
        await onFlag(f.rule, f.verdict, last.get(f.verdict.key)!);
      } catch (e) {
        stats.errors++;
        app.log.error({ err: e, rule: f.rule, key: f.verdict.key }, 'monitoring could not carry out its response');
      }
    }
    metrics?.batch(result.rows, result.seconds, result.oodTotals);
  };

  const driftBatch = async (batch: Item[]) => {
    if (!driftEngine) return;
    let result: ChainResult;
    try {
      result = await driftEngine.observe(toChain(batch));
    } catch (e) {
      return failed('drift', 'drift', e);
    }
    for (const err of result.errors) failed(err.rule, err.detector, err.message);
    for (const event of result.drift) {
      await responder.respond(event, driftRule?.respond ?? ['alert']).catch((e: unknown) => app.log.error({ err: e }, 'monitoring could not raise a drift alert'));
    }
    for (const n of result.needs) {
      const v = registry.has(n.model) ? registry.versions(n.model).find((x) => x.version === n.version) : undefined;
      if (v) void prepare(v).catch((e: unknown) => app.log.error({ err: e, model: n.model, version: n.version }, 'drift reference could not be built for this version'));
    }
    // The drift gauges read a snapshot, refreshed at most once a second (status is a round trip to the thread).
    if (result.drift.length > 0 || Date.now() - refreshedAt > 1000) {
      refreshedAt = Date.now();
      const st = await driftEngine.status().catch(() => null);
      if (st) latest = { ...latest, ...(st.drift ? { drift: st.drift, driftShares: st.driftShares } : {}) };
    }
  };

  const logFailure = (e: unknown) => app.log.error({ err: e }, 'monitoring failed');
  const rowsOfItem = { max: m.maxQueuedRows, weight: (i: Item) => i.x.shape[0] };
  const perKeyQueue = new Batcher<Item>(perKeyBatch, logFailure, rowsOfItem);
  const driftQueue = new Batcher<Item>(driftBatch, logFailure, rowsOfItem);
  let droppedLogged = 0;
  /** Per key, its latest rows' batch: the key's next request waits for it. */
  const pending = new Map<string, Promise<void>>();
  const enqueue = (item: Item) => {
    const p = perKeyQueue.push(item);
    if (driftEngine) void driftQueue.push(item);
    if (!p) {
      // The detectors are far behind: these rows go uninspected rather than the API stalling.
      metrics?.dropped(item.x.shape[0]);
      if (Date.now() - droppedLogged > 10_000) {
        droppedLogged = Date.now();
        app.log.warn({ dropped: perKeyQueue.dropped }, `monitoring is behind by over ${m.maxQueuedRows} rows; new rows are not inspected until it catches up`);
      }
      return;
    }
    pending.set(item.key.id, p);
    void p.then(() => {
      if (pending.get(item.key.id) === p) pending.delete(item.key.id);
    });
  };

  app.addHook('onRequest', async (request) => {
    const s = request.bulwark;
    if (!s.key || (s.kind !== 'infer' && s.kind !== 'model')) return;
    const p = pending.get(s.key.id);
    if (p) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([p, new Promise<void>((r) => (timer = setTimeout(r, m.maxWaitMs)))]);
      clearTimeout(timer);
    }
    if (s.key.restriction === null && restrictedAt.has(s.key.id)) {
      const fresh = await store.getKey(s.key.id);
      if (fresh) {
        s.key = fresh;
        if (fresh.restriction?.suspended) throw suspendedError(fresh);
      }
    }
  });

  app.addHook('onSend', async (request, reply, payload) => {
    const s = request.bulwark;
    if (s.kind === 'infer' && reply.statusCode < 300 && s.key && s.model && s.samples && s.probabilities) {
      enqueue({ key: s.key, receivedAt: Date.parse(s.receivedAt), model: s.model, x: s.samples, probabilities: s.probabilities });
    }
    return payload;
  });

  app.addHook('onClose', async () => {
    await perKeyQueue.idle();
    await driftQueue.idle();
    await webhook?.close();
    await closeEngines();
  });

  app.decorate('watch', {
    idle: async () => {
      await perKeyQueue.idle();
      await driftQueue.idle();
    },
    async forget(keyId, by, previous) {
      await resetKey(keyId);
      for (const r of rules) {
        await claims.release(`${r.rule}:${r.detector}:${keyId}`);
        flagged.get(ruleId(r.rule, r.detector))?.delete(keyId);
      }
      restrictedAt.delete(keyId);
      await responder.restored(keyId, by, previous);
    },
    async status() {
      const st = await status();
      latest = st;
      const restricted = (await store.listKeys()).filter((k) => k.restriction !== null).map((k) => ({ id: k.id, name: k.name, tier: k.tier, restriction: k.restriction }));
      return {
        enabled: true,
        rules: rules.map((r) => ({
          ...r,
          ...(st.rules.find((x) => x.rule === r.rule && x.detector === r.detector && x.threshold !== undefined) ?? {}),
          flaggedKeys: [...(flagged.get(ruleId(r.rule, r.detector))?.values() ?? [])],
        })),
        ...(st.ood ? { ood: st.ood } : {}),
        ...(st.drift ? { drift: st.drift } : {}),
        ...(opts.reference ? { reference: { source: opts.reference.source, rows: opts.reference.train.shape[0], heldOut: opts.reference.heldOut.shape[0] } } : {}),
        restrictedKeys: restricted,
        rows: stats.rows,
        droppedRows: perKeyQueue.dropped,
        batches: stats.batches,
        errors: stats.errors,
        ...(webhook ? { webhook: { ...webhook.counts, pending: webhook.queued } } : {}),
        state: redis ? 'redis' : 'memory',
        detection: opts.detectionThread === false ? 'server thread' : 'detection thread',
      };
    },
  } satisfies WatchHandle);
});
