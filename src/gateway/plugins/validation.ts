import type { FastifyInstance } from 'fastify';
import { sha256Hex } from '../../provenance/index.js';
import { invalid } from '../errors.js';
import { parseInferRequest, type InferRules } from '../oip.js';
import type { ValidationRules } from '../policy-file.js';
import type { ModelRegistry, ModelVersion } from '../registry.js';
import { shared } from './context.js';

export interface ValidationOptions extends Record<string, unknown> {
  registry: ModelRegistry;
  rules: ValidationRules;
}

/**
 * The allowed input range for a model: the policy's, else the model's own statistics
 * (`inputRange` in its bulwark.json), else [0, 1] for image inputs [h, w, c].
 */
export function inputRange(v: ModelVersion, rules: ValidationRules): InferRules['range'] {
  if (rules.range === 'none') return undefined;
  if (Array.isArray(rules.range)) return { min: rules.range[0], max: rules.range[1], why: 'validation.range in the policy' };
  const stated = v.card?.inputRange;
  if (Array.isArray(stated) && stated.length === 2 && stated.every((x) => typeof x === 'number' && Number.isFinite(x))) {
    return { min: stated[0] as number, max: stated[1] as number, why: "the model's training data range, from its bulwark.json" };
  }
  if (v.model.info.inputShape.length === 3) return { min: 0, max: 1, why: 'image inputs are in [0, 1]; set validation.range in the policy to change it' };
  return undefined;
}

/**
 * Input validation. The JSON body parser keeps the raw bytes' SHA-256 (the audit log's input
 * digest) and answers malformed JSON with 400; wrong content types get 415 and oversized bodies
 * 413 before they are read. On inference routes it resolves the model version (404 for an
 * unknown one) and checks the request against it: shape, dtype, batch size, finiteness, range.
 */
export const validationPlugin = shared('bulwark-validation', async (app: FastifyInstance, opts: ValidationOptions) => {
  const ranges = new WeakMap<ModelVersion, InferRules['range'] | null>();
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'buffer', bodyLimit: opts.rules.maxBodyBytes }, (request, body, done) => {
    const buf = body as Buffer;
    if (request.bulwark) request.bulwark.inputDigest = sha256Hex(buf);
    try {
      done(null, JSON.parse(buf.toString('utf8')));
    } catch (e) {
      done(invalid(`rule 'json': the body is not valid JSON: ${(e as Error).message.slice(0, 120)}`), undefined);
    }
  });

  app.addHook('preValidation', async (request) => {
    const s = request.bulwark;
    if (s.kind !== 'infer') return;
    const params = request.params as { name?: string; version?: string };
    const v = opts.registry.resolve(params.name ?? '', params.version);
    s.model = v;
    let range = ranges.get(v);
    if (range === undefined) {
      range = inputRange(v, opts.rules) ?? null;
      ranges.set(v, range);
    }
    const parsed = parseInferRequest(request.body, v.model.info.inputShape, { maxBatch: opts.rules.maxBatch, ...(range ? { range } : {}) });
    s.samples = parsed.samples;
    if (parsed.id !== undefined) s.requestId = parsed.id;
  });
});
