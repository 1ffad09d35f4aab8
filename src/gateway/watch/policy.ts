import { BulwarkError } from '../../core/index.js';
import { KEY_ACTIONS, RESPONSE_ACTIONS, type ResponseAction } from './alerts.js';

/** A per-key extraction detector and what to do when it flags a key. */
export type ExtractionRule =
  /** Unset options take src/monitor's defaults (chosen on digits). */
  | { detector: 'prada'; delta?: number; minQueries?: number; respond: ResponseAction[] }
  | { detector: 'similarity'; threshold: number | 'auto'; fpr?: number; k?: number; history?: number; alarms?: number; window?: number; respond: ResponseAction[] }
  | { detector: 'volume'; rows: number; perSeconds: number; respond: ResponseAction[] };

/** Out-of-distribution inputs: a key is flagged when too many of its recent rows score above the Mahalanobis threshold. */
export interface OodRule {
  /** False-positive rate the threshold is calibrated at on held-out data. Default 0.01. */
  fpr: number;
  /** Share of a key's rows over the threshold that flags it. Default 0.5. */
  maxRate: number;
  /** Rows a key must have sent before its rate counts. Default 50. */
  minQueries: number;
  respond: ResponseAction[];
}

/** Drift of the traffic against the training data, over sliding windows of rows (model-wide). */
export interface DriftRule {
  window: number;
  pThreshold?: number;
  psiThreshold?: number;
  shareThreshold?: number;
  /** alert and webhook only: a drifted model raises an alert, never a refusal. */
  respond: ResponseAction[];
}

export interface WebhookConfig {
  url: string;
  /** Environment variable holding the HMAC secret (never the secret in the file). */
  secretEnv: string;
  /** Attempts after the first. Default 5. */
  retries: number;
  /** First wait between attempts, doubled each time. Default 1000 ms. */
  backoffMs: number;
  timeoutMs: number;
}

export interface MonitoringPolicy {
  extraction: ExtractionRule[];
  ood?: OodRule;
  drift?: DriftRule;
  webhook?: WebhookConfig;
  /** The rate limit of a throttled key. Default 1 request per 10 s. */
  throttle: { requests: number; perSeconds: number };
  /**
   * Longest a key's request waits for the detectors to finish its previous rows (so a response
   * holds from the next request). Past it the request goes on, and a response may land a request
   * or two late: an overloaded detector must not stall the API. Default 1000 ms.
   */
  maxWaitMs: number;
  /** Rows waiting for the detectors beyond which new rows are not inspected (and counted). Default 20,000. */
  maxQueuedRows: number;
}

const positiveInt = { type: 'integer', minimum: 1 };
const respond = { type: 'array', minItems: 1, uniqueItems: true, items: { enum: [...RESPONSE_ACTIONS] } };
const rate = { type: 'number', exclusiveMinimum: 0, maximum: 1 };

function detectorCase(name: string, props: Record<string, object>): object {
  return {
    if: { properties: { detector: { const: name } }, required: ['detector'] },
    then: { additionalProperties: false, properties: { detector: { const: name }, respond, ...props } },
  };
}

const extractionSchema = {
  type: 'object',
  required: ['detector'],
  properties: { detector: { enum: ['prada', 'similarity', 'volume'] }, respond },
  allOf: [
    detectorCase('prada', { delta: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1 }, minQueries: positiveInt }),
    detectorCase('similarity', { threshold: { anyOf: [{ const: 'auto' }, { type: 'number', exclusiveMinimum: 0 }] }, fpr: rate, k: positiveInt, history: positiveInt, alarms: positiveInt, window: positiveInt }),
    detectorCase('volume', { rows: positiveInt, perSeconds: { type: 'number', exclusiveMinimum: 0 } }),
  ],
};

/** The `monitoring` section of the policy file (JSON Schema, checked with the rest by ajv). */
export const MONITORING_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    extraction: { anyOf: [extractionSchema, { type: 'array', minItems: 1, items: extractionSchema }] },
    ood: {
      type: 'object',
      additionalProperties: false,
      properties: { fpr: rate, maxRate: rate, minQueries: positiveInt, respond },
    },
    drift: {
      type: 'object',
      additionalProperties: false,
      properties: {
        window: { type: 'integer', minimum: 20, maximum: 1000000 },
        pThreshold: rate,
        psiThreshold: { type: 'number', exclusiveMinimum: 0 },
        shareThreshold: rate,
        respond: { type: 'array', minItems: 1, uniqueItems: true, items: { enum: ['alert', 'webhook'] } },
      },
    },
    webhook: {
      type: 'object',
      additionalProperties: false,
      required: ['url', 'secretEnv'],
      properties: {
        url: { type: 'string', pattern: '^https?://' },
        secretEnv: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*$' },
        retries: { type: 'integer', minimum: 0, maximum: 20 },
        backoffMs: { type: 'integer', minimum: 1, maximum: 3600000 },
        timeoutMs: { type: 'integer', minimum: 100, maximum: 120000 },
      },
    },
    maxWaitMs: { type: 'integer', minimum: 0, maximum: 60000 },
    maxQueuedRows: { type: 'integer', minimum: 1, maximum: 10000000 },
    throttle: {
      type: 'object',
      additionalProperties: false,
      required: ['requests', 'perSeconds'],
      properties: { requests: positiveInt, perSeconds: { type: 'number', exclusiveMinimum: 0 } },
    },
  },
} as const;

