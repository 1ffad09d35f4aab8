import { createReadStream, promises as fs } from 'node:fs';
import { BulwarkError } from '../../core/index.js';

/**
 * A streaming reader for the CSV files the dataset scan reads, one pass per call, in
 * bounded memory. It keeps each record's raw text so that `--clean` can write the kept
 * rows exactly as they were (every column, quoting and all). Fields are split by hand:
 * unquoted lines (nearly all of a numeric file) take a fast path, quoted fields follow
 * RFC 4180, including quoted line breaks.
 */
export interface CsvRecord {
  fields: string[];
  /** The record's text without its line terminator. */
  raw: string;
  /** 1-based line where the record starts. */
  line: number;
}

export async function* csvRecords(path: string): AsyncGenerator<CsvRecord[]> {
  const stream = createReadStream(path, { encoding: 'utf8', highWaterMark: 1 << 20 });
  let carry = '';
  let line = 0;
  let first = true;
  let pending: { raw: string; line: number } | null = null;
  try {
    for await (const chunk of stream as AsyncIterable<string>) {
      let text = carry + chunk;
      if (first) {
        if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
        first = false;
      }
      const lastNl = text.lastIndexOf('\n');
      if (lastNl < 0) {
        carry = text;
        continue;
      }
      carry = text.slice(lastNl + 1);
      const batch: CsvRecord[] = [];
      for (const piece of text.slice(0, lastNl).split('\n')) {
        line++;
        pending = take(piece, line, pending, batch);
      }
      if (batch.length > 0) yield batch;
    }
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new BulwarkError('E_FILE_NOT_FOUND', `file not found: ${path}`);
    if (code === 'EISDIR') throw new BulwarkError('E_FILE_READ', `${path} is a directory; give the path of a CSV file`);
    if (e instanceof BulwarkError) throw e;
    throw new BulwarkError('E_FILE_READ', `cannot read ${path}: ${(e as Error).message}`);
  }
  const batch: CsvRecord[] = [];
  if (carry.length > 0 || pending) {
    line++;
    pending = take(carry, line, pending, batch);
  }
  if (pending) throw new BulwarkError('E_DATA_PARSE', `${path} line ${pending.line}: a quoted field is never closed`);
  if (batch.length > 0) yield batch;
}

/** Adds one physical line; returns the unfinished record when a quoted field spans lines. */
function take(piece: string, line: number, pending: { raw: string; line: number } | null, out: CsvRecord[]): { raw: string; line: number } | null {
  const raw = pending ? `${pending.raw}\n${piece}` : piece;
  const start = pending ? pending.line : line;
  if (raw.indexOf('"') < 0) {
    const body = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (body.trim() === '') return null;
    const fields = body.split(',');
    if (/[ \t]/.test(body)) for (let i = 0; i < fields.length; i++) fields[i] = fields[i].trim();
    out.push({ fields, raw: body, line: start });
    return null;
  }
  if (countQuotes(raw) % 2 === 1) return { raw, line: start };
  const body = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
  out.push({ fields: splitQuoted(body, start), raw: body, line: start });
  return null;
}

function countQuotes(s: string): number {
  let c = 0;
  for (let i = s.indexOf('"'); i >= 0; i = s.indexOf('"', i + 1)) c++;
  return c;
}

function splitQuoted(s: string, line: number): string[] {
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    while (s[i] === ' ' || s[i] === '\t') i++;
    if (s[i] === '"') {
      let value = '';
      i++;
      for (;;) {
        const q = s.indexOf('"', i);
        if (q < 0) throw new BulwarkError('E_DATA_PARSE', `line ${line}: a quoted field is never closed`);
        value += s.slice(i, q);
        if (s[q + 1] === '"') {
          value += '"';
          i = q + 2;
        } else {
          i = q + 1;
          break;
        }
      }
      while (s[i] === ' ' || s[i] === '\t') i++;
      fields.push(value);
      if (i >= s.length) return fields;
      if (s[i] !== ',') throw new BulwarkError('E_DATA_PARSE', `line ${line}: unexpected text after a closing quote`);
      i++;
    } else {
      const comma = s.indexOf(',', i);
      const end = comma < 0 ? s.length : comma;
      fields.push(s.slice(i, end).trim());
      if (comma < 0) return fields;
      i = comma + 1;
    }
  }
}

/** Which columns of a CSV are features, which is the label, and which are left out (and why). */
export interface CsvPlan {
  readonly path: string;
  readonly header: string[];
  readonly headerRaw: string;
  readonly features: number[];
  readonly featureNames: string[];
  /** Index of the label column, or −1. */
  readonly label: number;
  readonly warnings: string[];
}

const SAMPLE_ROWS = 1000;
const MISSING = new Set(['', 'nan', 'NaN', 'NAN', 'null', 'NULL', 'None', 'NA', 'N/A', 'n/a']);

/**
 * Reads the header and the first rows to decide each column's role. A column whose sampled
 * values are all text is left out with a warning (the scan measures numeric features); a
 * mostly numeric column with some text is an error, since that is usually a typo or a unit.
 */
