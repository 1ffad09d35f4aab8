import { createHash } from 'node:crypto';

/**
 * The report's inline stylesheet and its one script. The script only adds copy buttons to
 * commands; the page reads and prints the same without it. Its hash goes into the page's
 * Content-Security-Policy, so no other script (say, one smuggled into a finding's text past
 * the escaping) can run.
 */

export const CSS = `
:root{--fg:#1b1f24;--muted:#5b6470;--line:#d8dde3;--bg:#f4f6f8;--card:#fff;--head:#0f1b2d;--accent:#2456a4;
--critical:#7a1230;--high:#c4261d;--medium:#b96a00;--low:#2563eb;--info:#6b7280;--pass:#1a7f37;--fail:#c4261d;--warn:#b96a00}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;font:14px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--fg);background:var(--bg)}
.wrap{max-width:1080px;margin:0 auto;padding:0 24px}
a{color:var(--accent);text-decoration:none}a:hover{text-decoration:underline}
.top{background:var(--head);color:#e8edf3;padding:22px 0 18px;-webkit-print-color-adjust:exact;print-color-adjust:exact}
.top .brand{font-size:12px;letter-spacing:.12em;text-transform:uppercase;color:#9fb3cc;font-weight:600}
.top h1{font-size:24px;margin:4px 0 10px;font-weight:650;overflow-wrap:anywhere}
dl.meta{display:flex;flex-wrap:wrap;gap:6px 28px;margin:0;font-size:13px}
dl.meta div{display:flex;gap:6px}dl.meta dt{color:#9fb3cc}dl.meta dd{margin:0;font-weight:500;overflow-wrap:anywhere}
main.wrap{padding-top:22px;padding-bottom:8px}
h2{font-size:19px;margin:0 0 10px;font-weight:650}
h3{font-size:15.5px;margin:0;font-weight:620}
h4{font-size:12px;margin:0 0 6px;text-transform:uppercase;letter-spacing:.06em;color:var(--muted)}
.muted{color:var(--muted)}
.panel{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:18px 20px;margin:0 0 20px}
.verdict{display:flex;align-items:stretch;border-radius:8px;overflow:hidden;margin:0 0 18px;border:1px solid var(--line);background:var(--card);
-webkit-print-color-adjust:exact;print-color-adjust:exact}
.verdict .word{min-width:120px;display:flex;align-items:center;justify-content:center;font-size:22px;font-weight:750;letter-spacing:.08em;color:#fff;padding:14px 18px}
.verdict .text{padding:12px 18px;display:flex;flex-direction:column;justify-content:center}
.verdict .text strong{font-size:15px}
.verdict-pass .word{background:var(--pass)}.verdict-warn .word{background:var(--warn)}.verdict-fail .word{background:var(--fail)}
table{border-collapse:collapse;width:100%;font-size:13.5px}
th,td{padding:8px 10px;text-align:left;vertical-align:middle;border-bottom:1px solid var(--line);overflow-wrap:anywhere}
th{white-space:nowrap;font-size:12px;text-transform:uppercase;letter-spacing:.05em;color:var(--muted);font-weight:600;border-bottom:2px solid var(--line)}
tbody tr:last-child td{border-bottom:0}
td.fig{font-variant-numeric:tabular-nums}td.fig.muted{font-size:12.5px}
.summary-table td:first-child{min-width:230px;font-weight:500}
td.count{text-align:right;white-space:nowrap;color:var(--muted);font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:1px 9px;border-radius:999px;font-size:11.5px;font-weight:650;line-height:18px;color:#fff;white-space:nowrap;
text-transform:uppercase;letter-spacing:.04em;-webkit-print-color-adjust:exact;print-color-adjust:exact}
.sev-critical{background:var(--critical)}.sev-high{background:var(--high)}.sev-medium{background:var(--medium)}
.sev-low{background:var(--low)}.sev-info{background:#e6e9ed;color:#4b5563}
.res-pass{background:#dcf3e3;color:#14632b}.res-review{background:#fdf0d5;color:#7a4a00}.res-fail{background:var(--fail)}.res-none{background:#e6e9ed;color:#4b5563}
.st-ran{background:#e3ecf9;color:#1d4b8f}.st-skipped{background:#fdf0d5;color:#7a4a00}.st-failed{background:#fbe1df;color:#9b1c14}
nav.toc ol{margin:0;padding:0;list-style:none;columns:2;column-gap:32px}
nav.toc li{display:flex;align-items:baseline;gap:8px;padding:3px 0;break-inside:avoid}
nav.toc li .n{color:var(--muted);font-variant-numeric:tabular-nums;min-width:1.6em}
nav.toc li .what{margin-left:auto;color:var(--muted);font-size:12.5px;white-space:nowrap}
section.report-section{margin:28px 0 0}
.section-head{display:flex;flex-wrap:wrap;align-items:center;gap:10px;border-bottom:2px solid var(--head);padding-bottom:6px;margin-bottom:12px}
.section-head h2{margin:0}
.section-head .time{margin-left:auto;color:var(--muted);font-size:12.5px}
.about{display:grid;grid-template-columns:1fr 1fr;gap:12px 24px;background:var(--card);border:1px solid var(--line);border-radius:8px;padding:12px 16px;margin:0 0 12px}
.about p{margin:0}
.notice{border-radius:8px;padding:12px 16px;margin:0 0 12px;border:1px solid}
.notice.skipped{background:#fffaf0;border-color:#f0d9a8}.notice.failed{background:#fff5f4;border-color:#f1c0bb}
.notice p{margin:2px 0 0;overflow-wrap:anywhere}
article.finding{background:var(--card);border:1px solid var(--line);border-left:5px solid #c9ced6;border-radius:8px;padding:14px 18px;margin:0 0 12px;
-webkit-print-color-adjust:exact;print-color-adjust:exact}
article.finding.is-fail.sev-b-critical{border-left-color:var(--critical)}article.finding.is-fail.sev-b-high{border-left-color:var(--high)}
article.finding.is-fail.sev-b-medium{border-left-color:var(--medium)}article.finding.is-fail.sev-b-low{border-left-color:var(--low)}
article.finding.is-pass{border-left-color:var(--pass)}
.finding-head{display:flex;flex-wrap:wrap;align-items:center;gap:8px}
.finding-head h3{margin-right:auto}
.figure{display:flex;flex-wrap:wrap;align-items:baseline;gap:6px 14px;margin:8px 0 2px}
.figure .value{font-size:20px;font-weight:700;font-variant-numeric:tabular-nums}
.figure .metric{color:var(--muted)}
.figure .threshold{font-size:12.5px;color:var(--muted);border:1px solid var(--line);border-radius:4px;padding:0 6px}
ul.evidence{margin:6px 0 0;padding-left:18px;color:#333}
ul.evidence li{margin:1px 0;overflow-wrap:anywhere}
.chart-wrap{margin-top:12px;overflow-x:auto}
svg.chart{max-width:100%;height:auto;display:block;background:#fff}
figure{margin:0}.chart-title{font-weight:600;margin-bottom:6px}
.thumbs{display:flex;flex-wrap:wrap;gap:10px}
.thumb{text-align:center;font-size:12px;max-width:170px;overflow-wrap:anywhere;color:var(--muted)}
.thumb img{image-rendering:pixelated;border:1px solid var(--line);display:block;margin:0 auto 3px;background:#000}
.remedies{margin-top:12px;padding:12px 14px;background:#f3f7fd;border:1px solid #d5e2f4;border-radius:6px}
.remedy+.remedy{margin-top:10px;padding-top:10px;border-top:1px dashed #c9d8ee}
.remedy .why{color:#333}
.cmd{display:flex;align-items:stretch;margin-top:6px;border:1px solid #c9d3df;border-radius:6px;overflow:hidden;background:#0f1b2d}
.cmd pre{margin:0;padding:7px 10px;flex:1;overflow-x:auto;white-space:pre-wrap;word-break:break-all}
.cmd code{font:12.5px/1.5 ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;color:#e8edf3;user-select:all}
.cmd button{border:0;border-left:1px solid #33445c;background:#1d2d45;color:#e8edf3;font:inherit;font-size:12px;padding:0 12px;cursor:pointer}
.cmd button:hover{background:#2a3f5f}
footer{padding:20px 0 32px;color:var(--muted);font-size:12px}
@media (max-width:720px){.about{grid-template-columns:1fr}nav.toc ol{columns:1}.wrap{padding:0 12px}.panel{padding:14px 12px}
.verdict .word{min-width:76px;font-size:17px;padding:10px}.table-wrap{overflow-x:auto}.summary-table{min-width:600px}}
@media print{
body{background:#fff;font-size:11.5px}
.wrap{max-width:none;padding:0}
.top{padding:10px 14px;border-radius:6px}
.panel,.about,article.finding,.notice,.remedies{break-inside:avoid;page-break-inside:avoid}
.section-head{break-after:avoid;page-break-after:avoid}
tr{break-inside:avoid}
.cmd button{display:none}
.cmd{background:#fff}.cmd code{color:#111}
.chart-wrap{overflow:visible}
a{color:inherit}
@page{margin:12mm}
}`;

/** Copies a command on click; falls back to a selection where the clipboard API is refused (file:// in some browsers). */
export const SCRIPT = `document.querySelectorAll('.cmd').forEach(function(box){var code=box.querySelector('code');var b=document.createElement('button');b.type='button';b.textContent='Copy';b.setAttribute('aria-label','Copy command');b.addEventListener('click',function(){var t=code.textContent;var done=function(){b.textContent='Copied';setTimeout(function(){b.textContent='Copy';},1500);};var fallback=function(){var r=document.createRange();r.selectNodeContents(code);var s=getSelection();s.removeAllRanges();s.addRange(r);try{document.execCommand('copy');done();}catch(e){}};if(navigator.clipboard&&navigator.clipboard.writeText){navigator.clipboard.writeText(t).then(done,fallback);}else{fallback();}});box.appendChild(b);});`;

export const SCRIPT_HASH = `sha256-${createHash('sha256').update(SCRIPT).digest('base64')}`;
