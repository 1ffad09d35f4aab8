import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isBulwarkError } from '../../core/index.js';
import { GatewayError, invalid } from '../errors.js';
import { inferResponse, modelMetadata } from '../oip.js';
import type { GatewayPolicy } from '../policy-file.js';
import type { ModelRegistry } from '../registry.js';
import { inputRange } from './validation.js';

export interface OipRoutesOptions extends Record<string, unknown> {
  registry: ModelRegistry;
  policy: GatewayPolicy;
  /** Readiness beyond "models loaded": the stores answer. */
  ready?: () => Promise<boolean>;
}

type Params = { name: string; version?: string };

/**
 * The Open Inference Protocol v2 routes (REST, JSON tensors). Auth, limits, validation, the
 * output policy and the audit log are other plugins' hooks; these handlers only answer.
 */
export async function oipRoutes(app: FastifyInstance, opts: OipRoutesOptions): Promise<void> {
  const { registry, policy } = opts;
  const health = { config: { bulwark: 'health' as const } };
  const model = { config: { bulwark: 'model' as const } };
  const infer = { config: { bulwark: 'infer' as const } };

  app.get('/v2/health/live', health, async () => ({ live: true }));
  app.get('/v2/health/ready', health, async (_request, reply) => {
    const ok = registry.names().length > 0 && (opts.ready ? await opts.ready().catch(() => false) : true);
    if (!ok) reply.code(503);
    return { ready: ok };
  });
  app.get('/v2', model, async () => ({ name: 'bulwark-gateway', version: '1', extensions: [], models: registry.names() }));

  const metadata = async (request: FastifyRequest<{ Params: Params }>) => {
    const v = registry.resolve(request.params.name, request.params.version);
    request.bulwark.model = v;
    const range = inputRange(v, policy.validation);
    return modelMetadata(
      v,
      registry.versions(v.name).map((x) => x.version),
      {
        live_version: registry.live(v.name).version,
        output_policy: request.bulwark.policy ?? 'full',
        max_batch: policy.validation.maxBatch,
        ...(range ? { input_range: [range.min, range.max] } : {}),
      },
    );
  };
  app.get<{ Params: Params }>('/v2/models/:name', model, metadata);
  app.get<{ Params: Params }>('/v2/models/:name/versions/:version', model, metadata);

  const ready = async (request: FastifyRequest<{ Params: Params }>) => {
    const v = registry.resolve(request.params.name, request.params.version);
    request.bulwark.model = v;
    return { name: v.name, version: v.version, ready: true };
  };
  app.get<{ Params: Params }>('/v2/models/:name/ready', model, ready);
  app.get<{ Params: Params }>('/v2/models/:name/versions/:version/ready', model, ready);

  const run = async (request: FastifyRequest<{ Params: Params }>, reply: FastifyReply) => {
    const s = request.bulwark;
    const v = s.model;
    const x = s.samples;
    if (!v || !x) throw invalid("rule 'request': no validated input (the validation plugin is not registered)");
    let probabilities;
    try {
      probabilities = await v.model.predict(x);
    } catch (e) {
      // Validation should have caught bad input; a model that still refuses it says why.
      if (isBulwarkError(e) && (e.code === 'E_DATA_SHAPE' || e.code === 'E_DATA_VALUE')) throw invalid(`input 'input': ${e.message}`);
      request.log.error({ err: e }, 'model failed');
      throw new GatewayError(502, 'error', `model '${v.name}' version ${v.version} failed to answer`);
    }
    s.probabilities = probabilities;
    const out = s.shapeOutput ? s.shapeOutput(probabilities) : probabilities;
    s.output = out;
    s.outcome = 'ok';
    reply.type('application/json');
    return inferResponse(v, out, s.policy ?? 'full', s.requestId);
  };
  app.post<{ Params: Params }>('/v2/models/:name/infer', infer, run);
  app.post<{ Params: Params }>('/v2/models/:name/versions/:version/infer', infer, run);
}
