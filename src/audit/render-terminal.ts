import type { Finding, Report, Severity } from '../core/index.js';
import { severityOrder } from '../core/index.js';
import { formatMetricValue } from './charts.js';

/** The audit summary as a plain-text table for a terminal or a CI log. */

export interface SummaryOptions {
  /** Emit ANSI colours; callers pass true only when stdout is a colour terminal. */
  color?: boolean;
  /** Maximum line width in characters; default 100. */
  width?: number;
}

const SEVERITIES: Severity[] = (Object.keys(severityOrder) as Severity[]).sort(
  (a, b) => severityOrder[b] - severityOrder[a],
);

const SEVERITY_SGR: Record<Severity, string> = {
  critical: '1;35',
  high: '1;31',
  medium: '33',
  low: '36',
  info: '2',
};

interface Column {
  header: string;
  min: number;
  right?: boolean;
}

const COLUMNS: Column[] = [
  { header: 'SECTION', min: 6 },
  { header: 'FINDING', min: 10 },
  { header: 'SEVERITY', min: 4 },
  { header: 'METRIC', min: 6 },
  { header: 'VALUE', min: 5, right: true },
  { header: 'THRESHOLD', min: 5, right: true },
  { header: 'RESULT', min: 4 },
];
const GAP = '  ';

/**
 * Report strings can come from model files and data sets; a control character or a bidi
 * override in a title could rewrite the terminal or disguise a row, so they are blanked.
 */
function clean(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, ' ');
}

/** Width in code points: close enough for report text, and it never splits a surrogate pair. */
const len = (s: string): number => Array.from(s).length;

function fit(text: string, width: number, right = false): string {
  const chars = Array.from(text);
  if (chars.length > width) return width <= 1 ? '…'.slice(0, width) : `${chars.slice(0, width - 1).join('')}…`;
  const pad = ' '.repeat(width - chars.length);
  return right ? pad + text : text + pad;
}

function paint(text: string, sgr: string | undefined, color: boolean): string {
  return color && sgr ? `\u001b[${sgr}m${text}\u001b[0m` : text;
}

function result(fd: Finding): string {
  return fd.passed === true ? 'PASS' : fd.passed === false ? 'FAIL' : '—';
}

/**
 * Narrows the widest columns first, one character at a time, so that short columns such as
 * RESULT stay whole and the long free-text ones (titles, sections) give way.
 */
function fitWidths(natural: number[], total: number): number[] {
  const widths = [...natural];
  const used = (): number => widths.reduce((a, b) => a + b, 0) + GAP.length * (widths.length - 1);
  let excess = used() - total;
  while (excess > 0) {
    let pick = -1;
    for (let c = 0; c < widths.length; c++) {
      if (widths[c]! > COLUMNS[c]!.min && (pick < 0 || widths[c]! > widths[pick]!)) pick = c;
    }
    if (pick < 0) break;
    widths[pick]!--;
    excess--;
  }
  return widths;
}

function countsLine(findings: Finding[]): string {
  const bySeverity = SEVERITIES.map((s) => `${findings.filter((fd) => fd.severity === s).length} ${s}`).join(', ');
  const failed = findings.filter((fd) => fd.passed === false).length;
  const passed = findings.filter((fd) => fd.passed === true).length;
  return `${findings.length} finding${findings.length === 1 ? '' : 's'}: ${bySeverity}; ${failed} failed, ${passed} passed`;
}

export function renderSummary(report: Report, opts: SummaryOptions = {}): string {
  const color = opts.color === true;
  const width = opts.width !== undefined && Number.isFinite(opts.width) ? Math.max(20, Math.floor(opts.width)) : 100;
  const rows: { cells: string[]; finding: Finding }[] = [];
  for (const section of report.sections) {
    for (const fd of section.findings) {
      rows.push({
        finding: fd,
        cells: [
          section.title,
          fd.title,
          String(fd.severity),
          fd.metric,
          formatMetricValue(fd.metric, fd.value),
          formatMetricValue(fd.metric, fd.threshold),
          result(fd),
        ].map(clean),
      });
    }
  }
  const findings = rows.map((r) => r.finding);
  // Every line is cut to the width as a last resort, for widths narrower than the minimums.
  const clip = (line: string): string => fit(line, width).trimEnd();
  const footer = clip(countsLine(findings));
  if (rows.length === 0) return `${clip('No findings.')}\n${footer}\n`;

  const natural = COLUMNS.map((col, c) => Math.max(len(col.header), ...rows.map((r) => len(r.cells[c]!))));
  const widths = fitWidths(natural, width);
  const plain = (cells: string[]): string[] => cells.map((cell, c) => fit(cell, widths[c]!, COLUMNS[c]!.right));

  const lines: string[] = [];
  const header = clip(plain(COLUMNS.map((c) => c.header)).join(GAP));
  lines.push(paint(header, '1', color));
  lines.push(paint(clip('─'.repeat(width)), '2', color));
  for (const row of rows) {
    const cells = plain(row.cells);
    const line = clip(cells.join(GAP));
    if (!color || len(line) < len(cells.join(GAP).trimEnd())) {
      // A line cut at the edge may have lost the coloured cells; print it plain.
      lines.push(line);
      continue;
    }
    const fd = row.finding;
    cells[2] = paint(cells[2]!, SEVERITY_SGR[fd.severity], true);
    cells[6] = paint(cells[6]!.trimEnd(), fd.passed === true ? '32' : fd.passed === false ? '1;31' : '2', true);
    lines.push(cells.join(GAP).trimEnd());
  }
  lines.push(paint(footer, '1', color));
  return `${lines.join('\n')}\n`;
}
