import { readFile } from 'node:fs/promises';
import { Ajv, type ErrorObject } from 'ajv';
import { LineCounter, parseDocument, isNode } from 'yaml';
import { BulwarkError } from '../core/index.js';
import { checkOutputPolicy, type OutputPolicy } from '../outputs/index.js';
import { MONITORING_SCHEMA, normaliseMonitoring, type MonitoringPolicy } from './watch/policy.js';

/** Requests admitted per window; counted per API key (tier limits) or per client address. */
export interface RateLimit {
  requests: number;
  perSeconds: number;
}

/** Samples (rows), not requests: a batch of 100 rows spends 100. Calendar days and months, UTC. */
export interface Budget {
  samplesPerDay?: number;
  samplesPerMonth?: number;
}

export interface Tier {
  /** Applied in order. */
  output: OutputPolicy[];
  rateLimit?: RateLimit;
  budget?: Budget;
}

export interface ValidationRules {
  /** Most rows in one request. */
  maxBatch: number;
  /** Largest request body, bytes. */
  maxBodyBytes: number;
  /**
   * Allowed input values: [min, max]; 'auto' takes the model's own statistics where known
   * (`inputRange` in bulwark.json) and [0, 1] for image inputs [h, w, c] (what Bulwark's
   * image loaders and the digits data produce); 'none' checks finiteness only.
   */
  range: [number, number] | 'auto' | 'none';
}

export interface GatewayPolicy {
  tiers: Record<string, Tier>;
  clientRateLimit?: RateLimit;
  validation: ValidationRules;
  /** Detectors and the responses they trigger; absent: no monitoring. */
  monitoring?: MonitoringPolicy;
  /** Where it came from, for messages. */
  source: string;
}

/** Used without --policy: one tier, 'default', full probabilities, generous limits. */
export function defaultPolicy(): GatewayPolicy {
  return {
    tiers: { default: { output: [{ kind: 'full' }], rateLimit: { requests: 1000, perSeconds: 1 } } },
    clientRateLimit: { requests: 5000, perSeconds: 1 },
    validation: { maxBatch: 256, maxBodyBytes: 8 * 1024 * 1024, range: 'auto' },
    source: '(built-in default policy)',
  };
}

const positiveInt = { type: 'integer', minimum: 1 };
const rateLimitSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['requests', 'perSeconds'],
  properties: { requests: positiveInt, perSeconds: { type: 'number', exclusiveMinimum: 0 } },
};
const outputSchema = {
  type: 'object',
  required: ['kind'],
  properties: { kind: { enum: ['full', 'round', 'top-k', 'label', 'gaussian', 'reverse-sigmoid'] } },
  allOf: [
    policyCase('full', {}),
    policyCase('label', {}),
    policyCase('round', { decimals: { type: 'integer', minimum: 0, maximum: 6 } }, ['decimals']),
    policyCase('top-k', { k: positiveInt, renormalize: { type: 'boolean' } }, ['k']),
    policyCase('gaussian', { sigma: { type: 'number', exclusiveMinimum: 0 }, seed: { type: 'integer', minimum: 0 }, randomness: { enum: ['seeded', 'crypto'] } }, ['sigma']),
    policyCase('reverse-sigmoid', { beta: { type: 'number', exclusiveMinimum: 0 }, gamma: { type: 'number', exclusiveMinimum: 0 } }),
  ],
};

function policyCase(kind: string, props: Record<string, object>, required: string[] = []): object {
  return {
    if: { properties: { kind: { const: kind } }, required: ['kind'] },
    then: { additionalProperties: false, required, properties: { kind: { const: kind }, ...props } },
  };
}

/** The policy file's JSON Schema (draft 7, checked with ajv). */
export const POLICY_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['tiers'],
  properties: {
    tiers: {
      type: 'object',
      minProperties: 1,
      propertyNames: { pattern: '^[A-Za-z0-9_.-]{1,64}$' },
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        properties: {
          output: { anyOf: [outputSchema, { type: 'array', minItems: 1, items: outputSchema }] },
          rateLimit: rateLimitSchema,
          budget: {
            type: 'object',
            additionalProperties: false,
            minProperties: 1,
            properties: { samplesPerDay: positiveInt, samplesPerMonth: positiveInt },
          },
        },
      },
    },
    clientRateLimit: rateLimitSchema,
    monitoring: MONITORING_SCHEMA,
    validation: {
      type: 'object',
      additionalProperties: false,
      properties: {
        maxBatch: { type: 'integer', minimum: 1, maximum: 100000 },
        maxBodyBytes: { type: 'integer', minimum: 1024, maximum: 1073741824 },
        range: {
          anyOf: [
            { enum: ['auto', 'none'] },
            { type: 'array', items: { type: 'number' }, minItems: 2, maxItems: 2 },
          ],
        },
      },
    },
  },
} as const;

