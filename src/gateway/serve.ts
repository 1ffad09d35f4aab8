import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { BulwarkError } from '../core/index.js';
import { redactUrl, type LedgerDurability, type LedgerStore } from '../provenance/index.js';
import { openAuditLedger } from './worker-ledger.js';
import { defaultPolicy, loadPolicyFile } from './policy-file.js';
import { ModelRegistry, loadModelVersion, NAME_RE, type ModelVersion } from './registry.js';
import type { WatchInputs } from './watch/plugin.js';
import type { MonitoringPolicy } from './watch/policy.js';
import { loadWatchReference } from './watch/reference.js';
import { createGateway, type GatewayExtension } from './server.js';
import { openGatewayStore } from './store/open.js';
import type { GatewayStore } from './store/types.js';

export interface ServeOptions {
  /** One or more model specs (DIR | FILE.onnx | URL): versions 1, 2, … of one model. */
  models: string[];
  /** Model name in the URL. Default: from the first model's file or directory name. */
  name?: string;
  /** The version to make live at start. Default: the last one. */
  live?: string;
  /** Signature bundles, one per model, in the same order; with `pub`. */
  sigs?: string[];
  pub?: string;
  allowUnsigned?: boolean;
  /** API key for remote (URL) models. */
  modelApiKey?: string;
  policyFile?: string;
  /** Default 8080; 0 picks a free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** SQLite file for keys and live versions. Default bulwark-gateway.db. */
  store?: string;
  /** PostgreSQL for keys, live versions and (unless `ledger` says otherwise) the audit log. */
  postgres?: string;
  /** Schema for the gateway's PostgreSQL tables and ledger. Default 'public'. */
  pgSchema?: string;
  /** Audit ledger: a SQLite file or postgres:// URL. Default: the --postgres database, else STORE.audit.db. */
  ledger?: string;
  /** SQLite audit log only: 'process' (default) commits to the WAL before answering; 'fsync' waits for the disk too. */
  auditDurability?: LedgerDurability;
  /** Shared rate-limit and budget counters. */
  redis?: string;
  redisPrefix?: string;
  /** How often to pick up live-version switches made through other replicas. Default 1000 ms. */
  liveSyncMs?: number;
  trustProxy?: boolean;
  logger?: boolean;
  extensions?: GatewayExtension[];
  /** Training data for the monitoring's drift and OOD detectors when the model card names none Bulwark ships: a .csv, .jsonl or .npy dataset. */
  reference?: string;
  /** The label column of a CSV/JSONL reference (left out of the features). */
  referenceLabel?: string;
}

export interface RunningGateway {
  app: FastifyInstance;
  /** http://host:port */
  url: string;
  port: number;
  registry: ModelRegistry;
  store: GatewayStore;
  ledger: LedgerStore;
  /** Stops taking requests, lets those in flight finish, flushes the log, closes the stores. */
  close(): Promise<void>;
}

export const DEFAULT_STORE = 'bulwark-gateway.db';

/** Where the audit log goes when --ledger is not given. */
export function defaultLedgerSpec(opts: Pick<ServeOptions, 'store' | 'postgres' | 'ledger'>): string {
  if (opts.ledger) return opts.ledger;
  if (opts.postgres) return opts.postgres;
  const store = opts.store ?? DEFAULT_STORE;
  return `${store.replace(/\.db$/i, '')}.audit.db`;
}

function defaultName(spec: string): string {
  const m = /\/v2\/models\/([^/]+)/.exec(spec);
  const base = m ? decodeURIComponent(m[1]) : path.basename(spec.replace(/[/\\]+$/, '')).replace(/\.(onnx|json)$/i, '');
  const cleaned = base.replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, '');
  return NAME_RE.test(cleaned) ? cleaned : 'model';
}

async function connectRedis(url: string): Promise<Redis> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: 5000 });
  redis.on('error', () => {}); // reconnects on its own; requests meanwhile fail closed with 503
  try {
    await redis.connect();
  } catch (e) {
    redis.disconnect();
    throw new BulwarkError('E_REMOTE', `cannot reach Redis at ${redactUrl(url)}: ${(e as Error).message}`);
  }
  return redis;
}

