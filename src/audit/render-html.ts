import type { Finding, Report, Severity } from '../core/index.js';
import { severityOrder } from '../core/index.js';
import { escapeHtml, formatMetricValue, formatNumber, renderChart } from './charts.js';

/**
 * The audit report as one HTML file. It has to open from a mail attachment or an
 * air-gapped share, so everything is inline and the page's CSP forbids fetching anything
 * or running any script, which also blunts markup smuggled in through report strings.
 */

const SEVERITIES: Severity[] = (Object.keys(severityOrder) as Severity[]).sort(
  (a, b) => severityOrder[b] - severityOrder[a],
);

const CSS = `
:root{--fg:#1f2328;--muted:#656d76;--line:#d0d7de;--bg:#f6f8fa;--card:#fff;
--critical:#7f1d1d;--high:#dc2626;--medium:#f59e0b;--low:#2563eb;--info:#6b7280;--pass:#15803d;--fail:#b91c1c}
*{box-sizing:border-box}
body{margin:0;font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:var(--fg);background:var(--bg)}
header,main,footer{max-width:1040px;margin:0 auto;padding:0 20px}
header{padding-top:24px;padding-bottom:8px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:32px 0 8px;padding-bottom:4px;border-bottom:1px solid var(--line)}
h3{font-size:16px;margin:0}
.muted{color:var(--muted)}h2 .sub{font-size:13px;font-weight:400}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:12px 0}
dl.meta dt{color:var(--muted)}dl.meta dd{margin:0;font-weight:500;overflow-wrap:anywhere}
.counts{display:flex;flex-wrap:wrap;gap:6px;margin:8px 0 0}
table{border-collapse:collapse;width:100%;background:var(--card);font-size:13px}
th,td{border:1px solid var(--line);padding:5px 8px;text-align:left;vertical-align:top;overflow-wrap:anywhere}
th{background:#eef1f4;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
a{color:inherit}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;color:#fff;white-space:nowrap;
-webkit-print-color-adjust:exact;print-color-adjust:exact}
.badge.sev-critical{background:var(--critical)}.badge.sev-high{background:var(--high)}
.badge.sev-medium{background:var(--medium);color:#1f2328}.badge.sev-low{background:var(--low)}.badge.sev-info{background:var(--info)}
.pass{background:var(--pass)}.fail{background:var(--fail)}.na{background:#e5e7eb;color:var(--muted)}
.card{background:var(--card);border:1px solid var(--line);border-left:5px solid var(--info);border-radius:6px;padding:14px 18px;margin:12px 0;
-webkit-print-color-adjust:exact;print-color-adjust:exact}
.card.sev-critical{border-left-color:var(--critical)}.card.sev-high{border-left-color:var(--high)}
.card.sev-medium{border-left-color:var(--medium)}.card.sev-low{border-left-color:var(--low)}
.card-head{display:flex;flex-wrap:wrap;align-items:center;gap:8px}
.metric{margin:8px 0 4px;font-size:15px}.metric strong{font-variant-numeric:tabular-nums}
.card ul{margin:6px 0;padding-left:20px}
.chart-wrap{margin-top:10px;overflow-x:auto}
svg.chart{max-width:100%;height:auto;display:block;background:#fff}
figure{margin:0}.chart-title{font-weight:600;margin-bottom:6px}
.thumbs{display:flex;flex-wrap:wrap;gap:10px}
.thumb{text-align:center;font-size:12px;max-width:170px;overflow-wrap:anywhere}
.thumb img{image-rendering:pixelated;border:1px solid var(--line);display:block;margin:0 auto 2px;background:#000}
footer{padding:24px 20px;color:var(--muted);font-size:12px}
@media print{
body{background:#fff;font-size:12px}
header,main,footer{max-width:none;padding:0}
.card{break-inside:avoid;page-break-inside:avoid;border-radius:0}
h2{break-after:avoid;page-break-after:avoid}
tr{break-inside:avoid}
a{text-decoration:none}
.chart-wrap{overflow:visible}
@page{margin:14mm}
}`;

function severityBadge(severity: Severity): string {
  const s = SEVERITIES.includes(severity) ? severity : 'info';
  return `<span class="badge sev-${s}">${escapeHtml(String(severity))}</span>`;
}

function resultBadge(passed: boolean | undefined): string {
  if (passed === true) return '<span class="badge pass">PASS</span>';
  if (passed === false) return '<span class="badge fail">FAIL</span>';
  return '<span class="badge na">—</span>';
}