let validator: ReturnType<Ajv['compile']> | undefined;

function compiled(): ReturnType<Ajv['compile']> {
  validator ??= new Ajv({ allErrors: true, strict: false }).compile(POLICY_SCHEMA);
  return validator;
}

/** Parses and validates policy text (YAML or JSON). Errors name the file, line and column. */
export function parsePolicy(text: string, source: string): GatewayPolicy {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number | undefined): string => {
    if (offset === undefined) return source;
    const { line, col } = lines.linePos(offset);
    return `${source}:${line}:${col}`;
  };
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    throw new BulwarkError('E_DATA_PARSE', `${at(e.pos[0])}: not valid YAML/JSON: ${e.message.split('\n')[0]}`);
  }
  const value = doc.toJS({ maxAliasCount: 100 }) as unknown;
  const validate = compiled();
  if (!validate(value)) {
    const errors = (validate.errors ?? []).filter((e) => e.keyword !== 'if' && e.keyword !== 'anyOf');
    const first = pickError(errors.length > 0 ? errors : (validate.errors ?? []));
    const path = first.instancePath.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
    const node = doc.getIn(path, true);
    const offset = isNode(node) ? node.range?.[0] : undefined;
    const where = path.length > 0 ? path.join('.') : '(top level)';
    throw new BulwarkError('E_DATA_VALUE', `${at(offset ?? nearestOffset(doc, path))}: ${where} ${explain(first)}`);
  }
  const locate = (path: string[]): string => at(nearestOffset(doc, path));
  return normalise(value as RawPolicy, source, locate);
}

export async function loadPolicyFile(file: string): Promise<GatewayPolicy> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new BulwarkError(err.code === 'ENOENT' ? 'E_FILE_NOT_FOUND' : 'E_FILE_READ', `cannot read policy file ${file}: ${err.message}`);
  }
  return parsePolicy(text, file);
}

/** The deepest error is the most specific one; at equal depth an unknown field (a typo) explains more than the field it was meant to be. */
function pickError(errors: ErrorObject[]): ErrorObject {
  const rank = (e: ErrorObject) => e.instancePath.split('/').length * 2 + (e.keyword === 'additionalProperties' ? 1 : 0);
  return [...errors].sort((a, b) => rank(b) - rank(a))[0];
}

function explain(e: ErrorObject): string {
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'additionalProperties':
      return `has an unknown field '${String(p.additionalProperty)}'`;
    case 'required':
      return `needs the field '${String(p.missingProperty)}'`;
    case 'enum':
      return `must be one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    case 'const':
      return `must be ${JSON.stringify(p.allowedValue)}`;
    case 'propertyNames':
      return `has a name that is not letters, digits, '_', '.' or '-' (at most 64)`;
    default:
      return e.message ?? `fails rule ${e.keyword}`;
  }
}

/** For a missing field there is no node: point at the closest parent that exists. */
function nearestOffset(doc: ReturnType<typeof parseDocument>, path: string[]): number | undefined {
  for (let n = path.length; n >= 0; n--) {
    const node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
    if (isNode(node) && node.range) return node.range[0];
  }
  return undefined;
}

interface RawPolicy {
  tiers: Record<string, { output?: OutputPolicy | OutputPolicy[]; rateLimit?: RateLimit; budget?: Budget }>;
  clientRateLimit?: RateLimit;
  validation?: Partial<ValidationRules>;
  monitoring?: Record<string, unknown>;
}

function normalise(raw: RawPolicy, source: string, locate: (path: string[]) => string = () => source): GatewayPolicy {
  const base = defaultPolicy();
  const tiers: Record<string, Tier> = {};
  for (const [name, t] of Object.entries(raw.tiers)) {
    const output = t.output === undefined ? [{ kind: 'full' as const }] : Array.isArray(t.output) ? t.output : [t.output];
    for (const p of output) {
      try {
        checkOutputPolicy(p);
      } catch (e) {
        throw new BulwarkError('E_DATA_VALUE', `${source}: tiers.${name}.output: ${(e as Error).message}`);
      }
    }
    tiers[name] = { output, ...(t.rateLimit ? { rateLimit: t.rateLimit } : {}), ...(t.budget ? { budget: t.budget } : {}) };
  }
  const range = raw.validation?.range ?? base.validation.range;
  if (Array.isArray(range) && !(range[0] < range[1])) {
    throw new BulwarkError('E_DATA_VALUE', `${source}: validation.range [${range.join(', ')}] must be [min, max] with min < max`);
  }
  return {
    tiers,
    ...(raw.clientRateLimit ? { clientRateLimit: raw.clientRateLimit } : {}),
    validation: { ...base.validation, ...raw.validation, range },
    ...(raw.monitoring ? { monitoring: normaliseMonitoring(raw.monitoring, locate) } : {}),
    source,
  };
}
