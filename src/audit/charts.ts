import type { Chart } from '../core/index.js';
import { greyPngDataUrl } from './png.js';

/**
 * Report charts as inline SVG (and inline PNG for image strips) so a report opens offline,
 * from a file, with no script and nothing fetched. Every string that reaches the markup
 * comes from a report, which may carry text from an untrusted model or data set, so all
 * of it goes through escapeHtml.
 */

type BarChart = Extract<Chart, { kind: 'bar' }>;
type LineChart = Extract<Chart, { kind: 'line' }>;
type HeatmapChart = Extract<Chart, { kind: 'heatmap' }>;
type ImagesChart = Extract<Chart, { kind: 'images' }>;

const SVG_NS = 'http://www.w3.org/2000/svg';
const FONT = 'system-ui, -apple-system, Segoe UI, Roboto, Helvetica, Arial, sans-serif';
/** Average glyph width of the 11px chart font; used to fit labels without measuring text. */
const CHAR_W = 6.2;
/** Okabe–Ito colours: distinguishable with the common colour-vision deficiencies. */
const PALETTE = ['#0072b2', '#d55e00', '#009e73', '#cc79a7', '#e69f00', '#56b4e9', '#000000', '#7f7f7f'];

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Up to `digits` significant digits; integers stay exact because they are usually counts. */
export function formatNumber(v: number, digits = 4): string {
  if (!Number.isFinite(v)) return '—';
  if (Number.isInteger(v)) return String(v === 0 ? 0 : v);
  const s = String(Number(v.toPrecision(digits)));
  return s === '-0' ? '0' : s;
}

/** Proportions read best as percentages, but only where the metric is known to be one. */
export function formatMetricValue(metric: string, value: number | string | undefined): string {
  if (value === undefined) return '—';
  if (typeof value === 'string') return value;
  if (!Number.isFinite(value)) return '—';
  if (/accuracy|rate/i.test(metric) && value >= 0 && value <= 1) return `${(value * 100).toFixed(2)}%`;
  return formatNumber(value);
}

// Spreading a large array into Math.min/max overflows the call stack; reports can hold
// long series.
function minOf(values: number[], start = Infinity): number {
  let m = start;
  for (const v of values) if (v < m) m = v;
  return m;
}
function maxOf(values: number[], start = -Infinity): number {
  let m = start;
  for (const v of values) if (v > m) m = v;
  return m;
}

/** Axis labels have ~55px; large magnitudes switch to exponent form to stay inside it. */
function formatTick(v: number): string {
  if (Math.abs(v) >= 1e6) return v.toExponential().replace(/\.?0+e/, 'e').replace('e+', 'e');
  return formatNumber(v);
}

const f = (n: number): string => (Math.round(n * 10) / 10).toString();

function truncate(text: string, maxChars: number): string {
  const chars = Array.from(text);
  if (chars.length <= maxChars) return text;
  return maxChars <= 1 ? '…' : `${chars.slice(0, maxChars - 1).join('')}…`;
}

/** Text that is cut to fit keeps its full form in a tooltip. */
function label(x: number, y: number, text: string, maxChars: number, attrs = ''): string {
  const shown = truncate(text, maxChars);
  const tip = shown === text ? '' : `<title>${escapeHtml(text)}</title>`;
  return `<text x="${f(x)}" y="${f(y)}"${attrs ? ` ${attrs}` : ''}>${tip}${escapeHtml(shown)}</text>`;
}

function svgOpen(width: number, height: number, title: string): string {
  const t = escapeHtml(title);
  return (
    `<svg xmlns="${SVG_NS}" class="chart" width="${f(width)}" height="${f(height)}" ` +
    `viewBox="0 0 ${f(width)} ${f(height)}" role="img" aria-label="${t}" font-family="${FONT}" font-size="11" fill="#222">` +
    `<title>${t}</title>` +
    label(width / 2, 22, title, Math.floor((width - 20) / 8), 'text-anchor="middle" font-size="14" font-weight="600"')
  );
}

function noData(title: string, why = 'no data'): string {
  return `${svgOpen(600, 90, title)}<text x="300" y="62" text-anchor="middle" fill="#777">${escapeHtml(why)}</text></svg>`;
}