/** ISO timestamps are shown in UTC so two readers in different zones see the same report. */
function formatDate(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** Anchors are made from positions, not from section ids, which may hold any text. */
const anchor = (s: number, i: number): string => `f-${s}-${i}`;

function overview(report: Report): string {
  const rows: string[] = [];
  report.sections.forEach((section, s) => {
    section.findings.forEach((fd, i) => {
      rows.push(
        '<tr>' +
          `<td>${escapeHtml(section.title)}</td>` +
          `<td><a href="#${anchor(s, i)}">${escapeHtml(fd.title)}</a></td>` +
          `<td>${severityBadge(fd.severity)}</td>` +
          `<td>${escapeHtml(fd.metric)}</td>` +
          `<td class="num">${escapeHtml(formatMetricValue(fd.metric, fd.value))}</td>` +
          `<td class="num">${escapeHtml(formatMetricValue(fd.metric, fd.threshold))}</td>` +
          `<td>${resultBadge(fd.passed)}</td>` +
          '</tr>',
      );
    });
  });
  if (rows.length === 0) return '<p class="muted">No findings.</p>';
  return (
    '<table class="overview"><thead><tr><th>Section</th><th>Finding</th><th>Severity</th><th>Metric</th>' +
    `<th>Value</th><th>Threshold</th><th>Result</th></tr></thead><tbody>${rows.join('')}</tbody></table>`
  );
}

function counts(report: Report): string {
  const findings = report.sections.flatMap((s) => s.findings);
  const chips = SEVERITIES.map((sev) => {
    const n = findings.filter((fd) => fd.severity === sev).length;
    return n > 0 ? `<span class="badge sev-${sev}">${n} ${sev}</span>` : '';
  }).join('');
  const failed = findings.filter((fd) => fd.passed === false).length;
  const passed = findings.filter((fd) => fd.passed === true).length;
  return (
    `<div class="counts"><span class="badge na">${findings.length} finding${findings.length === 1 ? '' : 's'}</span>${chips}` +
    `<span class="badge ${failed > 0 ? 'fail' : 'na'}">${failed} failed</span>` +
    `<span class="badge ${passed > 0 ? 'pass' : 'na'}">${passed} passed</span></div>`
  );
}

function card(fd: Finding, id: string): string {
  const sev = SEVERITIES.includes(fd.severity) ? fd.severity : 'info';
  const threshold =
    fd.threshold === undefined
      ? ''
      : `<p class="muted">threshold: ${escapeHtml(formatMetricValue(fd.metric, fd.threshold))}</p>`;
  const evidence = fd.evidence.length
    ? `<ul class="evidence">${fd.evidence.map((e) => `<li>${escapeHtml(e)}</li>`).join('')}</ul>`
    : '';
  const chart = fd.chart ? `<div class="chart-wrap">${renderChart(fd.chart)}</div>` : '';
  return (
    `<article class="card sev-${sev}" id="${id}">` +
    `<div class="card-head"><h3>${escapeHtml(fd.title)}</h3>${severityBadge(fd.severity)}${resultBadge(fd.passed)}` +
    `<span class="muted">${escapeHtml(fd.area)}</span></div>` +
    `<p class="metric">${escapeHtml(fd.metric)} = <strong>${escapeHtml(formatMetricValue(fd.metric, fd.value))}</strong></p>` +
    `${threshold}${evidence}${chart}</article>`
  );
}

export function renderHtml(report: Report): string {
  const { target } = report;
  const sections = report.sections
    .map((section, s) => {
      const n = section.findings.length;
      const body = n ? section.findings.map((fd, i) => card(fd, anchor(s, i))).join('') : '<p class="muted">No findings.</p>';
      return (
        `<section class="report-section" id="s-${s}"><h2>${escapeHtml(section.title)} ` +
        `<span class="muted sub">${n} finding${n === 1 ? '' : 's'} · ${escapeHtml(formatNumber(section.seconds, 3))} s</span></h2>` +
        `${body}</section>`
      );
    })
    .join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="generator" content="${escapeHtml(`${report.tool} ${report.version}`)}">
<title>Bulwark audit — ${escapeHtml(target.model)}</title>
<style>${CSS}</style>
</head>
<body>
<header>
<h1>Bulwark audit report</h1>
<div class="muted">${escapeHtml(report.tool)} ${escapeHtml(report.version)} · ${escapeHtml(formatDate(report.createdAt))}</div>
<dl class="meta">
<dt>Model</dt><dd>${escapeHtml(target.model)}</dd>
<dt>Engine</dt><dd>${escapeHtml(target.engine)}</dd>
<dt>Dataset</dt><dd>${escapeHtml(target.dataset)}</dd>
<dt>Seed</dt><dd>${escapeHtml(String(report.seed))}</dd>
</dl>
${counts(report)}
</header>
<main>
<section class="overview-section" id="overview"><h2>Overview</h2>
${overview(report)}
</section>
${sections}
</main>
<footer>Generated by ${escapeHtml(report.tool)} ${escapeHtml(report.version)} on ${escapeHtml(formatDate(report.createdAt))}. Seed ${escapeHtml(String(report.seed))}.</footer>
</body>
</html>
`;
}
