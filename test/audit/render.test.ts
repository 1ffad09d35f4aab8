import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { inflateSync } from 'node:zlib';
import type { Report } from '../../src/core/index.js';
import { renderHtml } from '../../src/audit/render-html.js';
import { renderSummary } from '../../src/audit/render-terminal.js';
import { crc32, encodeGreyPng } from '../../src/audit/png.js';
import { formatMetricValue, niceTicks } from '../../src/audit/charts.js';
import { confusion, fullReport } from './render-fixture.js';

const count = (text: string, needle: string): number => text.split(needle).length - 1;

/** A report as written before sections had a status and reports a summary. */
function legacyReport(): Report {
  const r = fullReport();
  delete r.summary;
  r.sections = r.sections.slice(0, 2).map(({ status: _s, about: _a, reason: _r, ...rest }) => rest);
  r.sections.push({
    id: 'privacy',
    title: 'Privacy',
    seconds: 0,
    findings: [{ area: 'privacy', title: 'Privacy: not run', severity: 'info', metric: 'status', value: 'skipped', evidence: ['needs the training data'] }],
  });
  return r;
}

test('html opens with the verdict and one summary row per threat, before any section', () => {
  const html = renderHtml(fullReport());
  assert.ok(html.startsWith('<!doctype html>'));
  const summaryAt = html.indexOf('id="summary"');
  assert.ok(summaryAt > 0 && summaryAt < html.indexOf('<section class="report-section"'));
  assert.ok(html.indexOf('id="contents"') < html.indexOf('<section class="report-section"'));
  assert.ok(html.includes('class="verdict verdict-fail"'));
  assert.equal(count(html, '<tr class="threat-row"'), 4);
  const rows = [...html.matchAll(/<tr class="threat-row" data-threat-id="([^"]+)" data-status="([^"]+)">(.*?)<\/tr>/g)];
  assert.deepEqual(rows.map((m) => [m[1], m[2]]), [['model', 'ran'], ['evasion', 'ran'], ['privacy', 'skipped'], ['poisoning', 'failed']]);
  assert.match(rows[1]![3]!, /href="#section-evasion".*1 failed.*sev-critical.*robust accuracy 18\.77% at ε = 0\.1/);
  assert.match(rows[0]![3]!, /res-pass/);
  // The table of contents links every section.
  for (const id of ['model', 'evasion', 'privacy', 'poisoning']) assert.ok(html.includes(`<a href="#section-${id}">`), id);
});

test('every section is there with its status; skipped and failed ones say why', () => {
  const html = renderHtml(fullReport());
  const sections = [...html.matchAll(/<section class="report-section" id="([^"]+)" data-section-id="([^"]+)" data-status="([^"]+)">/g)];
  assert.deepEqual(sections.map((m) => [m[1], m[2], m[3]]), [
    ['section-model', 'model', 'ran'],
    ['section-evasion', 'evasion', 'ran'],
    ['section-privacy', 'privacy', 'skipped'],
    ['section-poisoning', 'poisoning', 'failed'],
  ]);
  assert.equal(count(html, '<article class="finding'), 4);
  assert.ok(html.includes('membership inference needs the training data; give --train-data'));
  assert.ok(html.includes('E_MODEL_CAPABILITY: the model cannot be retrained (fit is missing)'));
  assert.ok(html.includes('<h4>What was tested</h4><p>Whether small input changes flip the prediction.</p>'));
  assert.ok(html.includes('<h4>How</h4><p>PGD (L∞, 40 steps) at several ε on 200 test samples.</p>'));
  assert.ok(html.includes('data-finding-id="evasion.pgd-robust-accuracy"'));
});

test('the header says how the run was made; a metered section says what it asked', () => {
  const html = renderHtml(fullReport());
  assert.ok(html.includes('<dt>Mode</dt><dd>quick</dd>'));
  assert.ok(html.includes('<dt>Access</dt><dd>predict-only, 1234 queries of 5000</dd>'));
  assert.ok(html.includes('<dt>Training data</dt><dd>not given</dd>'));
  assert.ok(html.includes('<span class="time">312 / 500 queries · 12.5 s</span>'));
});

