import os from 'node:os';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { sha256Hex, type JsonValue, type LedgerStore } from '../../provenance/index.js';
import { shared } from './context.js';

export interface AuditOptions extends Record<string, unknown> {
  ledger: LedgerStore;
  /** Entry kind. Default 'gateway.request'. */
  kind?: string;
}

export const AUDIT_KIND = 'gateway.request';

const REPLICA = `${os.hostname()}:${process.pid}`;

/** What the log keeps of a request: who (key id, never the key), what, the digests, the decision. */
export function auditRecord(request: FastifyRequest, reply: FastifyReply, payload: unknown): { [k: string]: JsonValue } {
  const s = request.bulwark;
  const body = typeof payload === 'string' || Buffer.isBuffer(payload) ? payload : undefined;
  const url = request.url.length > 200 ? `${request.url.slice(0, 200)}…` : request.url;
  return {
    receivedAt: s.receivedAt,
    method: request.method,
    url,
    client: request.ip,
    key: s.key?.id ?? null,
    tier: s.key?.tier ?? null,
    model: s.model?.name ?? null,
    version: s.model?.version ?? null,
    modelSha256: s.model?.sha256 ?? null,
    samples: s.samples ? s.samples.shape[0] : null,
    policy: s.policy ?? null,
    ...(s.rateWindowEndsAt !== undefined ? { rateWindowEndsAt: s.rateWindowEndsAt } : {}),
    ...(s.misinformed ? { misinformed: true } : {}),
    status: reply.statusCode,
    decision: s.outcome ?? (reply.statusCode < 400 ? 'ok' : 'error'),
    ...(s.error !== undefined ? { error: s.error.slice(0, 300) } : {}),
    inputSha256: s.inputDigest ?? null,
    outputSha256: body !== undefined ? sha256Hex(body) : null,
    replica: REPLICA,
    latencyMs: Math.round(Number(process.hrtime.bigint() - s.start) / 1e3) / 1e3,
  };
}

/**
 * The audit log: every request but health checks and metric scrapes goes into the hash-chained
 * ledger. A 2xx answer is held until its entry is durable (the ledger's group commit batches
 * concurrent requests into one transaction); if the entry cannot be written the client gets 503
 * instead, so no answer the log does not know of ever leaves. Refusals are logged without
 * holding the answer.
 */
export const auditPlugin = shared('bulwark-audit', async (app: FastifyInstance, opts: AuditOptions) => {
  const kind = opts.kind ?? AUDIT_KIND;
  app.addHook('onSend', async (request, reply, payload) => {
    const s = request.bulwark;
    if (!s || s.kind === 'health' || s.kind === 'metrics') return payload;
    const draft = { kind, actor: s.key ? `key:${s.key.id}` : 'anonymous', payload: auditRecord(request, reply, payload) };
    if (reply.statusCode >= 300) {
      opts.ledger.append(draft).catch((e: unknown) => request.log.error({ err: e }, 'audit log append failed for a refused request'));
      return payload;
    }
    try {
      await opts.ledger.append(draft);
      return payload;
    } catch (e) {
      request.log.error({ err: e }, 'audit log append failed; answering 503');
      s.outcome = 'unavailable';
      s.error = 'the audit log cannot be written; the answer was withheld';
      reply.code(503).header('retry-after', '1').type('application/json');
      return JSON.stringify({ error: s.error });
    }
  });
});
