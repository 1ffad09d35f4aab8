import { severityOrder, type Finding, type Report, type ReportSection, type ReportSummary, type Severity } from '../core/index.js';

/** The rows of the report's first screen, in this order; 'model' is the baseline every run has. */
export const THREAT_TITLES: Record<string, string> = {
  model: 'Model quality',
  provenance: 'Provenance',
  evasion: 'Evasion (adversarial examples)',
  poisoning: 'Data poisoning and backdoors',
  privacy: 'Privacy (membership, inversion)',
  extraction: 'Model extraction',
};

/** Failed findings at or above `failOn`: what --fail-on gates on. */
export function gatingFindings(report: Pick<Report, 'sections'>, failOn: Severity | undefined): Finding[] {
  if (!failOn) return [];
  return report.sections.flatMap((s) => s.findings).filter((f) => f.passed === false && severityOrder[f.severity] >= severityOrder[failOn]);
}

/**
 * One row per threat, and a verdict: 'fail' when a failed finding reaches --fail-on (without
 * it: high or worse); 'warn' when any finding failed below that, or a section broke; else 'pass'.
 */
export function summarize(sections: ReportSection[], threats: readonly string[], failOn?: Severity): ReportSummary {
  const failed = sections.flatMap((s) => s.findings).filter((f) => f.passed === false);
  const gate = failOn ?? 'high';
  const verdict: ReportSummary['verdict'] = failed.some((f) => severityOrder[f.severity] >= severityOrder[gate])
    ? 'fail'
    : failed.length > 0 || sections.some((s) => s.status === 'failed')
      ? 'warn'
      : 'pass';
  const rows = ['model', ...Object.keys(THREAT_TITLES).filter((t) => t !== 'model' && threats.includes(t))];
  return {
    verdict,
    ...(failOn ? { failOn } : {}),
    threats: rows.map((id) => {
      const own = sections.filter((s) => (s.threat ?? s.id) === id);
      const status = own.some((s) => s.status === 'failed') ? 'failed' : own.some((s) => s.status === 'ran') ? 'ran' : 'skipped';
      const findings = own.flatMap((s) => s.findings);
      const severity = findings.filter((f) => f.passed === false).reduce<Severity>((w, f) => (severityOrder[f.severity] > severityOrder[w] ? f.severity : w), 'info');
      return { id, title: THREAT_TITLES[id] ?? id, status, severity, keyFigure: keyFigure(own, findings) };
    }),
  };
}

function keyFigure(own: ReportSection[], findings: Finding[]): string {
  if (own.length === 0) return 'not covered by this build';
  const graded = findings.filter((f) => f.threshold !== undefined && typeof f.value === 'number');
  const head = findings.filter((f) => f.passed === false).sort((a, b) => severityOrder[b.severity] - severityOrder[a.severity])[0] ?? graded[0];
  if (head) return `${head.metric} ${formatValue(head)}`;
  const reasons = own.filter((s) => s.status !== 'ran').map((s) => s.reason).filter(Boolean);
  if (reasons.length === own.length) return String(reasons[0]);
  const first = findings[0];
  return first ? `${first.metric} ${formatValue(first)}` : 'no findings';
}

export function formatValue(f: Pick<Finding, 'value' | 'metric' | 'id'>): string {
  const v = f.value;
  if (typeof v !== 'number') return String(v);
  if (/auc/i.test(f.metric) || /auc/.test(f.id ?? '')) return v.toFixed(3);
  if (Number.isInteger(v)) return String(v);
  if (v >= 0 && v <= 1) return `${(v * 100).toFixed(1)}%`;
  return String(Number(v.toPrecision(4)));
}
