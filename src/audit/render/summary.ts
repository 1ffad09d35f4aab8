import type { Finding, Report, ReportSection, ReportSummary, Severity } from '../../core/index.js';
import { severityOrder } from '../../core/index.js';
import { formatMetricValue } from '../charts.js';

/**
 * What the first screen of a report says, for both the HTML and the terminal. A report from
 * a newer run carries its own summary; an older one (or one assembled by hand) gets one
 * derived from its sections, so every report opens with a verdict.
 */

export type SectionStatus = 'ran' | 'skipped' | 'failed';

export const SEVERITIES_DESC: Severity[] = (Object.keys(severityOrder) as Severity[]).sort(
  (a, b) => severityOrder[b] - severityOrder[a],
);

/** Unknown severities (a hand-edited report) are shown as info rather than breaking the page. */
export function knownSeverity(s: string): Severity {
  return (SEVERITIES_DESC as string[]).includes(s) ? (s as Severity) : 'info';
}

/** Where no --fail-on was given, failed high and critical findings are what fails a report. */
export const DEFAULT_FAIL_ON: Severity = 'high';

export interface SectionView {
  status: SectionStatus;
  reason?: string;
  /** The findings worth a card: a placeholder that only says "skipped" is not one. */
  findings: Finding[];
}

const isSkipPlaceholder = (fd: Finding): boolean => fd.metric === 'status' && fd.value === 'skipped';

/**
 * Reports written before sections had a status mark a skipped section with a single finding
 * whose metric is 'status' and value 'skipped'; its evidence is the reason.
 */
export function viewSection(section: ReportSection): SectionView {
  const findings = section.findings ?? [];
  if (section.status) {
    return { status: section.status, reason: section.reason, findings: findings.filter((fd) => !isSkipPlaceholder(fd)) };
  }
  if (findings.length > 0 && findings.every(isSkipPlaceholder)) {
    const reason = findings.flatMap((fd) => fd.evidence).join('; ') || undefined;
    return { status: 'skipped', reason: section.reason ?? reason, findings: [] };
  }
  return { status: 'ran', reason: section.reason, findings };
}

export interface ThreatRow {
  id: string;
  title: string;
  status: SectionStatus;
  severity: Severity;
  keyFigure: string;
  /** Index of the report section this threat is reported in, when one matches its id. */
  section?: number;
  failed: number;
  total: number;
}

export interface SummaryView {
  verdict: ReportSummary['verdict'];
  failOn?: Severity;
  threats: ThreatRow[];
  failed: number;
  /** Failed findings at or above failOn (or high, when failOn is not set). */
  blocking: number;
  findings: number;
}

function worstOf(findings: Finding[]): Finding | undefined {
  let worst: Finding | undefined;
  for (const fd of findings) {
    const rank = (x: Finding): number => severityOrder[knownSeverity(x.severity)] + (x.passed === false ? 10 : 0);
    if (!worst || rank(fd) > rank(worst)) worst = fd;
  }
  return worst;
}

export function keyFigureOf(fd: Finding | undefined): string {
  if (!fd) return '—';
  return `${fd.metric}: ${formatMetricValue(fd.metric, fd.value)}`;
}

/** The threat a section reports on; sections from before threats were named stand for themselves. */
const threatOf = (s: ReportSection): string => s.threat ?? s.id;

function groupStatus(views: SectionView[]): SectionStatus {
  if (views.some((v) => v.status === 'failed')) return 'failed';
  return views.some((v) => v.status === 'ran') ? 'ran' : 'skipped';
}

function derivedThreat(id: string, sections: ReportSection[], indices: number[]): ThreatRow {
  const views = indices.map((i) => viewSection(sections[i]!));
  const findings = views.flatMap((v) => v.findings);
  const status = groupStatus(views);
  // Passed findings say the threat was answered; only failed or ungraded ones carry risk.
  const severity = findings
    .filter((fd) => fd.passed !== true)
    .reduce<Severity>((acc, fd) => {
      const s = knownSeverity(fd.severity);
      return severityOrder[s] > severityOrder[acc] ? s : acc;
    }, 'info');
  const keyFigure = findings.length > 0 ? keyFigureOf(worstOf(findings)) : status === 'skipped' ? 'not run' : status === 'failed' ? 'did not finish' : '—';
  return {
    id,
    title: sections[indices[0]!]!.title,
    status,
    severity,
    keyFigure,
    section: indices[0],
    failed: findings.filter((fd) => fd.passed === false).length,
    total: findings.length,
  };
}

export function summarize(report: Report): SummaryView {
  const sections = report.sections ?? [];
  const views = sections.map(viewSection);
  const all = views.flatMap((v) => v.findings);
  const failedFindings = all.filter((fd) => fd.passed === false);
  const failOn = report.summary?.failOn;
  const bar = severityOrder[failOn ?? DEFAULT_FAIL_ON];
  const blocking = failedFindings.filter((fd) => severityOrder[knownSeverity(fd.severity)] >= bar).length;
  const counts = { failed: failedFindings.length, blocking, findings: all.length };
  const byThreat = new Map<string, number[]>();
  sections.forEach((s, i) => byThreat.set(threatOf(s), [...(byThreat.get(threatOf(s)) ?? []), i]));

  if (report.summary) {
    const threats = report.summary.threats.map((t): ThreatRow => {
      const own = (byThreat.get(t.id) ?? []).map((i) => views[i]!).flatMap((v) => v.findings);
      const first = byThreat.get(t.id)?.[0];
      return {
        id: t.id,
        title: t.title,
        status: t.status,
        keyFigure: t.keyFigure,
        severity: knownSeverity(t.severity),
        section: first,
        failed: own.filter((fd) => fd.passed === false).length,
        total: own.length,
      };
    });
    return { verdict: report.summary.verdict, failOn, threats, ...counts };
  }
  const threats = [...byThreat].map(([id, indices]) => derivedThreat(id, sections, indices));
  const broken = views.some((v) => v.status === 'failed');
  const verdict = blocking > 0 ? 'fail' : failedFindings.length > 0 || broken ? 'warn' : 'pass';
  return { verdict, threats, ...counts };
}

/** One sentence under the verdict, for the banner and the terminal. */
export function verdictSentence(s: SummaryView): string {
  const bar = s.failOn ?? DEFAULT_FAIL_ON;
  const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;
  const skipped = s.threats.filter((t) => t.status === 'skipped').length;
  const broken = s.threats.filter((t) => t.status === 'failed').length;
  let text: string;
  if (s.failed === 0) text = `No finding failed (${plural(s.findings, 'finding')} checked).`;
  else {
    // Name --fail-on where the run set it, so the reader knows the bar was chosen, not assumed.
    const at = `at or above ${bar} severity${s.failOn ? ' (--fail-on)' : ''}`;
    text = `${plural(s.failed, 'finding')} failed, ${s.blocking > 0 ? `${s.blocking} of them` : 'none'} ${at}.`;
  }
  if (skipped > 0) text += ` ${plural(skipped, 'threat')} not tested.`;
  if (broken > 0) text += ` ${plural(broken, 'section')} did not finish.`;
  return text;
}
