import { parse } from 'csv-parse/sync';
import { BulwarkError } from '../core/errors.js';
import type { Dataset } from '../core/dataset.js';
import { buildTabularDataset, readDataFile, type TabularOptions, type TabularRow } from './tabular.js';

/**
 * Line numbers are counted here from csv-parse's byte offsets rather than taken from its
 * `lines` counter, which counts a CRLF inside a quoted field twice and so drifts on
 * Windows files — and a wrong line number in an error message is worse than none.
 */
class LineCounter {
  private pos = 0;
  private line = 1;
  constructor(private readonly buf: Buffer) {}

  /** Line of the first non-blank byte at or after `offset`: where the next record starts. */
  recordStart(offset: number): number {
    let start = offset;
    while (start < this.buf.length && isBlank(this.buf[start])) start++;
    for (; this.pos < start; this.pos++) {
      const b = this.buf[this.pos];
      if (b === 0x0a || (b === 0x0d && this.buf[this.pos + 1] !== 0x0a)) this.line++;
    }
    return this.line;
  }
}

function isBlank(b: number): boolean {
  return b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d;
}

/** Loads a CSV file with a header row into a Dataset; see TabularOptions for encoding rules. */
export async function loadCsv(path: string, opts: TabularOptions): Promise<Dataset> {
  const buf = await readDataFile(path);
  const lines = new LineCounter(buf);
  const records: TabularRow[] = [];
  let lastEnd = 0;
  try {
    parse(buf, {
      bom: true,
      trim: true,
      skip_empty_lines: true,
      // Ragged rows are reported below, with the expected and found counts.
      relax_column_count: true,
      on_record: (record, ctx) => {
        records.push({ cells: record, line: lines.recordStart(lastEnd) });
        lastEnd = ctx.bytes;
        return null;
      },
    });
  } catch (e) {
    if (e instanceof BulwarkError) throw e;
    const line = lines.recordStart(lastEnd);
    // csv-parse's own "at line N" is dropped for the same reason LineCounter exists.
    const detail = (e as Error).message.replace(/\s*at line \d+/, '');
    throw new BulwarkError('E_DATA_PARSE', `${path}: cannot parse the record starting at line ${line}: ${detail}`, { cause: e });
  }

  if (records.length === 0) {
    throw new BulwarkError('E_DATA_PARSE', `${path} is empty; a CSV file needs a header row and at least one data row`);
  }
  const [head, ...rows] = records;
  // pandas writes its index column with an empty name; give it one that --drop can refer to.
  const header = head.cells.map((c, i) => (c === '' ? `unnamed_${i}` : String(c)));
  const seen = new Map<string, number>();
  header.forEach((name, i) => {
    const first = seen.get(name);
    if (first !== undefined) {
      throw new BulwarkError('E_DATA_PARSE', `${path} line ${head.line}: column name '${name}' appears twice (columns ${first + 1} and ${i + 1})`);
    }
    seen.set(name, i);
  });
  for (const row of rows) {
    if (row.cells.length !== header.length) {
      throw new BulwarkError('E_DATA_SHAPE', `${path} line ${row.line}: expected ${header.length} columns (as in the header) but found ${row.cells.length}`);
    }
  }
  return buildTabularDataset({ path, header, rows }, opts);
}