/**
 * About five ticks (four to six) on round steps (1, 2, 2.5, 5 × 10^k) that cover [min, max]
 * with the least wasted axis. A strict count of five would force ranges such as −200..7800
 * onto −5000..15000 and squash the data into half the plot.
 */
export function niceTicks(min: number, max: number): number[] {
  let lo = min;
  let hi = max;
  if (hi - lo < 1e-12) {
    const pad = Math.abs(lo) > 1e-12 ? Math.abs(lo) * 0.1 : 1;
    lo -= pad;
    hi += pad;
  }
  const base = Math.floor(Math.log10((hi - lo) / 5));
  let best: { start: number; step: number; n: number } | undefined;
  for (let k = base - 1; k <= base + 1; k++) {
    for (const m of [1, 2, 2.5, 5]) {
      const step = m * 10 ** k;
      const start = Math.floor(lo / step + 1e-9) * step;
      const end = Math.ceil(hi / step - 1e-9) * step;
      const n = Math.round((end - start) / step) + 1;
      if (n < 4 || n > 6) continue;
      const span = (n - 1) * step;
      const bestSpan = best ? (best.n - 1) * best.step : Infinity;
      if (span < bestSpan - 1e-9 * span || (Math.abs(span - bestSpan) <= 1e-9 * span && best && Math.abs(n - 5) < Math.abs(best.n - 5))) {
        best = { start, step, n };
      }
    }
  }
  if (!best) return evenTicks(lo, hi);
  const { start, step, n } = best;
  return Array.from({ length: n }, (_, i) => Number((start + i * step).toPrecision(12)));
}

function evenTicks(lo: number, hi: number, count = 5): number[] {
  return Array.from({ length: count }, (_, i) => Number((lo + ((hi - lo) * i) / (count - 1)).toPrecision(12)));
}

function yAxis(ticks: number[], y: (v: number) => number, left: number, right: number, title: string | undefined, midY: number): string {
  let out = '';
  for (const t of ticks) {
    const ty = y(t);
    out += `<line x1="${f(left)}" x2="${f(right)}" y1="${f(ty)}" y2="${f(ty)}" stroke="#e3e3e3"/>`;
    out += `<text x="${f(left - 6)}" y="${f(ty + 4)}" text-anchor="end" fill="#555">${escapeHtml(formatTick(t))}</text>`;
  }
  if (title) out += label(16, midY, title, 40, `text-anchor="middle" transform="rotate(-90 16 ${f(midY)})" font-weight="600"`);
  return out;
}

export function barChart(chart: BarChart): string {
  const n = chart.values.length;
  if (n === 0) return noData(chart.title);
  const W = 600;
  const left = 66;
  const right = 16;
  const top = 46;
  const plotH = 230;
  const plotW = W - left - right;
  const slot = plotW / n;
  const labels = chart.values.map((_, i) => chart.labels[i] ?? String(i));
  const flatChars = Math.max(1, Math.floor((slot - 4) / CHAR_W));
  const rotate = labels.some((l) => Array.from(l).length > flatChars);
  const labelChars = rotate ? 16 : flatChars;
  // Rotated labels need ~14px of slot each; with more bars than that, label every k-th one.
  const labelEvery = rotate ? Math.max(1, Math.ceil(14 / slot)) : 1;
  const bottom = rotate ? 30 + labelChars * CHAR_W * 0.72 : 34;
  const H = top + plotH + bottom;

  const finite = chart.values.filter(Number.isFinite);
  const lo = minOf(finite, 0);
  const given = chart.max !== undefined && Number.isFinite(chart.max) && chart.max > lo;
  const ticks = given ? evenTicks(lo, chart.max as number) : niceTicks(lo, maxOf(finite, lo));
  const yLo = ticks[0]!;
  const yHi = ticks[ticks.length - 1]!;
  const y = (v: number): number => top + plotH * (1 - (Math.min(yHi, Math.max(yLo, v)) - yLo) / (yHi - yLo));

  let out = svgOpen(W, H, chart.title) + yAxis(ticks, y, left, W - right, chart.unit, top + plotH / 2);
  const zeroY = y(0);
  const barW = Math.min(80, slot * 0.7);
  const valueFont = slot < 34 ? 9 : 11;
  chart.values.forEach((v, i) => {
    const cx = left + slot * (i + 0.5);
    const text = formatNumber(v);
    const tip = `<title>${escapeHtml(`${labels[i]}: ${text}`)}</title>`;
    if (Number.isFinite(v)) {
      const vy = y(v);
      const [y0, h] = vy < zeroY ? [vy, zeroY - vy] : [zeroY, vy - zeroY];
      out += `<rect x="${f(cx - barW / 2)}" y="${f(y0)}" width="${f(barW)}" height="${f(Math.max(h, 0.5))}" fill="#3b6fb6">${tip}</rect>`;
      const ty = v >= 0 ? vy - 4 : vy + valueFont + 2;
      if (slot >= 18) out += `<text x="${f(cx)}" y="${f(ty)}" text-anchor="middle" font-size="${valueFont}">${escapeHtml(text)}</text>`;
    } else if (slot >= 18) {
      out += `<text x="${f(cx)}" y="${f(zeroY - 4)}" text-anchor="middle" fill="#777">${tip}—</text>`;
    }
    const ly = top + plotH + 16;
    if (i % labelEvery !== 0) return;
    out += rotate
      ? label(cx, ly, labels[i]!, labelChars, `text-anchor="end" transform="rotate(-45 ${f(cx)} ${f(ly)})"`)
      : label(cx, ly, labels[i]!, labelChars, 'text-anchor="middle"');
  });
  out += `<line x1="${f(left)}" x2="${f(W - right)}" y1="${f(zeroY)}" y2="${f(zeroY)}" stroke="#444"/>`;
  out += `<line x1="${f(left)}" x2="${f(left)}" y1="${f(top)}" y2="${f(top + plotH)}" stroke="#444"/>`;
  return `${out}</svg>`;
}

