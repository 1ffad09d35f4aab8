import type { Finding, Report, ReportSection } from '../core/index.js';
import { formatValue } from './summary.js';

/**
 * The report as JUnit XML, the format CI systems show as tests: one testsuite per section,
 * one testcase per check (finding); a failed check has a <failure>, a section that broke an
 * <error>, a section that did not run one skipped testcase saying why.
 */
export function toJunit(report: Report): string {
  const suites = report.sections.map(suite);
  const count = (re: RegExp) => suites.reduce((n, s) => n + (s.match(re)?.length ?? 0), 0);
  const tests = count(/<testcase /g);
  const failures = count(/<failure /g);
  const errors = count(/<error /g);
  const skipped = count(/<skipped /g);
  const time = report.sections.reduce((t, s) => t + s.seconds, 0);
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="bulwark audit" tests="${tests}" failures="${failures}" errors="${errors}" skipped="${skipped}" time="${time.toFixed(3)}">`,
    ...suites,
    '</testsuites>',
    '',
  ].join('\n');
}

function suite(s: ReportSection): string {
  const cls = `bulwark.${s.id}`;
  let cases: string[];
  if (s.status === 'skipped') {
    cases = [`    <testcase classname="${attr(cls)}" name="${attr(s.title)}" time="0">\n      <skipped message="${attr(s.reason ?? 'not run')}"/>\n    </testcase>`];
  } else if (s.status === 'failed') {
    cases = [`    <testcase classname="${attr(cls)}" name="${attr(s.title)}" time="${s.seconds.toFixed(3)}">\n      <error message="${attr(s.reason ?? 'failed')}" type="section-failed"/>\n    </testcase>`];
  } else {
    cases = s.findings.map((f) => testcase(cls, f));
  }
  const n = (re: RegExp) => cases.filter((c) => re.test(c)).length;
  return [
    `  <testsuite name="${attr(s.title)}" id="${attr(s.id)}" tests="${cases.length}" failures="${n(/<failure /)}" errors="${n(/<error /)}" skipped="${n(/<skipped /)}" time="${s.seconds.toFixed(3)}">`,
    ...cases,
    '  </testsuite>',
  ].join('\n');
}

function testcase(cls: string, f: Finding): string {
  const name = `${f.id ?? f.area}: ${f.title}`;
  const open = `    <testcase classname="${attr(cls)}" name="${attr(name)}" time="0">`;
  if (f.passed !== false) return `${open}\n      <system-out>${text(`${f.metric}: ${formatValue(f)}`)}</system-out>\n    </testcase>`;
  const message = `${f.metric} ${formatValue(f)}${f.threshold !== undefined ? ` crosses ${f.threshold}` : ''} (severity ${f.severity})`;
  const body = [...f.evidence, ...(f.remedies ?? []).map((r) => `fix (${r.defence}): ${r.command}`)].join('\n');
  return `${open}\n      <failure message="${attr(message)}" type="${f.severity}">${text(body)}</failure>\n    </testcase>`;
}

function text(s: string): string {
  // Characters XML 1.0 cannot carry at all are dropped; the rest escaped.
  return s.replace(/[^\x09\x0A\x0D\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, '').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function attr(s: string): string {
  return text(s).replace(/"/g, '&quot;').replace(/\n/g, '&#10;');
}
