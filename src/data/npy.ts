import { rename, rm, writeFile } from 'node:fs/promises';
import { endianness } from 'node:os';
import { resolve } from 'node:path';
import { BulwarkError } from '../core/errors.js';
import type { Dataset } from '../core/dataset.js';
import { makeSamples } from '../core/samples.js';
import { datasetName, readDataFile } from './tabular.js';

export type NpyData = Float32Array | Float64Array | Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array;

export interface NpyArray {
  readonly data: NpyData;
  readonly shape: number[];
  /** The descr from the file header, e.g. '<f4'. */
  readonly dtype: string;
}

type Ctor = { new (buf: ArrayBuffer): NpyData; readonly BYTES_PER_ELEMENT: number };
// '<i8' has no JavaScript typed array that holds plain numbers: it is read as BigInt64 and
// copied into a Float64Array, which is exact for every value within the safe-integer range.
const DTYPES: Record<string, Ctor> = {
  '<f4': Float32Array, '<f8': Float64Array, '<i4': Int32Array, '<i8': Float64Array,
  '<i2': Int16Array, '<u2': Uint16Array, '|u1': Uint8Array, '|i1': Int8Array, '|b1': Uint8Array,
};
const INTEGER_DTYPES = new Set(['<i4', '<i8', '<i2', '<u2', '|u1', '|i1', '|b1']);
const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY

function bad(path: string, what: string): BulwarkError {
  return new BulwarkError('E_DATA_PARSE', `${path}: ${what}`);
}