export function lineChart(chart: LineChart): string {
  const pts = chart.series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  if (pts.length === 0) return noData(chart.title);
  const W = 600;
  const left = 66;
  const right = 20;
  const top = 46;
  const plotH = 250;
  const plotW = W - left - right;
  const xt = niceTicks(minOf(pts.map((p) => p[0])), maxOf(pts.map((p) => p[0])));
  const yt = niceTicks(minOf(pts.map((p) => p[1])), maxOf(pts.map((p) => p[1])));
  const [x0, x1, y0, y1] = [xt[0]!, xt[xt.length - 1]!, yt[0]!, yt[yt.length - 1]!];
  const sx = (v: number): number => left + (plotW * (v - x0)) / (x1 - x0);
  const sy = (v: number): number => top + plotH * (1 - (v - y0) / (y1 - y0));

  // Legend entries flow left to right and wrap, so long series names never overlap.
  const legend: { x: number; row: number; name: string; colour: string }[] = [];
  let lx = left;
  let row = 0;
  chart.series.forEach((s, i) => {
    const name = truncate(s.name, 40);
    const w = 30 + Array.from(name).length * CHAR_W + 16;
    if (lx + w > W - right && lx > left) {
      lx = left;
      row++;
    }
    legend.push({ x: lx, row, name, colour: PALETTE[i % PALETTE.length]! });
    lx += w;
  });
  const legendTop = top + plotH + 58;
  const H = legendTop + (row + 1) * 18 + 4;

  let out = svgOpen(W, H, chart.title) + yAxis(yt, sy, left, W - right, chart.yLabel, top + plotH / 2);
  for (const t of xt) {
    const tx = sx(t);
    out += `<line x1="${f(tx)}" x2="${f(tx)}" y1="${f(top)}" y2="${f(top + plotH)}" stroke="#eeeeee"/>`;
    out += `<text x="${f(tx)}" y="${f(top + plotH + 16)}" text-anchor="middle" fill="#555">${escapeHtml(formatTick(t))}</text>`;
  }
  out += `<path d="M${f(left)} ${f(top)}V${f(top + plotH)}H${f(W - right)}" fill="none" stroke="#444"/>`;
  out += label(left + plotW / 2, top + plotH + 36, chart.xLabel, 60, 'text-anchor="middle" font-weight="600"');

  chart.series.forEach((s, i) => {
    const colour = PALETTE[i % PALETTE.length]!;
    // A non-finite point breaks the line instead of dragging it to the edge of the plot.
    const runs: [number, number][][] = [[]];
    for (const p of s.points) {
      if (Number.isFinite(p[0]) && Number.isFinite(p[1])) runs[runs.length - 1]!.push(p);
      else if (runs[runs.length - 1]!.length > 0) runs.push([]);
    }
    out += `<g stroke="${colour}" fill="${colour}"><title>${escapeHtml(s.name)}</title>`;
    for (const run of runs) {
      if (run.length > 1) {
        const d = run.map(([x, y]) => `${f(sx(x))},${f(sy(y))}`).join(' ');
        out += `<polyline points="${d}" fill="none" stroke-width="2" stroke-linejoin="round"/>`;
      }
      if (run.length === 1 || s.points.length <= 40) {
        for (const [x, y] of run) out += `<circle cx="${f(sx(x))}" cy="${f(sy(y))}" r="2.5" stroke="none"/>`;
      }
    }
    out += '</g>';
  });
  for (const e of legend) {
    const ly = legendTop + e.row * 18;
    out += `<line x1="${f(e.x)}" x2="${f(e.x + 22)}" y1="${f(ly - 4)}" y2="${f(ly - 4)}" stroke="${e.colour}" stroke-width="3"/>`;
    out += `<text x="${f(e.x + 28)}" y="${f(ly)}">${escapeHtml(e.name)}</text>`;
  }
  return `${out}</svg>`;
}

