import Fastify, { type FastifyInstance, type FastifyPluginAsync } from 'fastify';
import type { Redis } from 'ioredis';
import type { LedgerStore } from '../provenance/index.js';
import { defaultPolicy, type GatewayPolicy } from './policy-file.js';
import type { ModelRegistry } from './registry.js';
import type { GatewayStore } from './store/types.js';
import { adminRoutes } from './plugins/admin.js';
import { auditPlugin } from './plugins/audit.js';
import { authPlugin } from './plugins/auth.js';
import { contextPlugin } from './plugins/context.js';
import { errorsPlugin } from './plugins/errors.js';
import { limitsPlugin } from './plugins/limits.js';
import { metricsPlugin } from './plugins/metrics.js';
import { policyPlugin } from './plugins/policy.js';
import { oipRoutes } from './plugins/routes.js';
import { validationPlugin } from './plugins/validation.js';
import { watchPlugin, type WatchInputs } from './watch/plugin.js';

/** What every gateway plugin can reach through `app.gateway`. */
export interface GatewayContext {
  registry: ModelRegistry;
  store: GatewayStore;
  ledger: LedgerStore;
  policy: GatewayPolicy;
  redis?: Redis;
}

declare module 'fastify' {
  interface FastifyInstance {
    gateway: GatewayContext;
  }
}

/** An extra plugin (monitoring, extraction detection, …), registered after the core plugins and before the routes. */
export interface GatewayExtension {
  plugin: FastifyPluginAsync<Record<string, unknown>>;
  options?: Record<string, unknown>;
}

export interface GatewayOptions {
  registry: ModelRegistry;
  store: GatewayStore;
  ledger: LedgerStore;
  /** Default: defaultPolicy(). */
  policy?: GatewayPolicy;
  /** Shared limit counters (scale-out); default in memory. */
  redis?: Redis;
  /** Prefix of the limit counters' keys. Default 'bulwark'. */
  limitsPrefix?: string;
  /** Public key for versions loaded through the admin route. */
  pub?: string;
  allowUnsigned?: boolean;
  /** Take the client address from X-Forwarded-For (only behind a proxy you run). */
  trustProxy?: boolean;
  /** Fastify's logger: false (default) or true / pino options. */
  logger?: boolean | Record<string, unknown>;
  extensions?: GatewayExtension[];
  /** For the policy's monitoring section: the training data, the webhook secret, more rules. */
  watch?: WatchInputs;
  /** Export process metrics too. Default true. */
  processMetrics?: boolean;
}

/**
 * Assembles the gateway from its plugins, in the order their hooks must run: request state,
 * errors, limits (client address, then key), auth, validation, output policy, audit, metrics;
 * then the monitoring (when the policy has a monitoring section), extensions, then the routes. Each plugin acts only on the route kinds it cares about.
 */
export async function createGateway(opts: GatewayOptions): Promise<FastifyInstance> {
  const policy = opts.policy ?? defaultPolicy();
  const app = Fastify({
    logger: opts.logger ?? false,
    bodyLimit: policy.validation.maxBodyBytes,
    trustProxy: opts.trustProxy ?? false,
    return503OnClosing: true,
    // The watch plugin fits its OOD and drift references at start-up, which on a busy machine can
    // outlast Fastify's 10 s default for one plugin.
    pluginTimeout: 120_000,
    // Path tricks: a model name longer than any real one is simply not found.
    routerOptions: { maxParamLength: 200, ignoreTrailingSlash: true },
    // Malformed URLs and headers answer {"error": …} like everything else.
    frameworkErrors: (error, _request, reply) => {
      const r = reply as unknown as { code(n: number): { type(t: string): { send(b: string): void } } };
      const message = error.message.length > 160 ? `${error.message.slice(0, 160)}…` : error.message;
      r.code(400).type('application/json').send(JSON.stringify({ error: `bad request: ${message}` }));
    },
    // Malformed HTTP (before any route) gets the same {"error": …} shape, then the connection closes.
    clientErrorHandler: (error, socket) => {
      if (!socket.writable || (error as NodeJS.ErrnoException).code === 'ECONNRESET') return void socket.destroy();
      const tooBig = (error as NodeJS.ErrnoException).code === 'HPE_HEADER_OVERFLOW';
      const body = JSON.stringify({ error: tooBig ? 'the request headers are too large' : 'malformed HTTP request' });
      socket.end(`HTTP/1.1 ${tooBig ? '431 Request Header Fields Too Large' : '400 Bad Request'}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
    },
  });
  app.decorate('gateway', { registry: opts.registry, store: opts.store, ledger: opts.ledger, policy, ...(opts.redis ? { redis: opts.redis } : {}) });
  await app.register(contextPlugin);
  await app.register(errorsPlugin);
  await app.register(limitsPlugin, { policy, ...(opts.redis ? { redis: opts.redis } : {}), prefix: opts.limitsPrefix ?? 'bulwark' });
  await app.register(authPlugin, { store: opts.store });
  await app.register(validationPlugin, { registry: opts.registry, rules: policy.validation });
  await app.register(policyPlugin, { policy });
  await app.register(auditPlugin, { ledger: opts.ledger });
  await app.register(metricsPlugin, { processMetrics: opts.processMetrics ?? true });
  if (policy.monitoring) await app.register(watchPlugin, { ...opts.watch, monitoring: policy.monitoring, prefix: opts.watch?.prefix ?? opts.limitsPrefix ?? 'bulwark' });
  for (const ext of opts.extensions ?? []) await app.register(ext.plugin, ext.options ?? {});
  await app.register(oipRoutes, { registry: opts.registry, policy });
  await app.register(adminRoutes, { registry: opts.registry, ...(opts.pub ? { pub: opts.pub } : {}), allowUnsigned: opts.allowUnsigned ?? false });
  return app;
}