/** Reads a NumPy .npy file (format versions 1, 2 and 3; little-endian, C order). */
export async function readNpy(path: string): Promise<NpyArray> {
  const buf = await readDataFile(path);
  if (buf.length < 10 || !buf.subarray(0, 6).equals(MAGIC)) throw bad(path, 'not a NumPy .npy file (the magic string \\x93NUMPY is missing)');
  const major = buf[6];
  if (major < 1 || major > 3) throw bad(path, `unsupported .npy format version ${major}.${buf[7]} (supported: 1, 2, 3)`);
  const lenBytes = major === 1 ? 2 : 4;
  if (buf.length < 8 + lenBytes) throw bad(path, 'truncated inside the header');
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const dataStart = 8 + lenBytes + headerLen;
  if (buf.length < dataStart) throw bad(path, `truncated: the header needs ${headerLen} bytes, found ${buf.length - 8 - lenBytes}`);
  const header = buf.subarray(8 + lenBytes, dataStart).toString(major === 3 ? 'utf8' : 'latin1');

  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  if (descr === undefined) {
    if (/'descr'\s*:\s*\[/.test(header)) throw bad(path, 'holds a structured (record) array; save a plain numeric array instead');
    throw bad(path, `header has no 'descr' field: ${header.trim()}`);
  }
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  if (fortran === undefined) throw bad(path, `header has no 'fortran_order' field: ${header.trim()}`);
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (shapeText === undefined) throw bad(path, `header has no 'shape' field: ${header.trim()}`);
  const shape = shapeText.split(',').map((s) => s.trim().replace(/L$/, '')).filter((s) => s !== '').map(Number);
  if (shape.some((d) => !Number.isSafeInteger(d) || d < 0)) throw bad(path, `invalid shape (${shapeText})`);

  if (descr.startsWith('>')) {
    throw bad(path, `is big-endian (dtype '${descr}'); convert it with a.astype('<${descr.slice(1)}') before saving`);
  }
  if (fortran === 'True') {
    throw bad(path, 'is stored in Fortran (column-major) order; save np.ascontiguousarray(a) instead');
  }
  const Type = DTYPES[descr];
  if (Type === undefined) throw bad(path, `unsupported dtype '${descr}' (supported: ${Object.keys(DTYPES).join(', ')})`);
  if (endianness() !== 'LE') throw new BulwarkError('E_DATA_PARSE', `${path}: reading .npy files needs a little-endian machine`);

  const count = shape.reduce((a, b) => a * b, 1);
  const itemSize = descr === '<i8' ? 8 : Type.BYTES_PER_ELEMENT;
  const expected = count * itemSize;
  const found = buf.length - dataStart;
  if (found < expected) throw bad(path, `truncated: expected ${expected} bytes of data, found ${found}`);
  if (found > expected) throw bad(path, `has ${found - expected} unexpected bytes after the ${expected} bytes of data`);

  // Copying the bytes out gives a fresh, aligned ArrayBuffer: the data offset need not be a
  // multiple of the item size within Node's pooled Buffer.
  const bytes = buf.buffer.slice(buf.byteOffset + dataStart, buf.byteOffset + dataStart + expected) as ArrayBuffer;
  if (descr !== '<i8') return { data: new Type(bytes), shape, dtype: descr };
  const wide = new BigInt64Array(bytes);
  const data = new Float64Array(count);
  const hi = BigInt(Number.MAX_SAFE_INTEGER);
  for (let i = 0; i < count; i++) {
    const v = wide[i];
    if (v > hi || v < -hi) {
      throw new BulwarkError('E_DATA_VALUE', `${path}: value ${v} at flat index ${i} is outside the range JavaScript numbers hold exactly (±2^53)`);
    }
    data[i] = Number(v);
  }
  return { data, shape, dtype: descr };
}

/** Writes a .npy (format 1.0) file atomically: readers never see a half-written file. */
export async function writeNpy(path: string, data: Float32Array | Int32Array | Float64Array | Uint8Array, shape: number[]): Promise<void> {
  const descr = data instanceof Float32Array ? '<f4' : data instanceof Int32Array ? '<i4' : data instanceof Float64Array ? '<f8' : '|u1';
  if (shape.some((d) => !Number.isSafeInteger(d) || d < 0) || shape.reduce((a, b) => a * b, 1) !== data.length) {
    throw new BulwarkError('E_DATA_SHAPE', `cannot write ${path}: shape [${shape.join(', ')}] does not hold the ${data.length} values given`);
  }
  const tuple = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${tuple}, }`;
  // NumPy pads the header with spaces so the data starts on a 64-byte boundary.
  header = header.padEnd(Math.ceil((10 + header.length + 1) / 64) * 64 - 10 - 1, ' ') + '\n';
  const prefix = Buffer.alloc(10);
  MAGIC.copy(prefix);
  prefix[6] = 1;
  prefix[7] = 0;
  prefix.writeUInt16LE(header.length, 8);
  const body = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    await writeFile(tmp, Buffer.concat([prefix, Buffer.from(header, 'latin1'), body]));
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw new BulwarkError('E_OUTPUT', `cannot write ${path}: ${(e as Error).message}`, { cause: e });
  }
}

const FLOAT32_MAX = 3.4028234663852886e38;

function integerLabel(v: number, where: () => string): number {
  if (!Number.isInteger(v) || v < 0 || v > 0x7fffffff) {
    throw new BulwarkError('E_DATA_VALUE', `${where()}: label ${v} is not a non-negative integer class index`);
  }
  return v;
}

// float64 values beyond the float32 range would silently become Infinity in the features.
function finiteFeature(v: number, where: () => string): number {
  if (!Number.isFinite(v) || Math.abs(v) > FLOAT32_MAX) {
    throw new BulwarkError('E_DATA_VALUE', `${where()}: value ${v} is not a finite 32-bit float`);
  }
  return v;
}

/** Names position j within one sample: a column for tabular rows, an index tuple otherwise. */
function element(j: number, shape: readonly number[]): string {
  if (shape.length === 1) return `column ${j}`;
  const idx: number[] = [];
  for (let d = shape.length - 1; d >= 0; d--) {
    idx.unshift(j % shape[d]);
    j = Math.floor(j / shape[d]);
  }
  return `element [${idx.join(', ')}]`;
}

/**
 * Loads a .npy feature array as a Dataset. The labels come either from one column of a 2-D
 * array (`label`, negative counts from the end) or from a separate 1-D integer .npy (`labelsPath`).
 */
export async function loadNpy(path: string, opts: { label?: number; labelsPath?: string; name?: string }): Promise<Dataset> {
  if ((opts.label === undefined) === (opts.labelsPath === undefined)) {
    throw new BulwarkError('E_USAGE', `loading ${path} needs exactly one of: a label column index, or a separate labels .npy file`);
  }
  const arr = await readNpy(path);
  if (arr.shape.length === 0) throw new BulwarkError('E_DATA_SHAPE', `${path} holds a single scalar, not an array of samples`);
  const n = arr.shape[0];
  if (n === 0) throw new BulwarkError('E_DATA_PARSE', `${path} has no data rows (its shape is (${arr.shape.join(', ')}))`);

  let x: Float32Array;
  let sampleShape: number[];
  let y: Int32Array;
  const sources = [resolve(path)];
  if (opts.label !== undefined) {
    if (arr.shape.length !== 2) throw new BulwarkError('E_DATA_SHAPE', `${path} has shape (${arr.shape.join(', ')}); a label column needs a 2-D array`);
    const cols = arr.shape[1];
    const lc = opts.label < 0 ? cols + opts.label : opts.label;
    if (!Number.isInteger(opts.label) || lc < 0 || lc >= cols) {
      throw new BulwarkError('E_USAGE', `label column ${opts.label} is out of range: ${path} has ${cols} columns (use 0..${cols - 1}, or -1 for the last)`);
    }
    if (cols < 2) throw new BulwarkError('E_DATA_SHAPE', `${path} has only the label column and no features`);
    sampleShape = [cols - 1];
    x = new Float32Array(n * (cols - 1));
    y = new Int32Array(n);
    for (let r = 0; r < n; r++) {
      for (let c = 0, k = 0; c < cols; c++) {
        const v = arr.data[r * cols + c];
        const where = (): string => `${path} row ${r} (0-based), column ${c}`;
        if (c === lc) y[r] = integerLabel(v, where);
        else x[r * (cols - 1) + k++] = finiteFeature(v, where);
      }
    }
  } else {
    const labelsPath = opts.labelsPath!;
    const labels = await readNpy(labelsPath);
    if (!INTEGER_DTYPES.has(labels.dtype)) {
      throw new BulwarkError('E_DATA_VALUE', `${labelsPath} has dtype '${labels.dtype}'; labels must be integers (save y.astype('int64'))`);
    }
    if (labels.shape.length !== 1) throw new BulwarkError('E_DATA_SHAPE', `${labelsPath} has shape (${labels.shape.join(', ')}); labels must be 1-D`);
    if (labels.shape[0] !== n) throw new BulwarkError('E_DATA_SHAPE', `${path} has ${n} samples but ${labelsPath} has ${labels.shape[0]} labels`);
    sampleShape = arr.shape.slice(1);
    const size = arr.data.length / n;
    x = Float32Array.from(arr.data, (v, i) =>
      finiteFeature(v, () => `${path} row ${Math.floor(i / size)} (0-based), ${element(i % size, sampleShape)}`));
    y = Int32Array.from(labels.data, (v, r) => integerLabel(v, () => `${labelsPath} row ${r} (0-based)`));
    sources.push(resolve(labelsPath));
  }

  let max = 0;
  for (const c of y) if (c > max) max = c;
  return {
    name: datasetName(path, opts.name),
    x: makeSamples(x, [n, ...sampleShape]),
    y,
    classNames: Array.from({ length: max + 1 }, (_, i) => String(i)),
    sources,
  };
}
