import type { FastifyInstance } from 'fastify';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { shared } from './context.js';

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Registry;
  }
}

export interface MetricsOptions extends Record<string, unknown> {
  /** Also export process metrics (memory, event-loop lag, …). Default true. */
  processMetrics?: boolean;
}

/**
 * Prometheus metrics on `/metrics` (key with the metrics scope). Labels are the model, its
 * version and the outcome — values the server chose, never anything a client typed (an
 * unknown model is '-'), and never a key.
 */
export const metricsPlugin = shared('bulwark-metrics', async (app: FastifyInstance, opts: MetricsOptions) => {
  const registry = new Registry();
  if (opts.processMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'bulwark_' });
  const requests = new Counter({
    name: 'bulwark_requests_total',
    help: 'Requests to model routes, by model, version and outcome',
    labelNames: ['model', 'version', 'outcome'] as const,
    registers: [registry],
  });
  const samples = new Counter({
    name: 'bulwark_samples_total',
    help: 'Rows answered, by model and version',
    labelNames: ['model', 'version'] as const,
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'bulwark_request_duration_seconds',
    help: 'Time from request to response, by model and outcome',
    labelNames: ['model', 'outcome'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  app.decorate('metrics', registry);

  app.addHook('onResponse', async (request, reply) => {
    const s = request.bulwark;
    if (!s || s.kind === 'health' || s.kind === 'metrics') return;
    const model = s.model?.name ?? '-';
    const version = s.model?.version ?? '-';
    const outcome = s.outcome ?? (reply.statusCode < 400 ? 'ok' : 'error');
    requests.inc({ model, version, outcome });
    if (outcome === 'ok' && s.samples) samples.inc({ model, version }, s.samples.shape[0]);
    latency.observe({ model, outcome }, Number(process.hrtime.bigint() - s.start) / 1e9);
  });

  app.get('/metrics', { config: { bulwark: 'metrics' } }, async (_request, reply) => {
    reply.type(registry.contentType);
    return registry.metrics();
  });
});
