import { createWriteStream, promises as fs, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import path from 'node:path';
import { BulwarkError, type Dataset } from '../core/index.js';
import { writeNpy } from '../data/index.js';

/**
 * A text file written in pieces that appears complete or not at all: lines go to a hidden
 * sibling, renamed over the target on `commit`; `abort` (or a crash) leaves the target as it was.
 */
export class AtomicTextWriter {
  private readonly tmp: string;
  private readonly stream: WriteStream;
  private failed: Error | null = null;

  private constructor(readonly file: string) {
    this.tmp = path.join(path.dirname(path.resolve(file)), `.${path.basename(file)}.tmp-${process.pid}-${Date.now()}`);
    this.stream = createWriteStream(this.tmp, { encoding: 'utf8' });
    this.stream.on('error', (e) => (this.failed = e));
  }

  static async open(file: string): Promise<AtomicTextWriter> {
    const dir = path.dirname(path.resolve(file));
    const st = await fs.stat(dir).catch(() => null);
    if (!st || !st.isDirectory()) throw new BulwarkError('E_OUTPUT', `cannot write ${file}: the directory ${dir} does not exist`);
    const existing = await fs.stat(file).catch(() => null);
    if (existing?.isDirectory()) throw new BulwarkError('E_OUTPUT', `cannot write ${file}: it is a directory`);
    const w = new AtomicTextWriter(file);
    await once(w.stream, 'open').catch((e: Error) => {
      throw new BulwarkError('E_OUTPUT', `cannot write ${file}: ${e.message}`);
    });
    return w;
  }

  async write(text: string): Promise<void> {
    if (this.failed) throw new BulwarkError('E_OUTPUT', `cannot write ${this.file}: ${this.failed.message}`);
    if (!this.stream.write(text)) await once(this.stream, 'drain');
  }

  async commit(): Promise<void> {
    this.stream.end();
    await once(this.stream, 'finish').catch(() => {});
    if (this.failed) {
      await this.abort();
      throw new BulwarkError('E_OUTPUT', `cannot write ${this.file}: ${this.failed.message}`);
    }
    await fs.rename(this.tmp, this.file).catch(async (e: Error) => {
      await fs.rm(this.tmp, { force: true });
      throw new BulwarkError('E_OUTPUT', `cannot write ${this.file}: ${e.message}`);
    });
  }

  async abort(): Promise<void> {
    if (!this.stream.closed) {
      this.stream.destroy();
      await once(this.stream, 'close').catch(() => {});
    }
    await fs.rm(this.tmp, { force: true }).catch(() => {});
  }
}

/** Quotes a CSV field when it needs it (RFC 4180). */
export function csvField(s: string): string {
  return /[",\r\n]|^\s|\s$/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** Feature column names for a dataset written as a table: its own, or px_row_col for images. */
export function featureColumnNames(ds: Dataset): string[] {
  const shape = ds.x.shape.slice(1);
  const d = shape.reduce((a, b) => a * b, 1);
  if (ds.featureNames && ds.featureNames.length === d) return [...ds.featureNames];
  if (shape.length >= 2) {
    const [h, w] = shape;
    const c = d / (h * w);
    return Array.from({ length: d }, (_, i) => {
      const pixel = Math.floor(i / c);
      const base = `px_${Math.floor(pixel / w)}_${pixel % w}`;
      return c > 1 ? `${base}_${i % c}` : base;
    });
  }
  return Array.from({ length: d }, (_, j) => `f${j}`);
}

/**
 * Writes a dataset so that every Bulwark command can read it back, chosen by extension:
 * `.csv` — a header, the features, a `label` column (class names) and any extra columns
 * (e.g. `poisoned`, which a later command leaves out with `--drop poisoned`);
 * `.npy` — tabular rows: a float32 [n, features + 1] array whose last column is the class
 * index (read back with the default `--label -1`); images: a float32 [n, h, w(, c)] array that
 * keeps their shape, so a CNN can train on it, with the class indices in `<name>.labels.npy`
 * (int32 [n]), which the dataset loader picks up. Extra columns go to `<name>.<column>.npy`.
 * A CSV flattens images. Each file is written atomically.
 */
export async function writeDatasetFile(ds: Dataset, file: string, extra: Record<string, ArrayLike<number>> = {}): Promise<string[]> {
  const ext = path.extname(file).toLowerCase();
  const n = ds.x.shape[0];
  const d = ds.x.data.length / Math.max(1, n);
  if (ext === '.csv') {
    const names = featureColumnNames(ds);
    const extraNames = Object.keys(extra);
    for (const e of ['label', ...extraNames]) {
      if (names.includes(e)) throw new BulwarkError('E_OUTPUT', `cannot write ${file}: a feature column is already called '${e}'`);
    }
    const w = await AtomicTextWriter.open(file);
    try {
      await w.write([...names, 'label', ...extraNames].map(csvField).join(',') + '\n');
      const lines: string[] = [];
      for (let i = 0; i < n; i++) {
        const row: string[] = [];
        for (let j = 0; j < d; j++) row.push(formatNumber(ds.x.data[i * d + j]));
        row.push(csvField(ds.classNames[ds.y[i]] ?? String(ds.y[i])));
        for (const e of extraNames) row.push(String(extra[e][i]));
        lines.push(row.join(','));
        if (lines.length >= 1000) {
          await w.write(lines.join('\n') + '\n');
          lines.length = 0;
        }
      }
      if (lines.length > 0) await w.write(lines.join('\n') + '\n');
      await w.commit();
    } catch (e) {
      await w.abort();
      throw e;
    }
    return [file];
  }
  if (ext === '.npy' && ds.x.shape.length > 2) {
    if ('labels' in extra) throw new BulwarkError('E_OUTPUT', `cannot write ${file}: an extra column may not be called 'labels' (the labels file has that name)`);
    const base = file.slice(0, -ext.length);
    const files = [file, labelsFileOf(file)];
    for (const [name, values] of Object.entries(extra)) {
      const side = `${base}.${name}.npy`;
      await writeNpy(side, Int32Array.from(values), [n]);
      files.push(side);
    }
    // Labels before the images: a reader that finds the images finds their labels too.
    await writeNpy(files[1], Int32Array.from(ds.y), [n]);
    await writeNpy(file, ds.x.data, [...ds.x.shape]);
    return files;
  }
  if (ext === '.npy') {
    const out = new Float32Array(n * (d + 1));
    for (let i = 0; i < n; i++) {
      out.set(ds.x.data.subarray(i * d, (i + 1) * d), i * (d + 1));
      out[i * (d + 1) + d] = ds.y[i];
    }
    const files: string[] = [];
    const base = file.slice(0, -ext.length);
    for (const [name, values] of Object.entries(extra)) {
      const side = `${base}.${name}.npy`;
      await writeNpy(side, Int32Array.from(values), [n]);
      files.push(side);
    }
    await writeNpy(file, out, [n, d + 1]);
    return [file, ...files];
  }
  throw new BulwarkError('E_USAGE', `cannot tell the format to write from '${file}': give a .csv or .npy file name`);
}

/** Where the labels of an `.npy` of images live: `<name>.labels.npy` beside it. */
export function labelsFileOf(file: string): string {
  return `${file.slice(0, -path.extname(file).length)}.labels.npy`;
}

/** Shortest text that reads back as the same float32. */
export function formatNumber(v: number): string {
  if (Number.isInteger(v)) return String(v);
  for (let p = 6; p <= 9; p++) {
    const s = v.toPrecision(p);
    if (Math.fround(Number(s)) === v) return String(Number(s));
  }
  return String(v);
}