/** White → dark blue (#08306b); t in [0, 1]. */
function blue(t: number): string {
  const c = (from: number, to: number): number => Math.round(from + (to - from) * t);
  return `rgb(${c(255, 8)},${c(255, 48)},${c(255, 107)})`;
}

export function heatmapChart(chart: HeatmapChart): string {
  const rows = chart.values.length;
  const cols = maxOf(chart.values.map((r) => r.length), 0);
  if (rows === 0 || cols === 0) return noData(chart.title);
  const rowLabels = Array.from({ length: rows }, (_, i) => chart.rowLabels[i] ?? String(i));
  const colLabels = Array.from({ length: cols }, (_, j) => chart.colLabels[j] ?? String(j));
  const finite = chart.values.flat().filter(Number.isFinite);
  // One scale for the whole grid: a row-normalised confusion matrix would hide which
  // classes are rare, and the report wants absolute counts to be comparable.
  const hi = finite.length ? maxOf(finite) : 1;
  const lo = finite.length ? minOf(finite, 0) : 0;
  const norm = (v: number): number => (hi > lo ? (v - lo) / (hi - lo) : 0);

  const cell = Math.max(6, Math.min(44, Math.floor(Math.min(440 / cols, 440 / rows))));
  const rowChars = Math.min(14, maxOf(rowLabels.map((l) => Array.from(l).length), 1));
  const colChars = Math.min(14, maxOf(colLabels.map((l) => Array.from(l).length), 1));
  const rotateCols = colChars * CHAR_W > cell - 2;
  const left = (chart.rowAxis ? 26 : 6) + rowChars * CHAR_W + 8;
  const top = 46;
  const gridW = cols * cell;
  const gridH = rows * cell;
  const colLabelH = rotateCols ? colChars * CHAR_W * 0.72 + 14 : 18;
  const W = Math.max(left + gridW + 96, Array.from(chart.title).length * 8 + 40);
  const H = top + gridH + colLabelH + (chart.colAxis ? 26 : 6);

  let out = svgOpen(W, H, chart.title);
  const fontSize = Math.max(7, Math.min(12, cell * 0.3));
  // Cell borders would wash out small cells.
  const stroke = cell >= 12 ? ' stroke="#fff" stroke-width="0.5"' : '';
  chart.values.forEach((r, i) => {
    for (let j = 0; j < cols; j++) {
      const v = r[j] ?? Number.NaN;
      const x = left + j * cell;
      const y = top + i * cell;
      const ok = Number.isFinite(v);
      const t = ok ? norm(v) : 0;
      const text = ok ? formatNumber(v, 3) : '—';
      const tip = escapeHtml(`${rowLabels[i]} / ${colLabels[j]}: ${text}`);
      out += `<rect class="hm-cell" x="${f(x)}" y="${f(y)}" width="${cell}" height="${cell}" fill="${ok ? blue(t) : '#f0f0f0'}"${stroke}><title>${tip}</title></rect>`;
      if (cell >= 14) {
        out += `<text x="${f(x + cell / 2)}" y="${f(y + cell / 2 + fontSize * 0.35)}" text-anchor="middle" font-size="${f(fontSize)}" fill="${t > 0.55 ? '#fff' : '#222'}">${escapeHtml(text)}</text>`;
      }
    }
  });
  // Labels need ~12px each; on large grids only every k-th row and column is named.
  const every = Math.max(1, Math.ceil(12 / cell));
  rowLabels.forEach((l, i) => {
    if (i % every !== 0) return;
    out += label(left - 6, top + i * cell + cell / 2 + 4, l, rowChars, 'text-anchor="end"');
  });
  colLabels.forEach((l, j) => {
    if (j % every !== 0) return;
    const cx = left + j * cell + cell / 2;
    const ly = top + gridH + 14;
    out += rotateCols
      ? label(cx, ly, l, colChars, `text-anchor="end" transform="rotate(-45 ${f(cx)} ${f(ly)})"`)
      : label(cx, ly, l, colChars, 'text-anchor="middle"');
  });
  if (chart.rowAxis) {
    const my = top + gridH / 2;
    out += label(16, my, chart.rowAxis, 40, `text-anchor="middle" transform="rotate(-90 16 ${f(my)})" font-weight="600"`);
  }
  if (chart.colAxis) {
    out += label(left + gridW / 2, top + gridH + colLabelH + 16, chart.colAxis, 50, 'text-anchor="middle" font-weight="600"');
  }
  // Colour scale drawn as steps rather than a gradient: gradients need ids, and ids would
  // collide when a report holds several heatmaps.
  const scaleX = left + gridW + 18;
  const scaleH = Math.min(gridH, 200);
  const steps = 10;
  for (let s = 0; s < steps; s++) {
    const y = top + (scaleH * s) / steps;
    out += `<rect x="${f(scaleX)}" y="${f(y)}" width="12" height="${f(scaleH / steps + 0.5)}" fill="${blue(1 - (s + 0.5) / steps)}"/>`;
  }
  out += `<rect x="${f(scaleX)}" y="${top}" width="12" height="${f(scaleH)}" fill="none" stroke="#999" stroke-width="0.5"/>`;
  out += `<text x="${f(scaleX + 16)}" y="${top + 9}" font-size="10" fill="#555">${escapeHtml(formatNumber(hi))}</text>`;
  out += `<text x="${f(scaleX + 16)}" y="${f(top + scaleH)}" font-size="10" fill="#555">${escapeHtml(formatNumber(lo))}</text>`;
  return `${out}</svg>`;
}

