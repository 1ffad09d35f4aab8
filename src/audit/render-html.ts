import type { Finding, Remedy, Report, ReportSection, Severity } from '../core/index.js';
import { severityOrder } from '../core/index.js';
import { escapeHtml, formatMetricValue, formatNumber, renderChart } from './charts.js';
import { CSS, SCRIPT, SCRIPT_HASH } from './render/style.js';
import { knownSeverity, summarize, verdictSentence, viewSection, type SectionStatus, type SummaryView, type ThreatRow } from './render/summary.js';

/**
 * The audit report as one HTML file. It has to open from a mail attachment or an
 * air-gapped share, so everything is inline, and the page's CSP forbids fetching anything
 * and running any script but the page's own copy-button script (by hash), which also blunts
 * markup smuggled in through report strings. Order: verdict and one row per threat, then
 * contents, then each section with what was tested, its findings and what to do.
 */

const STATUS_LABEL: Record<SectionStatus, string> = { ran: 'ran', skipped: 'skipped', failed: 'error' };

function severityBadge(severity: Severity | string): string {
  return `<span class="badge sev-${knownSeverity(String(severity))}">${escapeHtml(String(severity))}</span>`;
}

function resultBadge(passed: boolean | undefined): string {
  if (passed === true) return '<span class="badge res-pass">pass</span>';
  if (passed === false) return '<span class="badge res-fail">fail</span>';
  return '';
}

function statusBadge(status: SectionStatus): string {
  return `<span class="badge st-${status}">${STATUS_LABEL[status] ?? escapeHtml(String(status))}</span>`;
}

