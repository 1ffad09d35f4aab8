import { readFile } from 'node:fs/promises';
import { basename, extname, resolve } from 'node:path';
import { BulwarkError } from '../core/errors.js';
import type { Dataset } from '../core/dataset.js';
import { makeSamples } from '../core/samples.js';

export interface TabularOptions {
  /** Column that holds the class. */
  label: string;
  /** Columns left out of the features. */
  drop?: string[];
  /** Dataset name; defaults to the file name without its extension. */
  name?: string;
  /** What to do with non-numeric feature columns (default 'onehot'). */
  categorical?: 'onehot' | 'refuse';
  /** A categorical column with more distinct values than this is refused (default 50). */
  maxCategories?: number;
}

/** A raw cell: CSV gives strings, JSONL any JSON scalar. */
export type Cell = string | number | boolean | null;

export interface TabularRow {
  readonly cells: readonly Cell[];
  /** 1-based line of the file where the row starts, when the format has lines. */
  readonly line?: number;
}

export interface TabularTable {
  /** The path as the user gave it: messages show this, `sources` holds it resolved. */
  readonly path: string;
  readonly header: readonly string[];
  readonly rows: readonly TabularRow[];
}

const FLOAT32_MAX = 3.4028234663852886e38;
const NUMBER_RE = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;
// Spellings of "no value" that pandas, R and spreadsheets write. They must not turn a numeric
// column categorical: one stray "NA" would otherwise one-hot encode every number silently.
const MISSING = new Set(['', 'nan', 'NaN', 'NAN', 'null', 'NULL', 'None', 'NA', 'N/A', 'n/a',
  'inf', '+inf', '-inf', 'Inf', '+Inf', '-Inf', 'Infinity', '+Infinity', '-Infinity']);

/**
 * Reads a whole input file, turning the ways it can fail into errors a user can act on.
 * Shared by the CSV, JSONL and NPY loaders.
 */
export async function readDataFile(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new BulwarkError('E_FILE_NOT_FOUND', `file not found: ${path}`, { cause: e });
    if (code === 'EISDIR') throw new BulwarkError('E_FILE_READ', `${path} is a directory; give the path of a data file`, { cause: e });
    if (code === 'EACCES' || code === 'EPERM') {
      throw new BulwarkError('E_FILE_READ', `cannot read ${path}: permission denied`, { cause: e });
    }
    throw new BulwarkError('E_FILE_READ', `cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
}

export function datasetName(path: string, name?: string): string {
  return name ?? basename(path, extname(path));
}

/** Names the columns a user could have meant, without flooding the terminal on wide files. */
export function listColumns(names: readonly string[]): string {
  const shown = names.slice(0, 30).map((n) => `'${n}'`).join(', ');
  return names.length > 30 ? `${shown}, … and ${names.length - 30} more` : shown;
}

function numeric(c: Cell): number | undefined {
  if (typeof c === 'number') return c;
  if (typeof c === 'string' && NUMBER_RE.test(c)) return Number(c);
  return undefined;
}

function isMissing(c: Cell): boolean {
  return c === null || (typeof c === 'string' && MISSING.has(c));
}

/** A column name as it would be typed after --drop in a shell. */
function shellWord(name: string): string {
  return /^[\w.=+-]+$/.test(name) ? name : `'${name.replace(/'/g, `'\\''`)}'`;
}

function show(c: Cell): string {
  return typeof c === 'string' ? `'${c}'` : String(c);
}

interface ColumnScan {
  categorical: boolean;
  /** First non-numeric value and its row, quoted in messages. */
  example?: { value: Cell; row: number };
}

function scanColumn(rows: readonly TabularRow[], col: number): ColumnScan {
  for (let r = 0; r < rows.length; r++) {
    const c = rows[r].cells[col];
    if (!isMissing(c) && numeric(c) === undefined) return { categorical: true, example: { value: c, row: r } };
  }
  return { categorical: false };
}

type Plan =
  | { kind: 'num'; col: number; offset: number }
  | { kind: 'cat'; col: number; offset: number; index: Map<string, number> };