export async function planCsv(path: string, opts: { label?: string; drop?: string[] }): Promise<CsvPlan> {
  const stat = await fs.stat(path).catch(() => null);
  if (!stat) throw new BulwarkError('E_FILE_NOT_FOUND', `file not found: ${path}`);
  if (stat.isDirectory()) throw new BulwarkError('E_FILE_READ', `${path} is a directory; give the path of a CSV file`);
  let head: CsvRecord | null = null;
  const sample: CsvRecord[] = [];
  for await (const batch of csvRecords(path)) {
    for (const r of batch) {
      if (!head) head = r;
      else sample.push(r);
      if (sample.length >= SAMPLE_ROWS) break;
    }
    if (sample.length >= SAMPLE_ROWS) break;
  }
  if (!head) throw new BulwarkError('E_DATA_PARSE', `${path} is empty; a CSV file needs a header row and data rows`);
  if (sample.length === 0) throw new BulwarkError('E_DATA_PARSE', `${path} has no data rows (only a header)`);
  const header = head.fields.map((c, i) => (c === '' ? `unnamed_${i}` : c));
  const seen = new Map<string, number>();
  header.forEach((name, i) => {
    if (seen.has(name)) throw new BulwarkError('E_DATA_PARSE', `${path} line ${head!.line}: column name '${name}' appears twice (columns ${seen.get(name)! + 1} and ${i + 1})`);
    seen.set(name, i);
  });
  const label = opts.label === undefined ? -1 : header.indexOf(opts.label);
  if (opts.label !== undefined && label < 0) {
    throw new BulwarkError('E_USAGE', `${path} has no column '${opts.label}' to use as the label; its columns are ${listColumns(header)}`);
  }
  const drop = new Set(opts.drop ?? []);
  for (const d of drop) {
    if (!seen.has(d)) throw new BulwarkError('E_USAGE', `cannot drop column '${d}': ${path} has no such column; its columns are ${listColumns(header)}`);
    if (d === opts.label) throw new BulwarkError('E_USAGE', `cannot drop column '${d}': it is the label column`);
  }
  const warnings: string[] = [];
  const features: number[] = [];
  for (let c = 0; c < header.length; c++) {
    if (c === label || drop.has(header[c])) continue;
    let numeric = 0;
    let text = 0;
    let example: CsvRecord | null = null;
    for (const r of sample) {
      const v = r.fields[c] ?? '';
      if (MISSING.has(v)) continue;
      if (Number.isNaN(Number(v))) {
        text++;
        example ??= r;
      } else numeric++;
    }
    const name = header[c];
    if (numeric === 0 && text === 0) {
      throw new BulwarkError('E_DATA_VALUE', `${path}: column '${name}' has no values in its first ${sample.length} rows (all missing); drop it with --drop ${shellWord(name)}`);
    }
    if (text > 0 && numeric >= text) {
      throw new BulwarkError('E_DATA_VALUE', `${path} line ${example!.line}, column '${name}': text '${example!.fields[c]}' in a numeric column; fix the value or drop the column with --drop ${shellWord(name)}`);
    }
    if (text > 0) {
      warnings.push(`column '${name}' holds text (e.g. '${example!.fields[c]}'): it is left out of the features; --drop ${shellWord(name)} silences this`);
      continue;
    }
    features.push(c);
  }
  if (features.length === 0) throw new BulwarkError('E_DATA_SHAPE', `${path} has no numeric feature columns to scan${label >= 0 ? ` besides the label '${opts.label}'` : ''}`);
  return { path, header, headerRaw: head.raw, features, featureNames: features.map((c) => header[c]), label, warnings };
}

export interface NumericBatch {
  /** Row index of the first row in the batch (0-based, data rows only). */
  start: number;
  count: number;
  /** [count, features] */
  x: Float64Array;
  /** The label text of each row (numbers normalised, so "1" and "1.0" agree), when there is a label. */
  labels: string[] | null;
  records: CsvRecord[];
}

/** The data rows of a planned CSV as numbers, batch by batch; a bad value stops with its line and column. */
export async function* numericBatches(plan: CsvPlan): AsyncGenerator<NumericBatch> {
  const d = plan.features.length;
  const width = plan.header.length;
  let row = 0;
  let headerSeen = false;
  for await (const batch of csvRecords(plan.path)) {
    let records = batch;
    if (!headerSeen) {
      records = batch.slice(1);
      headerSeen = true;
    }
    if (records.length === 0) continue;
    const x = new Float64Array(records.length * d);
    const labels = plan.label >= 0 ? new Array<string>(records.length) : null;
    for (let i = 0; i < records.length; i++) {
      const r = records[i];
      if (r.fields.length !== width) {
        throw new BulwarkError('E_DATA_SHAPE', `${plan.path} line ${r.line}: expected ${width} columns (as in the header) but found ${r.fields.length}`);
      }
      for (let j = 0; j < d; j++) {
        const c = plan.features[j];
        const s = r.fields[c];
        const v = s === '' ? NaN : Number(s);
        if (!Number.isFinite(v) || Math.abs(v) > 3.4028234663852886e38) {
          const name = plan.header[c];
          const what = MISSING.has(s) || /^[+-]?inf/i.test(s) ? `missing or infinite value '${s}'` : `text '${s}' in a numeric column`;
          throw new BulwarkError('E_DATA_VALUE', `${plan.path} line ${r.line}, column '${name}': ${what}; fix the row or drop the column with --drop ${shellWord(name)}`);
        }
        x[i * d + j] = v;
      }
      if (labels) {
        const s = r.fields[plan.label];
        if (MISSING.has(s)) throw new BulwarkError('E_DATA_VALUE', `${plan.path} line ${r.line}, column '${plan.header[plan.label]}': missing label; every row needs a class`);
        const num = Number(s);
        labels[i] = Number.isNaN(num) ? s : String(num);
      }
    }
    yield { start: row, count: records.length, x, labels, records };
    row += records.length;
  }
}

function listColumns(names: readonly string[]): string {
  const shown = names.slice(0, 30).map((n) => `'${n}'`).join(', ');
  return names.length > 30 ? `${shown}, … and ${names.length - 30} more` : shown;
}

function shellWord(name: string): string {
  return /^[\w.=+-]+$/.test(name) ? name : `'${name.replace(/'/g, `'\\''`)}'`;
}
