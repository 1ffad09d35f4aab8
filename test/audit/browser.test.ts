import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import type { Report } from '../../src/core/index.js';
import { renderHtml } from '../../src/audit/render-html.js';
import { FULL_REPORT_IMAGES, FULL_REPORT_SVG_CHARTS, fullReport } from './render-fixture.js';

/**
 * The report as a person sees it: opened from a file in headless Chromium (Debian's, driven
 * by playwright-core). BULWARK_SCREENSHOT names where the screenshot goes; BULWARK_REPORT
 * names a report.json from a real `bulwark audit` to check the same way.
 */

const CHROMIUM = '/usr/bin/chromium';

function skipWithoutChromium(t: TestContext): boolean {
  if (existsSync(CHROMIUM)) return false;
  t.skip(`${CHROMIUM} is absent; run scripts/ensure-chromium.sh (as root) to install Debian's chromium`);
  return true;
}

interface Opened {
  problems: string[];
  requests: string[];
  sectionIds: string[];
  threatRows: number;
  svgCharts: { w: number; h: number }[];
  images: { w: number; h: number; loaded: boolean }[];
  copyButtons: number;
  commands: number;
  pwned: unknown;
  hostileShown: boolean;
}

/**
 * Runs in the page. A string, not a function: tsx's transform would add helpers (__name)
 * to a function's source that do not exist in the page.
 */
const IN_PAGE = `(() => {
  const box = (e) => { const r = e.getBoundingClientRect(); return { w: r.width, h: r.height }; };
  return {
    sectionIds: [...document.querySelectorAll('section.report-section')].map((s) => s.getAttribute('data-section-id') || ''),
    threatRows: document.querySelectorAll('#summary table tbody tr').length,
    svgCharts: [...document.querySelectorAll('article.finding svg.chart')].map(box),
    images: [...document.querySelectorAll('article.finding figure.images img')].map((i) => ({ ...box(i), loaded: i.complete && i.naturalWidth > 0 })),
    copyButtons: document.querySelectorAll('.cmd button').length,
    commands: document.querySelectorAll('.cmd code').length,
    pwned: window.__pwned,
    hostileShown: document.body.innerText.includes('<script>window.__pwned = 1</script>'),
  };
})()`;

/** Opens a report file, records what went wrong, what it fetched and what it shows, and screenshots it. */
async function open(browser: Browser, file: string, screenshot: string): Promise<Opened> {
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  const problems: string[] = [];
  const requests: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText ?? ''}`));
  page.on('request', (r) => requests.push(r.url()));
  await page.goto(pathToFileURL(file).href, { waitUntil: 'load' });
  const seen = (await page.evaluate(IN_PAGE)) as Omit<Opened, 'problems' | 'requests'>;
  await page.screenshot({ path: screenshot, fullPage: true });
  await page.close();
  return { problems, requests, ...seen };
}

function check(report: Report, seen: Opened): void {
  assert.deepEqual(seen.problems, [], 'no console errors, page errors or failed requests');
  // The only request is the page itself: images are data URLs, charts inline SVG.
  assert.ok(seen.requests.every((u) => u.startsWith('file:') || u.startsWith('data:')), `only inline resources: ${seen.requests.join(', ')}`);
  assert.equal(seen.requests.filter((u) => u.startsWith('file:')).length, 1);
  assert.deepEqual(seen.sectionIds, report.sections.map((s) => s.id), 'every section is on the page');
  const threats = report.summary ? report.summary.threats.length : report.sections.length;
  assert.equal(seen.threatRows, threats, 'one summary row per threat');
  const charts = report.sections.flatMap((s) => s.findings).flatMap((fd) => (fd.chart ? [fd.chart] : []));
  assert.equal(seen.svgCharts.length, charts.filter((c) => c.kind !== 'images').length, 'one svg per bar, line and heatmap chart');
  const images = charts.reduce((n, c) => n + (c.kind === 'images' ? c.images.length : 0), 0);
  assert.equal(seen.images.length, images, 'one img per example image');
  for (const c of seen.svgCharts) assert.ok(c.w > 100 && c.h > 50, `chart is drawn at a readable size (${c.w}×${c.h})`);
  for (const i of seen.images) assert.ok(i.loaded && i.w > 20, 'example image decoded and shown');
  // The copy script is allowed by the page's policy and ran: one button per command.
  assert.equal(seen.copyButtons, seen.commands);
}

/** BULWARK_SCREENSHOT is the fixture's screenshot; a real report's goes beside it with '-real'. */
function screenshotPath(dir: string, real: boolean): string {
  const given = process.env.BULWARK_SCREENSHOT;
  if (!given) return path.join(dir, real ? 'screenshot-real.png' : 'screenshot.png');
  return real ? given.replace(/(\.png)?$/, '-real.png') : given;
}

test('report.html renders in Chromium: no errors, nothing fetched, every section, chart and threat', async (t) => {
  if (skipWithoutChromium(t)) return;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bulwark-report-'));
  const report = fullReport();
  const file = path.join(dir, 'report.html');
  writeFileSync(file, renderHtml(report));
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
  try {
    const shot = screenshotPath(dir, false);
    const seen = await open(browser, file, shot);
    check(report, seen);
    assert.equal(seen.threatRows, 4);
    assert.equal(seen.svgCharts.length, FULL_REPORT_SVG_CHARTS);
    assert.equal(seen.images.length, FULL_REPORT_IMAGES);
    assert.equal(seen.copyButtons, 2);
    // A title carrying markup is shown as text and never runs.
    assert.equal(seen.pwned, undefined);
    assert.ok(seen.hostileShown);
    assert.ok(readFileSync(shot).subarray(1, 4).toString() === 'PNG');
    t.diagnostic(`screenshot: ${shot}`);
    console.log(`report screenshot: ${shot}`);
  } finally {
    await browser.close();
  }
});

test('a real audit report (BULWARK_REPORT=report.json) renders the same way', async (t) => {
  const json = process.env.BULWARK_REPORT;
  if (!json) {
    t.skip('set BULWARK_REPORT to the report.json of a `bulwark audit` run to check a real report too');
    return;
  }
  if (skipWithoutChromium(t)) return;
  const report = JSON.parse(readFileSync(json, 'utf8')) as Report;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bulwark-report-'));
  const file = path.join(dir, 'report.html');
  writeFileSync(file, renderHtml(report));
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
  try {
    const shot = screenshotPath(dir, true);
    check(report, await open(browser, file, shot));
    t.diagnostic(`screenshot: ${shot}`);
    console.log(`real report screenshot: ${shot}`);
  } finally {
    await browser.close();
  }
});
