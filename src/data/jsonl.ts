import { BulwarkError } from '../core/errors.js';
import type { Dataset } from '../core/dataset.js';
import { buildTabularDataset, listColumns, readDataFile, type Cell, type TabularOptions, type TabularRow } from './tabular.js';

function kindOf(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : `a ${typeof v}`;
}

/**
 * Loads JSON Lines (one object per line) into a Dataset. The first object fixes the columns;
 * every later object must have exactly those keys, so a typo in one record cannot silently
 * become a new, mostly-missing column.
 */
export async function loadJsonl(path: string, opts: TabularOptions): Promise<Dataset> {
  const text = (await readDataFile(path)).toString('utf8').replace(/^\uFEFF/, '');
  const lines = text.split('\n');
  let header: string[] | undefined;
  let keySet: Set<string> | undefined;
  const rows: TabularRow[] = [];

  for (let i = 0; i < lines.length; i++) {
    const src = lines[i].trim();
    if (src === '') continue;
    const line = i + 1;
    let obj: unknown;
    try {
      obj = JSON.parse(src);
    } catch (e) {
      throw new BulwarkError('E_DATA_PARSE', `${path} line ${line}: not valid JSON (${(e as Error).message})`, { cause: e });
    }
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
      throw new BulwarkError('E_DATA_PARSE', `${path} line ${line}: expected a JSON object, found ${kindOf(obj)}`);
    }
    const record = obj as Record<string, unknown>;
    const keys = Object.keys(record);
    if (header === undefined || keySet === undefined) {
      header = keys;
      keySet = new Set(keys);
    } else {
      for (const k of header) {
        if (!Object.hasOwn(record, k)) {
          throw new BulwarkError('E_DATA_SHAPE', `${path} line ${line}: key '${k}' is missing (the first record has ${listColumns(header)})`);
        }
      }
      for (const k of keys) {
        if (!keySet.has(k)) {
          throw new BulwarkError('E_DATA_SHAPE', `${path} line ${line}: unexpected key '${k}' (the first record has ${listColumns(header)})`);
        }
      }
    }
    const cells: Cell[] = header.map((k) => {
      const v = record[k];
      if (v !== null && typeof v === 'object') {
        throw new BulwarkError('E_DATA_VALUE', `${path} line ${line}, key '${k}': value is ${kindOf(v)}; only strings, numbers, booleans and null can be features or labels`);
      }
      return v as Cell;
    });
    rows.push({ cells, line });
  }

  if (header === undefined) throw new BulwarkError('E_DATA_PARSE', `${path} is empty; expected one JSON object per line`);
  return buildTabularDataset({ path, header, rows }, opts);
}
