import type { Finding, Report, Severity } from '../core/index.js';
import { severityOrder } from '../core/index.js';
import { formatMetricValue } from './charts.js';
import { SEVERITIES_DESC, knownSeverity, summarize, verdictSentence, viewSection, type ThreatRow } from './render/summary.js';

/**
 * The audit as plain text for a terminal or a CI log: the verdict and one row per threat
 * first (what the HTML report opens with), then every finding.
 */

export interface SummaryOptions {
  /** Emit ANSI colours; callers pass true only when stdout is a colour terminal. */
  color?: boolean;
  /** Maximum line width in characters; default 100. */
  width?: number;
}

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

const THREAT_COLUMNS: Column[] = [
  { header: 'THREAT', min: 8 },
  { header: 'RESULT', min: 6 },
  { header: 'SEVERITY', min: 4 },
  { header: 'KEY FIGURE', min: 10 },
];

const FINDING_COLUMNS: Column[] = [
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

/** Prose (the verdict, reasons) wraps at spaces instead of losing its end; continuation lines are indented. */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    const next = line ? `${line} ${word}` : word;
    if (len(next) <= width || !line) line = next;
    else {
      lines.push(line);
      line = `  ${word}`;
    }
  }
  lines.push(line);
  return lines.map((l) => fit(l, width).trimEnd());
}

function paint(text: string, sgr: string | undefined, color: boolean): string {
  return color && sgr ? `\u001b[${sgr}m${text}\u001b[0m` : text;
}

/**
 * Narrows the widest columns first, one character at a time, so that short columns such as
 * RESULT stay whole and the long free-text ones (titles, sections) give way.
 */
function fitWidths(columns: Column[], natural: number[], total: number): number[] {
  const widths = [...natural];
  const used = (): number => widths.reduce((a, b) => a + b, 0) + GAP.length * (widths.length - 1);
  let excess = used() - total;
  while (excess > 0) {
    let pick = -1;
    for (let c = 0; c < widths.length; c++) {
      if (widths[c]! > columns[c]!.min && (pick < 0 || widths[c]! > widths[pick]!)) pick = c;
    }
    if (pick < 0) break;
    widths[pick]!--;
    excess--;
  }
  return widths;
}

interface Row {
  cells: string[];
  /** ANSI styles per cell index, applied only when the line was not cut. */
  styles: Record<number, string>;
}

function table(columns: Column[], rows: Row[], width: number, color: boolean): string[] {
  const clip = (line: string): string => fit(line, width).trimEnd();
  const natural = columns.map((col, c) => Math.max(len(col.header), ...rows.map((r) => len(r.cells[c]!))));
  const widths = fitWidths(columns, natural, width);
  const plain = (cells: string[]): string[] => cells.map((cell, c) => fit(cell, widths[c]!, columns[c]!.right));
  const lines = [paint(clip(plain(columns.map((c) => c.header)).join(GAP)), '1', color), paint(clip('─'.repeat(width)), '2', color)];
  for (const row of rows) {
    const cells = plain(row.cells);
    const line = clip(cells.join(GAP));
    if (!color || len(line) < len(cells.join(GAP).trimEnd())) {
      // A line cut at the edge may have lost the coloured cells; print it plain.
      lines.push(line);
      continue;
    }
    for (const [c, sgr] of Object.entries(row.styles)) {
      const i = Number(c);
      const last = i === cells.length - 1;
      cells[i] = last ? paint(cells[i]!.trimEnd(), sgr, true) : paint(cells[i]!, sgr, true);
    }
    lines.push(cells.join(GAP).trimEnd());
  }
  return lines;
}

function threatResult(t: ThreatRow): { text: string; sgr: string } {
  if (t.status === 'skipped') return { text: 'skipped', sgr: '33' };
  if (t.status === 'failed') return { text: 'error', sgr: '1;31' };
  if (t.failed > 0) return { text: `${t.failed} failed`, sgr: '1;31' };
  if (severityOrder[t.severity] >= severityOrder.medium) return { text: 'review', sgr: '33' };
  return { text: 'pass', sgr: '32' };
}

function findingResult(fd: Finding): string {
  return fd.passed === true ? 'PASS' : fd.passed === false ? 'FAIL' : '—';
}

function countsLine(findings: Finding[]): string {
  const bySeverity = SEVERITIES_DESC.map((s) => `${findings.filter((fd) => knownSeverity(fd.severity) === s).length} ${s}`).join(', ');
  const failed = findings.filter((fd) => fd.passed === false).length;
  const passed = findings.filter((fd) => fd.passed === true).length;
  return `${findings.length} finding${findings.length === 1 ? '' : 's'}: ${bySeverity}; ${failed} failed, ${passed} passed`;
}

const VERDICT_SGR = { pass: '1;32', warn: '1;33', fail: '1;31' } as const;

export function renderSummary(report: Report, opts: SummaryOptions = {}): string {
  const color = opts.color === true;
  const width = opts.width !== undefined && Number.isFinite(opts.width) ? Math.max(20, Math.floor(opts.width)) : 100;
  // Every line is cut to the width as a last resort, for widths narrower than the minimums.
  const clip = (line: string): string => fit(line, width).trimEnd();
  const summary = summarize(report);
  const lines: string[] = [];

  const word = summary.verdict.toUpperCase();
  const sentence = wrap(clean(`${word}  ${verdictSentence(summary)}`), width);
  if (color) sentence[0] = paint(word, VERDICT_SGR[summary.verdict], true) + sentence[0]!.slice(word.length);
  lines.push(...sentence);
  lines.push('');
  if (summary.threats.length > 0) {
    const threatRows: Row[] = summary.threats.map((t) => {
      const result = threatResult(t);
      return { cells: [t.title, result.text, t.severity, t.keyFigure].map(clean), styles: { 1: result.sgr, 2: SEVERITY_SGR[t.severity] } };
    });
    lines.push(...table(THREAT_COLUMNS, threatRows, width, color));
    lines.push('');
  }

  const findingRows: Row[] = [];
  const findings: Finding[] = [];
  for (const section of report.sections) {
    for (const fd of viewSection(section).findings) {
      findings.push(fd);
      const sev = knownSeverity(String(fd.severity));
      findingRows.push({
        cells: [section.title, fd.title, String(fd.severity), fd.metric, formatMetricValue(fd.metric, fd.value), formatMetricValue(fd.metric, fd.threshold), findingResult(fd)].map(clean),
        styles: { 2: SEVERITY_SGR[sev], 6: fd.passed === true ? '32' : fd.passed === false ? '1;31' : '2' },
      });
    }
  }
  if (findingRows.length === 0) lines.push(clip('No findings.'));
  else lines.push(...table(FINDING_COLUMNS, findingRows, width, color));
  lines.push(paint(clip(countsLine(findings)), '1', color));
  return `${lines.join('\n')}\n`;
}
