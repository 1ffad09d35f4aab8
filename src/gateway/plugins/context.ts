import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { Samples } from '../../core/index.js';
import type { Outcome } from '../errors.js';
import type { ApiKeyRecord, Scope } from '../keys.js';
import type { ModelVersion } from '../registry.js';

/**
 * What kind of route a request hit, set in each route's `config.bulwark`. Plugins act on the
 * kinds they care about, so each can be registered (and tested) alone in front of any routes.
 */
export type RouteKind = 'health' | 'model' | 'infer' | 'admin' | 'metrics';

/** The scope a key needs for each kind of route; health routes need no key. */
export const ROUTE_SCOPE: Record<RouteKind, Scope | null> = { health: null, model: 'infer', infer: 'infer', admin: 'admin', metrics: 'metrics' };

/** Per-request state the plugins share, on `request.bulwark`. */
export interface RequestState {
  /** process.hrtime.bigint() when the request arrived. */
  start: bigint;
  receivedAt: string;
  kind?: RouteKind;
  key?: ApiKeyRecord;
  /** The model version this request uses, fixed once resolved (a live switch never changes it). */
  model?: ModelVersion;
  /** SHA-256 of the raw request body. */
  inputDigest?: string;
  /** The validated input. */
  samples?: Samples;
  /**
   * When the key's rate-limit window that admitted this request closes (ISO time). The audit log
   * keeps it, so admissions can be counted per window: exactly the limit in each, or a fault.
   */
  rateWindowEndsAt?: string;
  /** The client's request id, echoed back. */
  requestId?: string;
  /** The model's own probabilities (before the output policy): for monitors. */
  probabilities?: Samples;
  /** What the client got back, after the output policy. */
  output?: Samples;
  /** Set by the policy plugin: turns the model's probabilities into what this key may see. */
  shapeOutput?: (probabilities: Samples) => Samples;
  /** The output policy applied, described (told to the client). */
  policy?: string;
  /** The answer was deliberately wrong (the key's 'misinform' restriction); never told to the client. */
  misinformed?: boolean;
  outcome?: Outcome;
  /** The error message sent back, when not 2xx. */
  error?: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    bulwark: RequestState;
  }
  interface FastifyContextConfig {
    bulwark?: RouteKind;
  }
}

export function routeKind(request: FastifyRequest): RouteKind | undefined {
  return request.bulwark.kind;
}

/**
 * Marks a plugin as sharing its parent's scope (what the fastify-plugin package does), so its
 * hooks and decorations apply to the routes registered after it.
 */
export function shared<O extends Record<string, unknown>>(name: string, fn: FastifyPluginAsync<O>): FastifyPluginAsync<O> {
  const f = fn as FastifyPluginAsync<O> & Record<symbol, unknown>;
  f[Symbol.for('skip-override')] = true;
  f[Symbol.for('fastify.display-name')] = name;
  return f;
}

/** Sets up `request.bulwark` for every request; register before any other gateway plugin. */
export const contextPlugin = shared('bulwark-context', async (app: FastifyInstance) => {
  app.decorateRequest('bulwark', null as unknown as RequestState);
  app.addHook('onRequest', async (request) => {
    request.bulwark = { start: process.hrtime.bigint(), receivedAt: new Date().toISOString(), kind: request.routeOptions.config?.bulwark };
  });
});
