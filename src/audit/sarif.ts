import { severityOrder, type Finding, type Report, type Severity } from '../core/index.js';
import { GRADES, type SeverityRule } from './severity.js';
import { formatValue } from './summary.js';

/** The parts of SARIF 2.1.0 Bulwark writes (OASIS SARIF v2.1.0, §3). */
export interface SarifLog {
  $schema: string;
  version: '2.1.0';
  runs: SarifRun[];
}

interface SarifMessage {
  text: string;
}

export interface SarifRule {
  id: string;
  name: string;
  shortDescription: SarifMessage;
  fullDescription: SarifMessage;
  help: SarifMessage & { markdown?: string };
  defaultConfiguration: { level: SarifLevel };
  properties: { tags: string[]; 'security-severity': string; precision: string };
}

export type SarifLevel = 'none' | 'note' | 'warning' | 'error';

export interface SarifResult {
  ruleId: string;
  ruleIndex: number;
  level: SarifLevel;
  message: SarifMessage;
  locations: { physicalLocation: { artifactLocation: { uri: string } } }[];
  partialFingerprints: Record<string, string>;
  properties: { severity: Severity; value: number | string; threshold?: number; section: string };
}

export interface SarifRun {
  tool: { driver: { name: string; version: string; semanticVersion: string; rules: SarifRule[] } };
  automationDetails: { id: string };
  invocations: { executionSuccessful: boolean; toolExecutionNotifications: { level: SarifLevel; message: SarifMessage }[] }[];
  results: SarifResult[];
}

export const SARIF_SCHEMA_URI = 'https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json';

export function sarifLevel(s: Severity): SarifLevel {
  return s === 'critical' || s === 'high' ? 'error' : s === 'medium' ? 'warning' : s === 'low' ? 'note' : 'none';
}

/** GitHub code scanning sorts security results by this CVSS-like score. */
const SECURITY_SEVERITY: Record<Severity, string> = { info: '0.0', low: '3.0', medium: '5.5', high: '8.0', critical: '9.5' };

/**
 * The report as a SARIF log: one rule per row of the severity table (and per other check a
 * section reported), one result per failed finding. `artifact` is what the results point at:
 * the model's file or directory, or the report itself for a remote model.
 */
export function toSarif(report: Report, rules: readonly SeverityRule[], artifact: string): SarifLog {
  const driverRules: SarifRule[] = rules.map((r) => {
    const worst = r.kind === 'check' ? r.severity : ([...GRADES].reverse().find((g) => r.thresholds[g] !== undefined) ?? 'low');
    const when =
      r.kind === 'check'
        ? `${r.severity} when the check fails`
        : GRADES.filter((g) => r.thresholds[g] !== undefined).map((g) => `${g} when ${r.direction} ${r.thresholds[g]}`).join(', ') || 'not graded (turned off)';
    return {
      id: r.id,
      name: camel(r.id),
      shortDescription: { text: r.metric },
      fullDescription: { text: `${r.metric}: ${when}. ${r.rationale}.` },
      help: { text: r.remedies.map((m) => `${m.defence}: ${m.command}`).join('\n'), markdown: r.remedies.map((m) => `- **${m.defence}**: \`${m.command}\``).join('\n') },
      defaultConfiguration: { level: sarifLevel(worst) },
      properties: { tags: ['security', 'machine-learning', r.id.split('.')[0]], 'security-severity': SECURITY_SEVERITY[worst], precision: 'high' },
    };
  });
  const failed = report.sections.flatMap((s) => s.findings.filter((f) => f.passed === false).map((f) => ({ f, section: s.id })));
  for (const { f } of failed) {
    const id = ruleIdOf(f);
    if (driverRules.some((r) => r.id === id)) continue;
    driverRules.push({
      id,
      name: camel(id),
      shortDescription: { text: f.metric },
      fullDescription: { text: `${f.metric} (graded by its section)` },
      help: { text: (f.remedies ?? []).map((m) => `${m.defence}: ${m.command}`).join('\n') || 'see the report' },
      defaultConfiguration: { level: sarifLevel(f.severity) },
      properties: { tags: ['security', 'machine-learning', f.area], 'security-severity': SECURITY_SEVERITY[f.severity], precision: 'medium' },
    });
  }
  const results: SarifResult[] = failed
    .sort((a, b) => severityOrder[b.f.severity] - severityOrder[a.f.severity])
    .map(({ f, section }) => {
      const ruleId = ruleIdOf(f);
      const fix = f.remedies?.[0];
      return {
        ruleId,
        ruleIndex: driverRules.findIndex((r) => r.id === ruleId),
        level: sarifLevel(f.severity),
        message: {
          text:
            `${f.title}: ${f.metric} ${formatValue(f)}${f.threshold !== undefined ? ` (threshold ${f.threshold})` : ''}, severity ${f.severity}.` +
            (fix ? ` Fix: ${fix.command}` : ''),
        },
        locations: [{ physicalLocation: { artifactLocation: { uri: artifact } } }],
        partialFingerprints: { 'bulwarkCheck/v1': `${report.target.model}|${ruleId}` },
        properties: { severity: f.severity, value: f.value, ...(f.threshold !== undefined ? { threshold: f.threshold } : {}), section },
      };
    });
  const broken = report.sections.filter((s) => s.status === 'failed');
  return {
    $schema: SARIF_SCHEMA_URI,
    version: '2.1.0',
    runs: [
      {
        tool: { driver: { name: 'bulwark', version: report.version, semanticVersion: report.version, rules: driverRules } },
        automationDetails: { id: `bulwark-audit/${report.target.model}/` },
        invocations: [
          {
            executionSuccessful: broken.length === 0,
            toolExecutionNotifications: [
              ...broken.map((s) => ({ level: 'error' as const, message: { text: `section '${s.id}' failed: ${s.reason}` } })),
              ...report.sections.filter((s) => s.status === 'skipped').map((s) => ({ level: 'note' as const, message: { text: `section '${s.id}' not run: ${s.reason}` } })),
            ],
          },
        ],
        results,
      },
    ],
  };
}

function ruleIdOf(f: Finding): string {
  return f.id ?? `${f.area}.${f.title.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '')}`;
}

function camel(id: string): string {
  return id
    .split(/[.-]/)
    .map((p) => p.charAt(0).toUpperCase() + p.slice(1))
    .join('');
}
