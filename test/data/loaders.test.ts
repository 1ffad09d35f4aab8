import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadCsv } from '../../src/data/csv.js';
import { loadJsonl } from '../../src/data/jsonl.js';
import { loadNpy, readNpy, writeNpy } from '../../src/data/npy.js';
import { BulwarkError } from '../../src/core/errors.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bulwark-loaders-'));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));

function fixture(name: string, content: string | Buffer): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, content);
  return p;
}

/** Asserts the promise rejects with a BulwarkError of `code` whose message matches every regex. */
async function rejects(p: Promise<unknown>, code: string, ...patterns: RegExp[]): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof BulwarkError, `expected a BulwarkError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    for (const re of patterns) assert.match(e.message, re);
    return true;
  });
}

// --- CSV ---------------------------------------------------------------------------------

test('numeric CSV with a string label: values, shape, classes, feature names', async () => {
  const p = fixture('basic.csv', 'a,b,label\n1,2.5,cat\n-3,4e1,dog\n0.5,  6 ,cat\n');
  const ds = await loadCsv(p, { label: 'label' });
  assert.deepEqual([...ds.x.shape], [3, 2]);
  assert.deepEqual([...ds.x.data], [1, 2.5, -3, 40, 0.5, 6]);
  assert.deepEqual([...ds.y], [0, 1, 0]);
  assert.deepEqual(ds.classNames, ['cat', 'dog']);
  assert.deepEqual(ds.featureNames, ['a', 'b']);
  assert.equal(ds.name, 'basic');
  assert.deepEqual(ds.sources, [path.resolve(p)]);
});

test('numeric labels are ordered by value, not as text', async () => {
  const p = fixture('numlabels.csv', 'x,y\n1,10\n2,2\n3,1\n4,2.0\n');
  const ds = await loadCsv(p, { label: 'y', name: 'custom' });
  assert.deepEqual(ds.classNames, ['1', '2', '10']);
  assert.deepEqual([...ds.y], [2, 1, 0, 1]);
  assert.equal(ds.name, 'custom');
});

test('a categorical column is one-hot encoded with sorted categories', async () => {
  const p = fixture('onehot.csv', 'size,color,y\n1,red,0\n2,blue,1\n3,green,0\n4,red,1\n');
  const ds = await loadCsv(p, { label: 'y' });
  assert.deepEqual(ds.featureNames, ['size', 'color=blue', 'color=green', 'color=red']);
  assert.deepEqual([...ds.x.shape], [4, 4]);
  assert.deepEqual([...ds.x.data], [1, 0, 0, 1, 2, 1, 0, 0, 3, 0, 1, 0, 4, 0, 0, 1]);
});

test("categorical: 'refuse' names the column and an example value", async () => {
  const p = fixture('refuse.csv', 'size,color,y\n1,red,0\n2,blue,1\n');
  await rejects(loadCsv(p, { label: 'y', categorical: 'refuse' }), 'E_DATA_VALUE', /refuse\.csv/, /column 'color'/, /'red'/, /line 2/);
});

test('a column with too many categories names the column, the count and --drop', async () => {
  const rows = Array.from({ length: 6 }, (_, i) => `${i},id${i},0`).join('\n');
  const p = fixture('manycats.csv', `n,id,y\n${rows}\n`);
  await rejects(loadCsv(p, { label: 'y', maxCategories: 5 }), 'E_DATA_VALUE', /manycats\.csv/, /column 'id'/, /\b6 distinct/, /--drop id/);
  const ds = await loadCsv(p, { label: 'y', drop: ['id'] });
  assert.deepEqual(ds.featureNames, ['n']);
});

test('missing or non-finite numbers name the file, data row, line and column', async () => {
  for (const bad of ['', 'NaN', 'nan', 'null', 'Infinity', '1e999']) {
    const p = fixture('missing.csv', `a,b,y\n1,2,0\n\n3,${bad},1\n`);
    await rejects(loadCsv(p, { label: 'y' }), 'E_DATA_VALUE', /missing\.csv/, /line 4/, /data row 2/, /column 'b'/);
  }
});

test('a missing label is reported like a missing value', async () => {
  const p = fixture('nolabel.csv', 'a,y\n1,cat\n2,\n');
  await rejects(loadCsv(p, { label: 'y' }), 'E_DATA_VALUE', /nolabel\.csv/, /line 3/, /data row 2/, /column 'y'/, /missing label/);
});

test('unknown label or drop columns list the available columns', async () => {
  const p = fixture('cols.csv', 'alpha,beta,y\n1,2,0\n');
  await rejects(loadCsv(p, { label: 'target' }), 'E_USAGE', /cols\.csv/, /'target'/, /'alpha', 'beta', 'y'/);
  await rejects(loadCsv(p, { label: 'y', drop: ['gamma'] }), 'E_USAGE', /'gamma'/, /'alpha', 'beta', 'y'/);
});

test('a header without data rows is refused; a single class is allowed', async () => {
  await rejects(loadCsv(fixture('header.csv', 'a,y\n'), { label: 'y' }), 'E_DATA_PARSE', /header\.csv has no data rows/);
  const ds = await loadCsv(fixture('oneclass.csv', 'a,y\n1,k\n2,k\n'), { label: 'y' });
  assert.deepEqual(ds.classNames, ['k']);
  assert.deepEqual([...ds.y], [0, 0]);
});

test('ragged rows name the line and the expected and found column counts', async () => {
  const p = fixture('ragged.csv', 'a,b,y\n1,2,0\n3,1\n');
  await rejects(loadCsv(p, { label: 'y' }), 'E_DATA_SHAPE', /ragged\.csv/, /line 3/, /expected 3 columns/, /found 2/);
});

test('line numbers stay right across CRLF, blank lines and quoted multi-line fields', async () => {
  const p = fixture('crlf.csv', 'a,note,y\r\n1,"two\r\nlines",0\r\n\r\n2,x,1\r\n,y,0\r\n');
  await rejects(loadCsv(p, { label: 'y', drop: ['note'] }), 'E_DATA_VALUE', /line 6 \(data row 3\)/, /column 'a'/);
});

test('malformed CSV is a parse error naming the file and line', async () => {
  const p = fixture('quote.csv', 'a,y\n1,0\n2,"open\n3,1\n');
  await rejects(loadCsv(p, { label: 'y' }), 'E_DATA_PARSE', /quote\.csv/, /line 3/);
});

test('missing, directory and empty inputs have their own codes', async () => {
  await rejects(loadCsv(path.join(dir, 'nope.csv'), { label: 'y' }), 'E_FILE_NOT_FOUND', /nope\.csv/);
  await rejects(loadCsv(dir, { label: 'y' }), 'E_FILE_READ', /is a directory/);
  await rejects(loadCsv(fixture('empty.csv', ''), { label: 'y' }), 'E_DATA_PARSE', /empty\.csv is empty/);
  await rejects(loadCsv(fixture('blank.csv', '\n  \n'), { label: 'y' }), 'E_DATA_PARSE', /is empty/);
});

// --- JSONL -------------------------------------------------------------------------------

test('JSONL: objects become rows, blank lines skipped, strings one-hot encoded', async () => {
  const p = fixture('ok.jsonl', '{"x": 1.5, "kind": "b", "y": "no"}\n\n{"y": "yes", "x": -2, "kind": "a"}\r\n');
  const ds = await loadJsonl(p, { label: 'y' });
  assert.deepEqual(ds.featureNames, ['x', 'kind=a', 'kind=b']);
  assert.deepEqual([...ds.x.data], [1.5, 0, 1, -2, 1, 0]);
  assert.deepEqual(ds.classNames, ['no', 'yes']);
  assert.deepEqual([...ds.y], [0, 1]);
  assert.equal(ds.name, 'ok');
});

test('JSONL errors name the line and key', async () => {
  await rejects(loadJsonl(fixture('bad.jsonl', '{"x": 1, "y": 0}\n\n{"x": 2, "y": }\n'), { label: 'y' }), 'E_DATA_PARSE', /bad\.jsonl line 3/, /not valid JSON/);
  await rejects(loadJsonl(fixture('arr.jsonl', '[1, 2]\n'), { label: 'y' }), 'E_DATA_PARSE', /line 1/, /expected a JSON object/);
  await rejects(loadJsonl(fixture('miss.jsonl', '{"x": 1, "y": 0}\n{"y": 1}\n'), { label: 'y' }), 'E_DATA_SHAPE', /line 2/, /'x' is missing/);
  await rejects(loadJsonl(fixture('extra.jsonl', '{"x": 1, "y": 0}\n{"x": 2, "y": 1, "z": 3}\n'), { label: 'y' }), 'E_DATA_SHAPE', /line 2/, /'z'/);
  await rejects(loadJsonl(fixture('nest.jsonl', '{"x": 1, "y": 0}\n{"x": [2], "y": 1}\n'), { label: 'y' }), 'E_DATA_VALUE', /line 2/, /key 'x'/, /an array/);
  await rejects(loadJsonl(fixture('null.jsonl', '{"x": 1, "y": 0}\n{"x": null, "y": 1}\n'), { label: 'y' }), 'E_DATA_VALUE', /line 2 \(data row 2\)/, /column 'x'/);
  await rejects(loadJsonl(fixture('empty.jsonl', '\n'), { label: 'y' }), 'E_DATA_PARSE', /is empty/);
});

// --- NPY ---------------------------------------------------------------------------------

test('writeNpy then readNpy round-trips f4, i4, f8 and u1', async () => {
  const cases = [
    { data: Float32Array.from([1.5, -2, 3.25, 0, 1e-3, 7]), dtype: '<f4' },
    { data: Int32Array.from([1, -2, 2147483647, -2147483648, 0, 5]), dtype: '<i4' },
    { data: Float64Array.from([Math.PI, -1e300, 0.1, 2, 3, 4]), dtype: '<f8' },
    { data: Uint8Array.from([0, 1, 2, 128, 255, 9]), dtype: '|u1' },
  ];
  for (const { data, dtype } of cases) {
    const p = path.join(dir, `rt-${dtype.slice(1)}.npy`);
    await writeNpy(p, data, [2, 3]);
    const bytes = fs.readFileSync(p);
    assert.equal((10 + bytes.readUInt16LE(8)) % 64, 0, 'data starts on a 64-byte boundary');
    const back = await readNpy(p);
    assert.equal(back.dtype, dtype);
    assert.deepEqual(back.shape, [2, 3]);
    assert.equal(back.data.constructor, data.constructor);
    assert.deepEqual([...back.data], [...data]);
  }
  assert.deepEqual(fs.readdirSync(dir).filter((f) => f.includes('.tmp-')), [], 'no temporary files left behind');
  await rejects(writeNpy(path.join(dir, 'bad.npy'), new Float32Array(5), [2, 3]), 'E_DATA_SHAPE', /\[2, 3\]/);
});

/** A .npy file built byte by byte, independent of writeNpy. */
function handNpy(header: string, data: Buffer, version = 1): Buffer {
  const lenField = Buffer.alloc(version === 1 ? 2 : 4);
  if (version === 1) lenField.writeUInt16LE(header.length);
  else lenField.writeUInt32LE(header.length);
  return Buffer.concat([Buffer.from([0x93]), Buffer.from('NUMPY'), Buffer.from([version, 0]), lenField, Buffer.from(header, 'latin1'), data]);
}

test('a hand-built .npy is parsed: v1 <i8 and v2 <i2 with an unaligned data offset', async () => {
  const i8 = Buffer.alloc(24);
  [7n, -3n, 9007199254740991n].forEach((v, i) => i8.writeBigInt64LE(v, i * 8));
  const a = await readNpy(fixture('hand.npy', handNpy("{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }\n", i8)));
  assert.deepEqual(a.shape, [3]);
  assert.equal(a.dtype, '<i8');
  assert.deepEqual([...a.data], [7, -3, 9007199254740991]);

  const i2 = Buffer.alloc(8);
  [1, -1, 300, -300].forEach((v, i) => i2.writeInt16LE(v, i * 2));
  const b = await readNpy(fixture('hand2.npy', handNpy("{'descr': '<i2', 'fortran_order': False, 'shape': (2, 2), }  \n", i2, 2)));
  assert.deepEqual(b.shape, [2, 2]);
  assert.deepEqual([...b.data], [1, -1, 300, -300]);
});

test('truncated, Fortran-order, big-endian and non-npy files are refused clearly', async () => {
  const f4 = Buffer.alloc(20);
  const hdr = (descr: string, fortran = 'False'): string => `{'descr': '${descr}', 'fortran_order': ${fortran}, 'shape': (2, 3), }\n`;
  await rejects(readNpy(fixture('trunc.npy', handNpy(hdr('<f4'), f4))), 'E_DATA_PARSE', /trunc\.npy/, /truncated: expected 24 bytes of data, found 20/);
  await rejects(readNpy(fixture('fort.npy', handNpy(hdr('<f4', 'True'), Buffer.alloc(24)))), 'E_DATA_PARSE', /Fortran/);
  await rejects(readNpy(fixture('big.npy', handNpy(hdr('>f4'), Buffer.alloc(24)))), 'E_DATA_PARSE', /big-endian/);
  await rejects(readNpy(fixture('half.npy', handNpy(hdr('<f2'), Buffer.alloc(12)))), 'E_DATA_PARSE', /unsupported dtype '<f2'/);
  await rejects(readNpy(fixture('text.npy', 'hello, world\n')), 'E_DATA_PARSE', /not a NumPy \.npy file/);
});

test('loadNpy with the label in the last column', async () => {
  const p = path.join(dir, 'xy.npy');
  await writeNpy(p, Float32Array.from([0.5, 1, 2, 1.5, 2, 0, 2.5, 3, 2]), [3, 3]);
  const ds = await loadNpy(p, { label: -1 });
  assert.deepEqual([...ds.x.shape], [3, 2]);
  assert.deepEqual([...ds.x.data], [0.5, 1, 1.5, 2, 2.5, 3]);
  assert.deepEqual([...ds.y], [2, 0, 2]);
  assert.deepEqual(ds.classNames, ['0', '1', '2']);
  assert.equal(ds.name, 'xy');

  await writeNpy(p, Float32Array.from([0.5, 1, 1.5, 2, 2.5, 0.5]), [3, 2]);
  await rejects(loadNpy(p, { label: -1 }), 'E_DATA_VALUE', /xy\.npy row 2 \(0-based\), column 1/, /label 0\.5/);
  await writeNpy(p, Float32Array.from([0, 1, NaN, 0]), [2, 2]);
  await rejects(loadNpy(p, { label: 1 }), 'E_DATA_VALUE', /row 1 \(0-based\), column 0/, /NaN/);
  await rejects(loadNpy(p, { label: 5 }), 'E_USAGE', /out of range/);
});

test('loadNpy with a separate labels file keeps the sample shape', async () => {
  const xp = path.join(dir, 'images.npy');
  const yp = path.join(dir, 'labels.npy');
  await writeNpy(xp, Float64Array.from({ length: 12 }, (_, i) => i / 2), [3, 2, 2]);
  await writeNpy(yp, Int32Array.from([1, 0, 3]), [3]);
  const ds = await loadNpy(xp, { labelsPath: yp });
  assert.deepEqual([...ds.x.shape], [3, 2, 2]);
  assert.deepEqual([...ds.x.data], Array.from({ length: 12 }, (_, i) => i / 2));
  assert.deepEqual([...ds.y], [1, 0, 3]);
  assert.deepEqual(ds.classNames, ['0', '1', '2', '3']);
  assert.deepEqual(ds.sources, [path.resolve(xp), path.resolve(yp)]);

  await writeNpy(yp, Int32Array.from([1, -1, 0]), [3]);
  await rejects(loadNpy(xp, { labelsPath: yp }), 'E_DATA_VALUE', /labels\.npy row 1/, /label -1/);
  await writeNpy(yp, Int32Array.from([1, 0]), [2]);
  await rejects(loadNpy(xp, { labelsPath: yp }), 'E_DATA_SHAPE', /3 samples/, /2 labels/);
  await writeNpy(yp, Float32Array.from([1, 0, 1]), [3]);
  await rejects(loadNpy(xp, { labelsPath: yp }), 'E_DATA_VALUE', /labels must be integers/);
  await writeNpy(xp, Float64Array.from([0, 0, 0, 0, 0, 1e300, 0, 0, 0, 0, 0, 0]), [3, 2, 2]);
  await writeNpy(yp, Int32Array.from([1, 0, 1]), [3]);
  await rejects(loadNpy(xp, { labelsPath: yp }), 'E_DATA_VALUE', /images\.npy row 1 \(0-based\), element \[0, 1\]/);
});

function hasNumpy(): boolean {
  try {
    execFileSync('python3', ['-c', 'import numpy'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

test('files written by numpy itself are read correctly', async (t) => {
  if (!hasNumpy()) {
    t.skip('numpy not installed: python3 -c "import numpy" failed, so np.save output cannot be checked');
    return;
  }
  const script = [
    'import numpy as np, sys',
    'd = sys.argv[1]',
    "np.save(d + '/np_f4.npy', np.arange(6, dtype='<f4').reshape(2, 3) / 4)",
    "np.save(d + '/np_i8.npy', np.array([3, -1, 2**40], dtype='<i8'))",
    "np.save(d + '/np_b1.npy', np.array([True, False, True]))",
    "np.save(d + '/np_f8_3d.npy', np.linspace(0, 1, 24).reshape(2, 3, 4))",
    "np.save(d + '/np_fortran.npy', np.asfortranarray(np.ones((2, 3), dtype='<f4')))",
  ].join('\n');
  execFileSync('python3', ['-c', script, dir]);
  const f4 = await readNpy(path.join(dir, 'np_f4.npy'));
  assert.deepEqual(f4.shape, [2, 3]);
  assert.deepEqual([...f4.data], [0, 0.25, 0.5, 0.75, 1, 1.25]);
  const i8 = await readNpy(path.join(dir, 'np_i8.npy'));
  assert.deepEqual([...i8.data], [3, -1, 2 ** 40]);
  const b1 = await readNpy(path.join(dir, 'np_b1.npy'));
  assert.equal(b1.dtype, '|b1');
  assert.deepEqual([...b1.data], [1, 0, 1]);
  const f8 = await readNpy(path.join(dir, 'np_f8_3d.npy'));
  assert.deepEqual(f8.shape, [2, 3, 4]);
  assert.equal(f8.data[23], 1);
  await rejects(readNpy(path.join(dir, 'np_fortran.npy')), 'E_DATA_PARSE', /Fortran/);

  // And numpy reads what we write.
  await writeNpy(path.join(dir, 'ours.npy'), Float32Array.from([1, 2, 3, 4.5]), [2, 2]);
  const out = execFileSync('python3', ['-c', "import numpy as np, sys; a = np.load(sys.argv[1]); print(a.dtype, a.shape, a.tolist())", path.join(dir, 'ours.npy')]);
  assert.equal(out.toString().trim(), 'float32 (2, 2) [[1.0, 2.0], [3.0, 4.5]]');
});
