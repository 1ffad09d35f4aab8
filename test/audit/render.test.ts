import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inflateSync } from 'node:zlib';
import type { Report } from '../../src/core/index.js';
import { renderHtml } from '../../src/audit/render-html.js';
import { renderSummary } from '../../src/audit/render-terminal.js';
import { crc32, encodeGreyPng } from '../../src/audit/png.js';
import { formatMetricValue, niceTicks } from '../../src/audit/charts.js';

const K = 10;
// Distinct values (1000 + 10·row + col) so each cell's number can be found in the markup.
const confusion = Array.from({ length: K }, (_, r) => Array.from({ length: K }, (_, c) => 1000 + r * 10 + c));
const digit = Array.from({ length: 28 * 28 }, (_, i) => (i % 28) / 27);

function sampleReport(): Report {
  return {
    tool: 'bulwark',
    version: '0.1.0',
    createdAt: '2024-05-01T12:34:56.000Z',
    seed: 42,
    target: { model: 'mnist-cnn.onnx', engine: 'onnx', dataset: 'mnist (test, 1000)' },
    sections: [
      {
        id: 'model',
        title: 'Model quality',
        seconds: 1.234,
        findings: [
          {
            area: 'model',
            title: 'Clean test accuracy',
            severity: 'info',
            metric: 'test accuracy',
            value: 0.98765,
            threshold: 0.9,
            passed: true,
            evidence: ['9877 of 10000 correct', 'evaluated with batch size 256'],
            chart: { kind: 'bar', title: 'Per-class accuracy', labels: ['0', '1', '2', '3'], values: [0.99, 0.97, 0.95, 0.9], unit: 'accuracy', max: 1 },
          },
          {
            area: 'model',
            title: 'Confusion matrix',
            severity: 'low',
            metric: 'largest off-diagonal count',
            value: 1098,
            evidence: ['rows are true classes & columns predictions'],
            chart: {
              kind: 'heatmap',
              title: 'Confusion matrix',
              rowLabels: confusion.map((_, i) => String(i)),
              colLabels: confusion.map((_, i) => String(i)),
              values: confusion,
              rowAxis: 'true class',
              colAxis: 'predicted class',
            },
          },
        ],
      },
      {
        id: 'evasion',
        title: 'Evasion',
        seconds: 12.5,
        findings: [
          {
            area: 'evasion',
            title: '<script>alert(1)</script>',
            severity: 'critical',
            metric: 'attack success rate',
            value: 0.8123,
            threshold: 0.2,
            passed: false,
            evidence: ['PGD L∞ ε=0.1, 40 steps <b>bold</b>'],
            chart: {
              kind: 'line',
              title: 'Robust accuracy vs ε',
              xLabel: 'ε',
              yLabel: 'accuracy',
              series: [
                { name: 'undefended', points: [[0, 0.98], [0.05, 0.6], [0.1, 0.19], [0.2, 0.01]] },
                { name: 'adv-trained', points: [[0, 0.96], [0.05, 0.9], [0.1, 0.72], [0.2, 0.3]] },
              ],
            },
          },
          {
            area: 'evasion',
            title: 'Adversarial examples',
            severity: 'high',
            metric: 'mean L2 perturbation',
            value: Number.NaN,
            evidence: [],
            chart: {
              kind: 'images',
              title: 'Clean and adversarial',
              width: 28,
              height: 14,
              images: [
                { caption: 'clean: 7', pixels: digit.slice(0, 28 * 14) },
                { caption: 'adv: 3 "x"', pixels: digit.slice(28 * 14) },
              ],
            },
          },
        ],
      },
    ],
  };
}

const count = (text: string, needle: string): number => text.split(needle).length - 1;

test('html has one inline svg per bar, line and heatmap chart', () => {
  const html = renderHtml(sampleReport());
  assert.ok(html.startsWith('<!doctype html>'));
  assert.equal(count(html, '<svg'), 3);
  assert.equal(count(html, '<section class="report-section"'), 2);
  assert.equal(count(html, '<article class="card'), 4);
});

test('heatmap draws k×k cells and prints every value', () => {
  const html = renderHtml(sampleReport());
  assert.equal(count(html, 'class="hm-cell"'), K * K);
  const svg = html.slice(html.indexOf('Confusion matrix</title>'));
  for (const row of confusion) for (const v of row) assert.ok(svg.includes(`>${v}</text>`), `cell ${v} printed`);
  // Global normalisation: the largest value is darkest and the smallest white.
  assert.ok(svg.includes('fill="rgb(8,48,107)"'));
  assert.ok(svg.includes('true class') && svg.includes('predicted class'));
});