/** The monitoring's inputs from outside the policy file: the webhook secret and the training data. */
async function watchSetup(m: MonitoringPolicy, source: string, model: ModelVersion, opts: ServeOptions): Promise<WatchInputs> {
  let webhookSecret: string | undefined;
  if (m.webhook) {
    webhookSecret = process.env[m.webhook.secretEnv];
    if (!webhookSecret) {
      throw new BulwarkError('E_USAGE', `${source}: monitoring.webhook signs its posts with the secret in $${m.webhook.secretEnv}, which is not set; export ${m.webhook.secretEnv}=<a long random string shared with the receiver>`);
    }
  }
  const reference = await loadWatchReference(m, model, { ...(opts.reference ? { reference: opts.reference } : {}), ...(opts.referenceLabel ? { label: opts.referenceLabel } : {}) });
  return { ...(reference ? { reference } : {}), ...(webhookSecret ? { webhookSecret } : {}) };
}

/** Opens the stores, loads and verifies the models, and starts listening. */
export async function startGateway(opts: ServeOptions): Promise<RunningGateway> {
  if (opts.models.length === 0) throw new BulwarkError('E_USAGE', '--model is required: a model directory, an .onnx file or an OIP URL');
  const sigs = opts.sigs ?? [];
  if (sigs.length > 0 && sigs.length !== opts.models.length) {
    throw new BulwarkError('E_USAGE', `give one --sig per --model, in the same order (${opts.models.length} models, ${sigs.length} signatures)`);
  }
  if (!opts.allowUnsigned && (!opts.pub || sigs.length === 0)) {
    throw new BulwarkError('E_USAGE', 'models are served only when their signature verifies: give --pub KEY and --sig SIG (one per --model), or --allow-unsigned');
  }
  const policy = opts.policyFile ? await loadPolicyFile(opts.policyFile) : defaultPolicy();
  const name = opts.name ?? defaultName(opts.models[0]);
  const closers: (() => Promise<void>)[] = [];
  const cleanup = async () => {
    for (const c of closers.reverse()) await c().catch(() => {});
  };
  try {
    const store = await openGatewayStore({ store: opts.store, postgres: opts.postgres, schema: opts.pgSchema });
    closers.push(() => store.close());
    const ledger = await openAuditLedger(defaultLedgerSpec(opts), {
      actor: 'bulwark-gateway',
      ...(opts.pgSchema ? { schema: opts.pgSchema } : {}),
      ...(opts.auditDurability ? { durability: opts.auditDurability } : {}),
    });
    closers.push(() => ledger.close());
    const redis = opts.redis ? await connectRedis(opts.redis) : undefined;
    if (redis) closers.push(async () => void redis.disconnect());

    const registry = new ModelRegistry(store);
    for (let i = 0; i < opts.models.length; i++) {
      registry.add(
        await loadModelVersion(opts.models[i], {
          name,
          version: String(i + 1),
          ...(sigs[i] !== undefined ? { sig: sigs[i], pub: opts.pub } : {}),
          allowUnsigned: opts.allowUnsigned,
          ...(opts.modelApiKey ? { apiKey: opts.modelApiKey } : {}),
        }),
      );
    }
    const live = opts.live ?? String(opts.models.length);
    await registry.switchLive(name, live);
    await registry.sync();

    const watch = policy.monitoring ? await watchSetup(policy.monitoring, policy.source, registry.resolve(name), opts) : undefined;
    const app = await createGateway({
      ...(watch ? { watch } : {}),
      registry,
      store,
      ledger,
      policy,
      ...(redis ? { redis } : {}),
      limitsPrefix: opts.redisPrefix ?? 'bulwark',
      ...(opts.pub ? { pub: opts.pub } : {}),
      allowUnsigned: opts.allowUnsigned ?? false,
      trustProxy: opts.trustProxy ?? false,
      logger: opts.logger ?? false,
      extensions: opts.extensions ?? [],
    });
    closers.push(() => app.close());
    const syncMs = opts.liveSyncMs ?? 1000;
    const timer = setInterval(() => void registry.sync().catch(() => {}), syncMs);
    timer.unref();
    closers.push(async () => clearInterval(timer));
    const host = opts.host ?? '127.0.0.1';
    await app.listen({ port: opts.port ?? 8080, host });
    const addr = app.server.address();
    const port = typeof addr === 'object' && addr ? addr.port : (opts.port ?? 8080);
    let closed: Promise<void> | undefined;
    return {
      app,
      url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
      port,
      registry,
      store,
      ledger,
      close: () => (closed ??= cleanup()),
    };
  } catch (e) {
    await cleanup();
    if (e instanceof Error && (e as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new BulwarkError('E_USAGE', `port ${opts.port} on ${opts.host ?? '127.0.0.1'} is in use; choose another with --port`);
    }
    throw e;
  }
}