export function buildTabularDataset(table: TabularTable, opts: TabularOptions): Dataset {
  const { path, header, rows } = table;
  const categorical = opts.categorical ?? 'onehot';
  const maxCategories = opts.maxCategories ?? 50;
  if (categorical !== 'onehot' && categorical !== 'refuse') {
    throw new BulwarkError('E_USAGE', `categorical must be 'onehot' or 'refuse', not '${String(categorical)}'`);
  }
  if (!Number.isInteger(maxCategories) || maxCategories < 1) {
    throw new BulwarkError('E_USAGE', `maxCategories must be a positive integer, not ${maxCategories}`);
  }
  const pos = (r: number): string => {
    const line = rows[r].line;
    return line !== undefined ? `line ${line} (data row ${r + 1})` : `data row ${r + 1}`;
  };
  const at = (r: number, column: string): string => `${path} ${pos(r)}, column '${column}'`;

  const labelCol = header.indexOf(opts.label);
  if (labelCol < 0) {
    throw new BulwarkError('E_USAGE', `${path} has no column '${opts.label}' to use as the label; its columns are ${listColumns(header)}`);
  }
  const drop = new Set(opts.drop ?? []);
  for (const d of drop) {
    if (!header.includes(d)) throw new BulwarkError('E_USAGE', `cannot drop column '${d}': ${path} has no such column; its columns are ${listColumns(header)}`);
    if (d === opts.label) throw new BulwarkError('E_USAGE', `cannot drop column '${d}': it is the label column`);
  }
  if (rows.length === 0) throw new BulwarkError('E_DATA_PARSE', `${path} has no data rows (only a header)`);

  // Decide every column's kind first so that value errors can then be reported in file order.
  const plans: Plan[] = [];
  const featureNames: string[] = [];
  for (let col = 0; col < header.length; col++) {
    const name = header[col];
    if (col === labelCol || drop.has(name)) continue;
    const scan = scanColumn(rows, col);
    if (!scan.categorical) {
      plans.push({ kind: 'num', col, offset: featureNames.length });
      featureNames.push(name);
      continue;
    }
    const ex = scan.example!;
    const example = `${show(ex.value)} at ${pos(ex.row)}`;
    if (categorical === 'refuse') {
      throw new BulwarkError('E_DATA_VALUE', `${path}: column '${name}' is not numeric (for example ${example}); ` +
        `encode it as numbers, drop it with --drop ${shellWord(name)}, or allow one-hot encoding`);
    }
    const values = new Set<string>();
    for (const row of rows) if (row.cells[col] !== null && row.cells[col] !== '') values.add(String(row.cells[col]));
    if (values.size > maxCategories) {
      throw new BulwarkError('E_DATA_VALUE', `${path}: column '${name}' has ${values.size} distinct values, more than ` +
        `the ${maxCategories} allowed for one-hot encoding (first non-numeric value ${example}); ` +
        `drop it with --drop ${shellWord(name)}, fix the value if the column should be numeric, or raise maxCategories`);
    }
    const sorted = [...values].sort();
    plans.push({ kind: 'cat', col, offset: featureNames.length, index: new Map(sorted.map((v, i) => [v, i])) });
    for (const v of sorted) featureNames.push(`${name}=${v}`);
  }
  if (featureNames.length === 0) {
    throw new BulwarkError('E_DATA_SHAPE', `${path} has no feature columns besides the label '${opts.label}'${drop.size > 0 ? ' after dropping ' + listColumns([...drop]) : ''}`);
  }

  const labelNumeric = !scanColumn(rows, labelCol).categorical;
  const f = featureNames.length;
  const x = new Float32Array(rows.length * f);
  const labelKeys: string[] = new Array<string>(rows.length);
  for (let r = 0; r < rows.length; r++) {
    const cells = rows[r].cells;
    for (const p of plans) {
      const c = cells[p.col];
      const column = header[p.col];
      if (p.kind === 'cat') {
        if (c === null || c === '') throw new BulwarkError('E_DATA_VALUE', `${at(r, column)}: missing value; fill it in or drop the row`);
        x[r * f + p.offset + p.index.get(String(c))!] = 1;
        continue;
      }
      if (isMissing(c)) {
        throw new BulwarkError('E_DATA_VALUE', `${at(r, column)}: missing value (${show(c)}); fill it in, drop the row, or drop the column with --drop ${shellWord(column)}`);
      }
      const v = numeric(c)!;
      if (!Number.isFinite(v) || Math.abs(v) > FLOAT32_MAX) {
        throw new BulwarkError('E_DATA_VALUE', `${at(r, column)}: value ${show(c)} is not a finite 32-bit float`);
      }
      x[r * f + p.offset] = v;
    }
    const c = cells[labelCol];
    if (c === null || c === '' || (labelNumeric && isMissing(c))) {
      throw new BulwarkError('E_DATA_VALUE', `${at(r, opts.label)}: missing label (${show(c)}); every row needs a class`);
    }
    if (labelNumeric && !Number.isFinite(numeric(c)!)) {
      throw new BulwarkError('E_DATA_VALUE', `${at(r, opts.label)}: label ${show(c)} is not a finite number`);
    }
    // Numeric labels are keyed by value so that "1" and "1.0" are one class.
    labelKeys[r] = labelNumeric ? String(numeric(c)) : String(c);
  }

  const distinct = [...new Set(labelKeys)];
  const classNames = labelNumeric ? distinct.sort((a, b) => Number(a) - Number(b)) : distinct.sort();
  const classIndex = new Map(classNames.map((name, i) => [name, i]));
  const y = Int32Array.from(labelKeys, (k) => classIndex.get(k)!);
  return {
    name: datasetName(path, opts.name),
    x: makeSamples(x, [rows.length, f]),
    y,
    classNames,
    featureNames,
    sources: [resolve(path)],
  };
}
