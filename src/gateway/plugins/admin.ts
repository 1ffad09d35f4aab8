import type { FastifyInstance, FastifyRequest } from 'fastify';
import { isBulwarkError } from '../../core/index.js';
import { GatewayError, invalid } from '../errors.js';
import type { JsonValue } from '../../provenance/index.js';
import type { KeyRestriction } from '../keys.js';
import { loadModelVersion, type ModelRegistry, type ModelVersion } from '../registry.js';
import { MAX_ALERT_LIMIT } from '../watch/alerts.js';
import { RESPONSE_KIND } from '../watch/responder.js';

export interface AdminRoutesOptions extends Record<string, unknown> {
  registry: ModelRegistry;
  /** How new versions are admitted: the server's --pub, or --allow-unsigned. */
  pub?: string;
  allowUnsigned?: boolean;
}

type Params = { name: string };

function describe(v: ModelVersion) {
  return { version: v.version, source: v.source, admitted: v.admitted, sha256: v.sha256 ?? null, loadedAt: v.loadedAt };
}

function bodyField(request: FastifyRequest, field: string): string | undefined {
  const b = request.body;
  const v = typeof b === 'object' && b !== null ? (b as Record<string, unknown>)[field] : undefined;
  if (v !== undefined && typeof v !== 'string') throw invalid(`rule 'request': '${field}' must be a string`);
  return v as string | undefined;
}

async function restoredEntry(app: FastifyInstance, id: string, by: string, previous: KeyRestriction | null): Promise<void> {
  await app.gateway.ledger.append({ kind: RESPONSE_KIND, actor: by, payload: { action: 'restore', at: new Date().toISOString(), key: id, previous: previous as unknown as JsonValue } });
}

/**
 * Admin routes (admin scope): list models, switch the live version, roll back, load a new
 * version. A switch changes which version the next request resolves to; requests already
 * running keep the version they resolved, so none is dropped.
 */
export async function adminRoutes(app: FastifyInstance, opts: AdminRoutesOptions): Promise<void> {
  const { registry } = opts;
  const admin = { config: { bulwark: 'admin' as const } };
  const state = (name: string) => ({ name, live: registry.live(name), versions: registry.versions(name).map(describe) });

  app.get('/admin/models', admin, async () => ({ models: registry.names().map(state) }));
  app.get<{ Params: Params }>('/admin/models/:name', admin, async (request) => state(registry.resolve(request.params.name).name));

  app.post<{ Params: Params }>('/admin/models/:name/live', admin, async (request) => {
    const version = bodyField(request, 'version');
    if (!version) throw invalid("rule 'request': send {\"version\": \"V\"}");
    request.bulwark.model = registry.resolve(request.params.name, version);
    await registry.switchLive(request.params.name, version);
    return state(request.params.name);
  });

  app.post<{ Params: Params }>('/admin/models/:name/rollback', admin, async (request) => {
    await registry.rollback(request.params.name);
    return state(request.params.name);
  });

  // Monitoring: alerts (kept in the store, so every replica lists them all), detector status, and lifting a key's restrictions.
  app.get<{ Querystring: { since?: string; limit?: string } }>('/admin/alerts', admin, async (request) => {
    const q = request.query;
    let since: string | undefined;
    if (q.since !== undefined) {
      const t = Date.parse(q.since);
      if (Number.isNaN(t)) throw invalid(`rule 'request': since '${String(q.since).slice(0, 40)}' is not a date; give an ISO time such as 2026-01-31T12:00:00Z`);
      since = new Date(t).toISOString();
    }
    let limit: number | undefined;
    if (q.limit !== undefined) {
      limit = Number(q.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > MAX_ALERT_LIMIT) throw invalid(`rule 'request': limit must be an integer from 1 to ${MAX_ALERT_LIMIT}`);
    }
    const alerts = await app.gateway.store.listAlerts({ ...(since ? { since } : {}), ...(limit ? { limit } : {}) });
    return { alerts };
  });

  app.get('/admin/monitor', admin, async () => (app.hasDecorator('watch') ? app.watch.status() : { enabled: false, reason: 'the policy has no monitoring section' }));

  app.post<{ Params: { id: string } }>('/admin/keys/:id/restore', admin, async (request) => {
    const id = request.params.id;
    const before = await app.gateway.store.getKey(id);
    if (!before) throw new GatewayError(404, 'not_found', `no API key with id '${id.slice(0, 40)}'; see 'bulwark keys list'`);
    const after = await app.gateway.store.restoreKey(id);
    const by = `key:${request.bulwark.key?.id ?? 'unknown'}`;
    if (app.hasDecorator('watch')) await app.watch.forget(id, by, before.restriction);
    else await restoredEntry(app, id, by, before.restriction);
    return { id, restored: before.restriction !== null, previous: before.restriction, restriction: after?.restriction ?? null };
  });

  app.post<{ Params: Params }>('/admin/models/:name/versions', admin, async (request) => {
    const source = bodyField(request, 'source');
    const sig = bodyField(request, 'sig');
    if (!source) throw invalid("rule 'request': send {\"source\": \"DIR|FILE.onnx\", \"sig\": \"FILE\", \"version\": \"V\"}");
    const name = request.params.name;
    const existing = registry.has(name) ? registry.versions(name).map((v) => v.version) : [];
    const version = bodyField(request, 'version') ?? String(existing.length + 1);
    let v: ModelVersion;
    try {
      v = await loadModelVersion(source, { name, version, pub: sig !== undefined ? opts.pub : undefined, sig, allowUnsigned: opts.allowUnsigned });
      registry.add(v);
    } catch (e) {
      if (isBulwarkError(e)) throw new GatewayError(e.code === 'E_FILE_NOT_FOUND' ? 404 : 400, 'invalid', e.message);
      throw e;
    }
    return state(name);
  });
}