test('without a summary, sections of one threat share one row', () => {
  const r = legacyReport();
  r.sections.splice(2, 0, {
    id: 'evasion-api',
    title: 'Evasion through the API',
    threat: 'evasion',
    status: 'ran',
    seconds: 3,
    findings: [{ area: 'evasion', title: 'Square attack', severity: 'medium', metric: 'success rate', value: 0.5, threshold: 0.3, passed: false, evidence: [] }],
  });
  r.sections[1]!.threat = 'evasion';
  const html = renderHtml(r);
  const rows = [...html.matchAll(/<tr class="threat-row" data-threat-id="([^"]+)" data-status="([^"]+)">(.*?)<\/tr>/g)];
  assert.deepEqual(rows.map((m) => m[1]), ['model', 'evasion', 'privacy']);
  assert.match(rows[1]![3]!, /href="#section-evasion".*2 failed.*sev-critical.*<td class="count">2 of 3<\/td>/);
  assert.equal(count(html, '<section class="report-section"'), 4);
});

test('remedies name the defence and give the command, escaped, in a copyable block', () => {
  const html = renderHtml(fullReport());
  assert.equal(count(html, '<div class="remedy">'), 2);
  assert.ok(html.includes('<strong>Adversarial training</strong>'));
  assert.ok(html.includes('<code>bulwark train --model mlp --adversarial pgd --eps 0.1 --out models/mlp-adv</code>'));
  assert.ok(html.includes('<code>bulwark defend squeeze --model &#39;models/&#60;your model&#62;&#39; --fpr 0.05</code>'));
  assert.ok(html.includes('Training on attacked inputs raises accuracy under attack the most.'));
});

test('html has one inline svg per bar, line and heatmap chart', () => {
  const html = renderHtml(fullReport());
  assert.equal(count(html, '<svg'), 3);
});

test('heatmap draws k×k cells and prints every value', () => {
  const html = renderHtml(fullReport());
  assert.equal(count(html, 'class="hm-cell"'), confusion.length ** 2);
  const svg = html.slice(html.indexOf('Confusion matrix</title>'));
  for (const row of confusion) for (const v of row) assert.ok(svg.includes(`>${v}</text>`), `cell ${v} printed`);
  // Global normalisation: the largest value is darkest and the smallest white.
  assert.ok(svg.includes('fill="rgb(8,48,107)"'));
  assert.ok(svg.includes('true class') && svg.includes('predicted class'));
});

test('html fetches nothing and runs only its own script, allowed by hash', () => {
  const html = renderHtml(fullReport());
  const noNs = html.replaceAll('http://www.w3.org/2000/svg', '');
  assert.ok(!noNs.includes('http://') && !noNs.includes('https://'));
  assert.ok(!/<link\b/i.test(html));
  assert.ok(html.includes("default-src 'none'"));
  const scripts = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)];
  assert.equal(scripts.length, 1);
  const hash = createHash('sha256').update(scripts[0]![1]!).digest('base64');
  assert.ok(html.includes(`script-src 'sha256-${hash}'`));
  // Without a command to copy there is no script and the policy allows none.
  const plain = fullReport();
  for (const s of plain.sections) for (const fd of s.findings) delete fd.remedies;
  const quiet = renderHtml(plain);
  assert.ok(!/<script/i.test(quiet) && !quiet.includes('script-src'));
});

test('report strings are escaped', () => {
  const html = renderHtml(fullReport());
  assert.ok(html.includes('&#60;script&#62;window.__pwned = 1&#60;/script&#62;&#60;img src=x onerror=&#34;window.__pwned = 2&#34;&#62;'));
  assert.ok(!html.includes('<img src=x'));
  assert.ok(!html.includes('<b>bold</b>'));
  assert.ok(html.includes('adv: 3 &#34;x&#34;'));
  assert.ok(html.includes('rows are true classes &#38; columns predictions'));
  const r = fullReport();
  r.sections[0]!.id = '"><script>x</script>';
  r.summary!.threats[0]!.id = '"><script>x</script>';
  const weird = renderHtml(r);
  assert.equal(count(weird, '<script>'), 1);
  assert.ok(weird.includes('id="section-script-x-script"'));
});