type Raw = Record<string, unknown>;

/** Fills in the defaults and checks what a schema cannot (a webhook response needs a webhook). `at` locates a path for messages. */
export function normaliseMonitoring(raw: Raw, at: (path: string[]) => string): MonitoringPolicy {
  const fail = (path: string[], msg: string): never => {
    throw new BulwarkError('E_DATA_VALUE', `${at(path)}: ${path.join('.')} ${msg}`);
  };
  const webhook = raw.webhook as Raw | undefined;
  const checkRespond = (path: string[], list: ResponseAction[] | undefined, fallback: ResponseAction[]): ResponseAction[] => {
    const r = list ?? fallback;
    if (r.includes('webhook') && !webhook) fail([...path, 'respond'], "asks for 'webhook' but monitoring.webhook (url, secretEnv) is not set");
    return r;
  };
  const extraction: ExtractionRule[] = [];
  const rawExtraction = raw.extraction === undefined ? [] : Array.isArray(raw.extraction) ? (raw.extraction as Raw[]) : [raw.extraction as Raw];
  rawExtraction.forEach((e, i) => {
    const path = Array.isArray(raw.extraction) ? ['monitoring', 'extraction', String(i)] : ['monitoring', 'extraction'];
    const r = checkRespond(path, e.respond as ResponseAction[] | undefined, ['alert']);
    const opt = (name: string) => (e[name] !== undefined ? { [name]: e[name] as number } : {});
    if (e.detector === 'prada') extraction.push({ detector: 'prada', ...opt('delta'), ...opt('minQueries'), respond: r });
    else if (e.detector === 'similarity')
      extraction.push({ detector: 'similarity', threshold: (e.threshold as number | 'auto' | undefined) ?? 'auto', ...opt('fpr'), ...opt('k'), ...opt('history'), ...opt('alarms'), ...opt('window'), respond: r });
    else extraction.push({ detector: 'volume', rows: (e.rows as number | undefined) ?? 10000, perSeconds: (e.perSeconds as number | undefined) ?? 3600, respond: r });
  });
  const detectors = extraction.map((e) => e.detector);
  const dup = detectors.find((d, i) => detectors.indexOf(d) !== i);
  if (dup) fail(['monitoring', 'extraction'], `names the detector '${dup}' twice; give each detector once`);
  const rawOod = raw.ood as Raw | undefined;
  const rawDrift = raw.drift as Raw | undefined;
  const throttle = (raw.throttle as { requests: number; perSeconds: number } | undefined) ?? { requests: 1, perSeconds: 10 };
  return {
    extraction,
    ...(rawOod
      ? {
          ood: {
            fpr: (rawOod.fpr as number | undefined) ?? 0.01,
            maxRate: (rawOod.maxRate as number | undefined) ?? 0.5,
            minQueries: (rawOod.minQueries as number | undefined) ?? 50,
            respond: checkRespond(['monitoring', 'ood'], rawOod.respond as ResponseAction[] | undefined, ['alert']),
          },
        }
      : {}),
    ...(rawDrift
      ? {
          drift: {
            window: (rawDrift.window as number | undefined) ?? 500,
            ...(rawDrift.pThreshold !== undefined ? { pThreshold: rawDrift.pThreshold as number } : {}),
            ...(rawDrift.psiThreshold !== undefined ? { psiThreshold: rawDrift.psiThreshold as number } : {}),
            ...(rawDrift.shareThreshold !== undefined ? { shareThreshold: rawDrift.shareThreshold as number } : {}),
            respond: checkRespond(['monitoring', 'drift'], rawDrift.respond as ResponseAction[] | undefined, ['alert']),
          },
        }
      : {}),
    ...(webhook
      ? {
          webhook: {
            url: webhook.url as string,
            secretEnv: webhook.secretEnv as string,
            retries: (webhook.retries as number | undefined) ?? 5,
            backoffMs: (webhook.backoffMs as number | undefined) ?? 1000,
            timeoutMs: (webhook.timeoutMs as number | undefined) ?? 5000,
          },
        }
      : {}),
    throttle,
    maxWaitMs: (raw.maxWaitMs as number | undefined) ?? 1000,
    maxQueuedRows: (raw.maxQueuedRows as number | undefined) ?? 20000,
  };
}

/** Whether a rule changes what keys get (so it needs the key store), for messages and checks. */
export function restrictsKeys(actions: readonly ResponseAction[]): boolean {
  return actions.some((a) => KEY_ACTIONS.includes(a));
}

/** What the monitoring needs from the model's training data: drift, OOD and an 'auto' similarity threshold do. */
export function needsReference(m: MonitoringPolicy): string[] {
  const why: string[] = [];
  if (m.drift) why.push('monitoring.drift');
  if (m.ood) why.push('monitoring.ood');
  if (m.extraction.some((e) => e.detector === 'similarity' && e.threshold === 'auto')) why.push("monitoring.extraction (similarity, threshold 'auto')");
  return why;
}
