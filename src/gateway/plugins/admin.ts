import type { FastifyInstance, FastifyRequest } from 'fastify';
import { isBulwarkError } from '../../core/index.js';
import { GatewayError, invalid } from '../errors.js';
import { loadModelVersion, type ModelRegistry, type ModelVersion } from '../registry.js';

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