test('image strip embeds PNG data URLs with the right size', () => {
  const html = renderHtml(fullReport());
  const urls = [...html.matchAll(/src="data:image\/png;base64,([A-Za-z0-9+/=]+)"/g)].map((m) => m[1]!);
  assert.equal(urls.length, 2);
  const png = Buffer.from(urls[0]!, 'base64');
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  assert.equal(png.toString('ascii', 12, 16), 'IHDR');
  assert.equal(png.readUInt32BE(16), 28);
  assert.equal(png.readUInt32BE(20), 14);
  assert.equal(png.readUInt32BE(29), crc32(png.subarray(12, 29)));
});

test('png pixels round-trip through inflate', () => {
  const png = encodeGreyPng(3, 2, [0, 0.5, 1, Number.NaN, 2, -1]);
  const idatLen = png.readUInt32BE(33);
  assert.equal(png.toString('ascii', 37, 41), 'IDAT');
  const raw = inflateSync(png.subarray(41, 41 + idatLen));
  assert.deepEqual([...raw], [0, 0, 128, 255, 0, 0, 255, 0]);
  assert.equal(png.toString('ascii', png.length - 8, png.length - 4), 'IEND');
  assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
});

test('numbers are formatted for reading; non-finite shows a dash', () => {
  const html = renderHtml(fullReport());
  assert.ok(html.includes('<span class="value">98.77%</span><span class="metric">test accuracy</span><span class="threshold">threshold 90.00%</span>'));
  assert.ok(html.includes('<span class="value">81.23%</span><span class="metric">attack success rate</span>'));
  assert.ok(html.includes('<span class="value">—</span><span class="metric">mean L2 perturbation</span>'));
  assert.equal(formatMetricValue('mean L2 perturbation', 1.23456789), '1.235');
  assert.equal(formatMetricValue('queries', 60000), '60000');
  assert.equal(formatMetricValue('error rate', 3.5), '3.5');
  assert.equal(formatMetricValue('loss', Number.POSITIVE_INFINITY), '—');
  assert.deepEqual(niceTicks(0, 0.98), [0, 0.25, 0.5, 0.75, 1]);
});

test('an older report without summary or statuses gets a derived summary', () => {
  const html = renderHtml(legacyReport());
  // A failed critical finding fails the report; the placeholder finding becomes a skip notice.
  assert.ok(html.includes('class="verdict verdict-fail"'));
  const rows = [...html.matchAll(/<tr class="threat-row" data-threat-id="([^"]+)" data-status="([^"]+)">(.*?)<\/tr>/g)];
  assert.deepEqual(rows.map((m) => [m[1], m[2]]), [['model', 'ran'], ['evasion', 'ran'], ['privacy', 'skipped']]);
  // Key figure: the worst finding, failed ones first.
  assert.match(rows[1]![3]!, /sev-critical.*attack success rate: 81\.23%/);
  assert.match(rows[0]![3]!, /sev-low.*largest off-diagonal count: 1098/);
  assert.ok(html.includes('data-section-id="privacy" data-status="skipped"'));
  assert.ok(html.includes('needs the training data'));
  assert.ok(!html.includes('Privacy: not run'));

  const passing = legacyReport();
  for (const s of passing.sections) for (const fd of s.findings) if (fd.passed === false) fd.passed = true;
  assert.ok(renderHtml(passing).includes('class="verdict verdict-pass"'));
  const medium = legacyReport();
  medium.sections[1]!.findings[0]!.severity = 'medium';
  assert.ok(renderHtml(medium).includes('class="verdict verdict-warn"'));
});

