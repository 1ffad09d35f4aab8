import { promises as fs } from 'node:fs';
import { Ajv, type ErrorObject } from 'ajv';
import { BulwarkError, type Severity } from '../core/index.js';
import { GRADES, SEVERITY_RULES, type Grade, type SeverityRule } from './severity.js';

export const THREATS = ['evasion', 'poisoning', 'privacy', 'extraction', 'provenance'] as const;
export type Threat = (typeof THREATS)[number];

/** An override of one rule of the severity table. */
export interface RuleOverride {
  /** Threshold rules: new thresholds (the grades given replace the default ones). */
  thresholds?: Partial<Record<Grade, number>>;
  /** Check rules: the severity of a failed check. */
  severity?: Grade;
  /** false: the check is still reported but never graded above info. */
  enabled?: boolean;
}

/** bulwark.config.json: defaults for the flags, and overrides of the severity table. */
export interface AuditConfig {
  threats?: Threat[];
  budget?: number;
  quick?: boolean;
  failOn?: Grade;
  seed?: number;
  rules?: Record<string, RuleOverride>;
}

const grade = { type: 'string', enum: [...GRADES] };
const thresholds = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: Object.fromEntries(GRADES.map((g) => [g, { type: 'number' }])),
};

/** The config file's JSON Schema (draft 7). Rule ids are checked against the table. */
export const CONFIG_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    $schema: { type: 'string' },
    threats: { type: 'array', items: { type: 'string', enum: [...THREATS] }, uniqueItems: true },
    budget: { type: 'integer', minimum: 1 },
    quick: { type: 'boolean' },
    failOn: grade,
    seed: { type: 'integer', minimum: 0 },
    rules: {
      type: 'object',
      propertyNames: { enum: SEVERITY_RULES.map((r) => r.id) },
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        properties: { thresholds, severity: grade, enabled: { type: 'boolean' } },
      },
    },
  },
} as const;

let validator: ReturnType<Ajv['compile']> | undefined;

/** Reads and checks a config file; every error names the JSON pointer and why. */
export async function loadAuditConfig(file: string): Promise<AuditConfig> {
  const text = await fs.readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw new BulwarkError(e.code === 'ENOENT' ? 'E_FILE_NOT_FOUND' : 'E_FILE_READ', `config file ${file}: ${e.code === 'ENOENT' ? 'not found' : e.message}`);
  });
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new BulwarkError('E_DATA_PARSE', `config file ${file} is not valid JSON: ${(e as Error).message}`);
  }
  return parseAuditConfig(raw, file);
}

export function parseAuditConfig(raw: unknown, where = 'config'): AuditConfig {
  validator ??= new Ajv({ allErrors: true, strict: false }).compile(CONFIG_SCHEMA);
  if (!validator(raw)) {
    const errors = (validator.errors ?? []).map(describe);
    throw new BulwarkError('E_USAGE', `${where} is not a valid audit config:\n  ${[...new Set(errors)].join('\n  ')}`);
  }
  const config = raw as AuditConfig;
  const problems: string[] = [];
  for (const [id, o] of Object.entries(config.rules ?? {})) {
    const rule = SEVERITY_RULES.find((r) => r.id === id)!;
    if (rule.kind === 'check' && o.thresholds) problems.push(`/rules/${id}/thresholds: '${id}' is a yes/no check; give "severity" instead`);
    if (rule.kind === 'threshold' && o.severity) problems.push(`/rules/${id}/severity: '${id}' is graded by thresholds; give "thresholds" instead`);
    if (rule.kind === 'threshold' && o.thresholds) {
      const merged = { ...o.thresholds };
      const given = GRADES.filter((g) => merged[g] !== undefined);
      for (let i = 1; i < given.length; i++) {
        const [a, b] = [merged[given[i - 1]]!, merged[given[i]]!];
        const ok = rule.direction === 'below' ? b <= a : b >= a;
        if (!ok) {
          problems.push(
            `/rules/${id}/thresholds/${given[i]}: ${b} must be ${rule.direction === 'below' ? 'at most' : 'at least'} the '${given[i - 1]}' threshold ${a}, ` +
              `since this check fails when the value is ${rule.direction} a threshold and a worse grade needs a worse value`,
          );
        }
      }
    }
  }
  if (problems.length) throw new BulwarkError('E_USAGE', `${where} is not a valid audit config:\n  ${problems.join('\n  ')}`);
  return config;
}

function describe(e: ErrorObject): string {
  const at = e.instancePath || '/';
  if (e.keyword === 'additionalProperties') return `${at === '/' ? '' : at}/${String(e.params.additionalProperty)}: unknown key (allowed: ${allowedAt(e.instancePath)})`;
  if (e.keyword === 'propertyNames' || (e.keyword === 'enum' && e.propertyName !== undefined)) {
    return `${at}/${String(e.params.propertyName ?? e.propertyName)}: no such rule; the rules are ${SEVERITY_RULES.map((r) => r.id).join(', ')}`;
  }
  if (e.keyword === 'enum') return `${at}: ${e.message} (${(e.params.allowedValues as unknown[]).join(', ')})`;
  return `${at}: ${e.message}`;
}

function allowedAt(pointer: string): string {
  if (pointer === '') return Object.keys(CONFIG_SCHEMA.properties).filter((k) => k !== '$schema').join(', ');
  if (/^\/rules\/[^/]+$/.test(pointer)) return 'thresholds, severity, enabled';
  return GRADES.join(', ');
}

/** The table with the config's overrides applied. */
export function effectiveRules(config: AuditConfig | undefined): SeverityRule[] {
  return SEVERITY_RULES.map((rule) => {
    const o = config?.rules?.[rule.id];
    if (!o) return rule;
    if (o.enabled === false) return { ...rule, disabled: true };
    if (rule.kind === 'threshold' && o.thresholds) return { ...rule, thresholds: { ...o.thresholds } };
    if (rule.kind === 'check' && o.severity) return { ...rule, severity: o.severity };
    return rule;
  });
}

export function isSeverity(s: string): s is Severity {
  return ['info', ...GRADES].includes(s);
}