/** Image strips are HTML figures holding PNG data URLs: far smaller than a rect per pixel. */
export function imageStrip(chart: ImagesChart): string {
  const { width, height } = chart;
  const title = `<figcaption class="chart-title">${escapeHtml(chart.title)}</figcaption>`;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1 || width * height > 4_000_000) {
    return `<figure class="chart images">${title}<p class="muted">cannot show images of size ${escapeHtml(`${width}×${height}`)}</p></figure>`;
  }
  if (chart.images.length === 0) return `<figure class="chart images">${title}<p class="muted">no images</p></figure>`;
  // Whole-number upscaling keeps pixels square; tiny inputs such as 28×28 digits become ~84px.
  const scale = Math.max(1, Math.round(84 / Math.max(width, height)));
  const dw = Math.min(width * scale, 168);
  const dh = Math.round((dw / width) * height);
  const thumbs = chart.images
    .map((img) => {
      const cap = escapeHtml(img.caption);
      const src = greyPngDataUrl(width, height, img.pixels);
      return `<figure class="thumb"><img src="${src}" width="${dw}" height="${dh}" alt="${cap}"><figcaption>${cap}</figcaption></figure>`;
    })
    .join('');
  return `<figure class="chart images">${title}<div class="thumbs">${thumbs}</div></figure>`;
}

export function renderChart(chart: Chart): string {
  switch (chart.kind) {
    case 'bar':
      return barChart(chart);
    case 'line':
      return lineChart(chart);
    case 'heatmap':
      return heatmapChart(chart);
    case 'images':
      return imageStrip(chart);
    default:
      return '';
  }
}