test('an empty report still renders', () => {
  const report: Report = { ...fullReport(), sections: [] };
  delete report.summary;
  const html = renderHtml(report);
  assert.ok(html.includes('No threats were tested.'));
  assert.ok(html.includes('verdict-pass'));
  assert.match(renderSummary(report), /^0 findings: /m);
});

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[/;

test('terminal: verdict and one row per threat first, then one row per finding', () => {
  const out = renderSummary(fullReport(), { color: false, width: 120 });
  assert.ok(!ANSI.test(out));
  const lines = out.trimEnd().split('\n');
  assert.equal(lines[0], 'FAIL  1 finding failed, 1 of them at or above high severity (--fail-on). 1 threat not tested. 1 section did not finish.');
  assert.match(lines[2]!, /^THREAT\s+RESULT\s+SEVERITY\s+KEY FIGURE$/);
  assert.match(lines[4]!, /^Model quality\s+pass\s+info\s+test accuracy 98\.77%$/);
  assert.match(lines[5]!, /^Evasion\s+1 failed\s+critical\s+robust accuracy 18\.77% at ε = 0\.1$/);
  assert.match(lines[6]!, /^Privacy\s+skipped\s+info\s+not run$/);
  assert.match(lines[7]!, /^Poisoning\s+error\s+medium\s+did not finish$/);
  assert.equal(lines[8], '');
  assert.match(lines[9]!, /^SECTION\s+FINDING\s+SEVERITY\s+METRIC\s+VALUE\s+THRESHOLD\s+RESULT$/);
  assert.match(lines[11]!, /^Model quality\s+Clean test accuracy\s+info\s+test accuracy\s+98\.77%\s+90\.00%\s+PASS$/);
  assert.match(lines[13]!, /<script>window.__pwned = 1<\/script>.*critical\s+attack success rate\s+81\.23%\s+20\.00%\s+FAIL/);
  assert.match(lines[14]!, /Adversarial examples\s+high\s+mean L2 perturbation\s+—\s+—\s+—$/);
  assert.equal(lines[15], '4 findings: 1 critical, 1 high, 0 medium, 1 low, 1 info; 1 failed, 1 passed');
  assert.equal(lines.length, 16);

  const coloured = renderSummary(fullReport(), { color: true, width: 120 });
  assert.ok(ANSI.test(coloured));
  assert.equal(coloured.replace(/\u001b\[[0-9;]*m/g, ''), out);
});

test('terminal: an older report gets the derived summary', () => {
  const out = renderSummary(legacyReport(), { width: 120 });
  assert.match(out, /^FAIL {2}1 finding failed, 1 of them at or above high severity\. 1 threat not tested\.$/m);
  assert.match(out, /^Privacy\s+skipped\s+info\s+not run$/m);
  assert.ok(!out.includes('Privacy: not run'));
});

test('terminal summary fits the width with an ellipsis', () => {
  const report = fullReport();
  report.sections[0]!.findings[0]!.title = 'A very long finding title that would never fit into a narrow terminal window at all';
  report.summary!.threats[1]!.keyFigure = 'robust accuracy 18.77% at ε = 0.1 with a very long explanation that goes on and on';
  for (const width of [60, 80, 100]) {
    const out = renderSummary(report, { width });
    const lines = out.trimEnd().split('\n');
    for (const line of lines) assert.ok(Array.from(line).length <= width, `"${line}" fits ${width}`);
    const row = lines.find((l) => l.includes('A very'))!;
    assert.ok(row.includes('…'));
    assert.match(row, /PASS$/, 'the result column survives narrowing');
    assert.ok(lines.some((l) => /^Evasion\s+1 failed\s+critical\s+robust accuracy.*…$/.test(l)));
  }
  assert.ok(renderSummary(report).trimEnd().split('\n').every((l) => Array.from(l).length <= 100));
});

test('terminal summary blanks control characters from report strings', () => {
  const report = fullReport();
  report.sections[0]!.findings[0]!.title = 'evil\u001b[2J\rtitle\u202e';
  report.summary!.threats[0]!.title = 'evil\u001b[2Jthreat';
  const out = renderSummary(report, { color: false });
  assert.ok(!ANSI.test(out));
  assert.ok(!out.includes('\r') && !out.includes('\u202e'));
});