test('html fetches nothing: no URL but the SVG namespace', () => {
  const html = renderHtml(sampleReport()).replaceAll('http://www.w3.org/2000/svg', '');
  assert.ok(!html.includes('http://'));
  assert.ok(!html.includes('https://'));
  assert.ok(!/<script/i.test(html));
  assert.ok(!/<link\b/i.test(html));
  assert.ok(html.includes("default-src 'none'"));
});

test('report strings are escaped', () => {
  const html = renderHtml(sampleReport());
  assert.ok(html.includes('&#60;script&#62;alert(1)&#60;/script&#62;'));
  assert.ok(!html.includes('<b>bold</b>'));
  assert.ok(html.includes('adv: 3 &#34;x&#34;'));
  assert.ok(html.includes('rows are true classes &#38; columns predictions'));
});

test('image strip embeds PNG data URLs with the right size', () => {
  const html = renderHtml(sampleReport());
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
  const html = renderHtml(sampleReport());
  assert.ok(html.includes('test accuracy = <strong>98.77%</strong>'));
  assert.ok(html.includes('attack success rate = <strong>81.23%</strong>'));
  assert.ok(html.includes('mean L2 perturbation = <strong>—</strong>'));
  assert.equal(formatMetricValue('mean L2 perturbation', 1.23456789), '1.235');
  assert.equal(formatMetricValue('queries', 60000), '60000');
  assert.equal(formatMetricValue('error rate', 3.5), '3.5');
  assert.equal(formatMetricValue('loss', Number.POSITIVE_INFINITY), '—');
  assert.deepEqual(niceTicks(0, 0.98), [0, 0.25, 0.5, 0.75, 1]);
});

test('an empty report still renders', () => {
  const report = { ...sampleReport(), sections: [] };
  assert.ok(renderHtml(report).includes('No findings.'));
  assert.match(renderSummary(report), /^0 findings: /m);
});

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[/;

test('terminal summary: one row per finding, no colour unless asked', () => {
  const out = renderSummary(sampleReport(), { color: false, width: 120 });
  assert.ok(!ANSI.test(out));
  const lines = out.trimEnd().split('\n');
  assert.match(lines[0]!, /^SECTION\s+FINDING\s+SEVERITY\s+METRIC\s+VALUE\s+THRESHOLD\s+RESULT$/);
  assert.equal(lines.length, 2 + 4 + 1);
  assert.match(lines[2]!, /^Model quality\s+Clean test accuracy\s+info\s+test accuracy\s+98\.77%\s+90\.00%\s+PASS$/);
  assert.match(lines[4]!, /<script>alert\(1\)<\/script>\s+critical\s+attack success rate\s+81\.23%\s+20\.00%\s+FAIL/);
  assert.match(lines[5]!, /Adversarial examples\s+high\s+mean L2 perturbation\s+—\s+—\s+—$/);
  assert.equal(lines[6], '4 findings: 1 critical, 1 high, 0 medium, 1 low, 1 info; 1 failed, 1 passed');

  const coloured = renderSummary(sampleReport(), { color: true, width: 120 });
  assert.ok(ANSI.test(coloured));
  assert.equal(coloured.replace(/\u001b\[[0-9;]*m/g, ''), out);
});

test('terminal summary fits the width with an ellipsis', () => {
  const report = sampleReport();
  report.sections[0]!.findings[0]!.title = 'A very long finding title that would never fit into a narrow terminal window at all';
  for (const width of [60, 80, 100]) {
    const out = renderSummary(report, { width });
    const lines = out.trimEnd().split('\n');
    for (const line of lines) assert.ok(Array.from(line).length <= width, `"${line}" fits ${width}`);
    assert.ok(lines[2]!.includes('…'));
    assert.match(lines[2]!, /PASS$/, 'the result column survives narrowing');
  }
  assert.ok(renderSummary(report).trimEnd().split('\n').every((l) => Array.from(l).length <= 100));
});

test('terminal summary blanks control characters from report strings', () => {
  const report = sampleReport();
  report.sections[0]!.findings[0]!.title = 'evil\u001b[2J\rtitle\u202e';
  const out = renderSummary(report, { color: false });
  assert.ok(!ANSI.test(out));
  assert.ok(!out.includes('\r') && !out.includes('\u202e'));
});