/** ISO timestamps are shown in UTC so two readers in different zones see the same report. */
function formatDate(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/**
 * Element ids come from section ids, which may hold any text: only letters, digits, '-' and
 * '_' survive, and a position suffix keeps two sections that clean up alike apart.
 */
function sectionAnchors(sections: ReportSection[]): string[] {
  const seen = new Set<string>();
  return sections.map((s, i) => {
    const base = `section-${String(s.id).replace(/[^A-Za-z0-9_-]+/g, '-').replace(/^-+|-+$/g, '') || i}`;
    const id = seen.has(base) ? `${base}-${i}` : base;
    seen.add(id);
    return id;
  });
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

function verdictBanner(summary: SummaryView): string {
  const v = summary.verdict;
  const word = v === 'pass' ? 'Pass' : v === 'warn' ? 'Warn' : 'Fail';
  const headline =
    v === 'pass' ? 'No threat found that needs action.' : v === 'warn' ? 'Some checks failed; review them below.' : 'The model failed checks that need action.';
  return (
    `<div class="verdict verdict-${v}" id="verdict" role="status"><div class="word">${word}</div>` +
    `<div class="text"><strong>${headline}</strong><span>${escapeHtml(verdictSentence(summary))}</span></div></div>`
  );
}

/** A threat with no failed check but a serious ungraded one (a backdoor that took) still needs a look. */
function resultCell(t: ThreatRow): string {
  if (t.status !== 'ran') return statusBadge(t.status);
  if (t.failed > 0) return `<span class="badge res-fail">${t.failed} failed</span>`;
  if (severityOrder[t.severity] >= severityOrder.medium) return '<span class="badge res-review">review</span>';
  return t.total === 0 ? statusBadge('ran') : '<span class="badge res-pass">pass</span>';
}

function summaryTable(summary: SummaryView, anchors: string[]): string {
  if (summary.threats.length === 0) return '<p class="muted">No threats were tested.</p>';
  const rows = summary.threats.map((t) => {
    const name = t.section !== undefined ? `<a href="#${anchors[t.section]}">${escapeHtml(t.title)}</a>` : escapeHtml(t.title);
    const findings = t.section !== undefined && t.status === 'ran' ? `${t.failed} of ${t.total}` : '—';
    return (
      `<tr class="threat-row" data-threat-id="${escapeHtml(t.id)}" data-status="${escapeHtml(t.status)}">` +
      `<td>${name}</td><td>${resultCell(t)}</td><td>${severityBadge(t.severity)}</td>` +
      `<td class="fig${t.status === 'ran' ? '' : ' muted'}">${escapeHtml(t.keyFigure)}</td><td class="count">${findings}</td></tr>`
    );
  });
  return (
    '<div class="table-wrap"><table class="summary-table"><thead><tr><th>Threat</th><th>Result</th><th>Severity</th><th>Key figure</th>' +
    `<th class="count">Failed</th></tr></thead><tbody>${rows.join('')}</tbody></table></div>`
  );
}

function contents(report: Report, anchors: string[]): string {
  const items = report.sections.map((section, s) => {
    const view = viewSection(section);
    const what =
      view.status === 'ran'
        ? `${plural(view.findings.length, 'finding')}${view.findings.some((fd) => fd.passed === false) ? `, ${view.findings.filter((fd) => fd.passed === false).length} failed` : ''}`
        : STATUS_LABEL[view.status];
    return `<li><span class="n">${s + 1}.</span><a href="#${anchors[s]}">${escapeHtml(section.title)}</a><span class="what">${what}</span></li>`;
  });
  if (items.length === 0) return '';
  return `<nav class="toc panel" id="contents" aria-label="Contents"><h2>Contents</h2><ol>${items.join('')}</ol></nav>`;
}

function remedyBlock(remedies: Remedy[] | undefined): string {
  if (!remedies || remedies.length === 0) return '';
  const items = remedies.map((r) => {
    const why = r.why ? ` <span class="why">— ${escapeHtml(r.why)}</span>` : '';
    const cmd = r.command ? `<div class="cmd"><pre><code>${escapeHtml(r.command)}</code></pre></div>` : '';
    return `<div class="remedy"><strong>${escapeHtml(r.defence)}</strong>${why}${cmd}</div>`;
  });
  return `<div class="remedies"><h4>What to do</h4>${items.join('')}</div>`;
}

function card(fd: Finding, id: string): string {
  const sev = knownSeverity(String(fd.severity));
  const state = fd.passed === true ? 'is-pass' : fd.passed === false ? 'is-fail' : 'is-none';
  const threshold =
    fd.threshold === undefined ? '' : `<span class="threshold">threshold ${escapeHtml(formatMetricValue(fd.metric, fd.threshold))}</span>`;
  const evidence = fd.evidence?.length ? `<ul class="evidence">${fd.evidence.map((e) => `<li>${escapeHtml(String(e))}</li>`).join('')}</ul>` : '';
  const chart = fd.chart ? `<div class="chart-wrap">${renderChart(fd.chart)}</div>` : '';
  const dataId = fd.id ? ` data-finding-id="${escapeHtml(fd.id)}"` : '';
  return (
    `<article class="finding ${state} sev-b-${sev}" id="${id}"${dataId}>` +
    `<div class="finding-head"><h3>${escapeHtml(fd.title)}</h3>${severityBadge(fd.severity)}${resultBadge(fd.passed)}</div>` +
    `<div class="figure"><span class="value">${escapeHtml(formatMetricValue(fd.metric, fd.value))}</span>` +
    `<span class="metric">${escapeHtml(fd.metric)}</span>${threshold}</div>` +
    `${evidence}${chart}${remedyBlock(fd.remedies)}</article>`
  );
}

/** How the run was made, where the report records it: a quick run or a metered black box reads differently. */
function runMeta(report: Report): [string, string][] {
  const run = report.run;
  if (!run) return [];
  const rows: [string, string][] = [['Mode', run.quick ? 'quick' : 'full']];
  let access: string = run.access;
  if (run.access === 'predict-only') {
    access += `, ${run.queriesUsed} queries${run.budget !== null && run.budget !== undefined ? ` of ${run.budget}` : ''}`;
  }
  rows.push(['Access', access]);
  if (!run.trainingData) rows.push(['Training data', 'not given']);
  return rows;
}

function sectionBlock(section: ReportSection, s: number, anchor: string): string {
  const view = viewSection(section);
  const about = section.about
    ? `<div class="about"><div><h4>${view.status === 'ran' ? 'What was tested' : 'What it tests'}</h4><p>${escapeHtml(section.about.tested)}</p></div>` +
      `<div><h4>How</h4><p>${escapeHtml(section.about.how)}</p></div></div>`
    : '';
  let notice = '';
  if (view.status === 'skipped') {
    notice = `<div class="notice skipped"><strong>Not tested.</strong><p>${escapeHtml(view.reason ?? 'The target or the data did not allow this section.')}</p></div>`;
  } else if (view.status === 'failed') {
    notice = `<div class="notice failed"><strong>This section did not finish.</strong><p>${escapeHtml(view.reason ?? 'No reason was recorded.')}</p></div>`;
  }
  const cards = view.findings.map((fd, i) => card(fd, `f-${s}-${i}`)).join('');
  const empty = view.status === 'ran' && view.findings.length === 0 ? '<p class="muted">No findings.</p>' : '';
  const parts: string[] = [];
  if (section.queries) parts.push(`${section.queries.used}${section.queries.allowed !== null ? ` / ${section.queries.allowed}` : ''} queries`);
  if (Number.isFinite(section.seconds) && section.seconds > 0) parts.push(`${formatNumber(section.seconds, 3)} s`);
  const time = parts.length ? `<span class="time">${escapeHtml(parts.join(' · '))}</span>` : '';
  return (
    `<section class="report-section" id="${anchor}" data-section-id="${escapeHtml(String(section.id))}" data-status="${view.status}">` +
    `<div class="section-head"><h2>${escapeHtml(section.title)}</h2>${statusBadge(view.status)}${time}</div>` +
    `${notice}${about}${cards}${empty}</section>`
  );
}

export function renderHtml(report: Report): string {
  const { target } = report;
  const summary = summarize(report);
  const anchors = sectionAnchors(report.sections);
  const sections = report.sections.map((section, s) => sectionBlock(section, s, anchors[s]!)).join('\n');
  const needsScript = report.sections.some((s) => s.findings?.some((fd) => fd.remedies?.some((r) => r.command)));
  const csp = `default-src 'none'; style-src 'unsafe-inline'; img-src data:${needsScript ? `; script-src '${SCRIPT_HASH}'` : ''}`;
  const meta = [
    ['Engine', target.engine],
    ['Dataset', target.dataset],
    ...runMeta(report),
    ['Seed', String(report.seed)],
    ['Created', formatDate(report.createdAt)],
    ['Version', `${report.tool} ${report.version}`],
  ]
    .map(([k, v]) => `<div><dt>${k}</dt><dd>${escapeHtml(String(v))}</dd></div>`)
    .join('');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="generator" content="${escapeHtml(`${report.tool} ${report.version}`)}">
<title>Bulwark audit — ${escapeHtml(target.model)}</title>
<style>${CSS}</style>
</head>
<body>
<header class="top"><div class="wrap">
<div class="brand">Bulwark audit report</div>
<h1>${escapeHtml(target.model)}</h1>
<dl class="meta">${meta}</dl>
</div></header>
<main class="wrap">
<section class="summary panel" id="summary"><h2>Summary</h2>
${verdictBanner(summary)}
${summaryTable(summary, anchors)}
</section>
${contents(report, anchors)}
${sections}
</main>
<footer class="wrap">Generated by ${escapeHtml(report.tool)} ${escapeHtml(report.version)} on ${escapeHtml(formatDate(report.createdAt))} with seed ${escapeHtml(String(report.seed))}. Same seed, same report.</footer>
${needsScript ? `<script>${SCRIPT}</script>\n` : ''}</body>
</html>
`;
}
