import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Rng } from '../../src/core/index.js';
import { bulwark, tempDir } from '../cli/helpers.js';

const dir = tempDir('poisoning');
after(() => rmSync(dir, { recursive: true, force: true }));

// 400 rows of 4 normal features and a label that follows feature a; rows 50 and 51 are far
// outliers, row 60's label is flipped, row 70 repeats row 69 exactly. The id column must be dropped.
const rng = new Rng(1);
const lines = ['id,a,b,c,d,label'];
for (let i = 0; i < 400; i++) {
  const v = [rng.normal() * 2, rng.normal(), rng.normal(), rng.normal()];
  if (i === 50 || i === 51) v[1] += 12;
  let label = v[0] > 0 ? 'yes' : 'no';
  if (i === 60) {
    v[0] = 4;
    label = 'no';
  }
  lines.push([`id${i}`, ...v.map((x) => x.toFixed(4)), label].join(','));
}
lines[71] = lines[70].replace(/^id\d+/, 'id70');
const csv = path.join(dir, 'rows.csv');
writeFileSync(csv, lines.join('\n') + '\n');

test('data scan: ranked reasons, --scores one line per row in input order, --clean keeps the rest verbatim', async () => {
  const scores = path.join(dir, 'scores.csv');
  const clean = path.join(dir, 'clean.csv');
  const r = await bulwark(['data', 'scan', csv, '--label', 'label', '--drop', 'id', '--scores', scores, '--clean', clean, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { rows: number; counts: Record<string, number>; suspicious: { row: number; reasons: { kind: string }[] }[] };
  assert.equal(out.rows, 400);
  const reasons = (row: number): string[] => out.suspicious.find((s) => s.row === row)?.reasons.map((x) => x.kind) ?? [];
  assert.ok(reasons(50).includes('outlier') && reasons(51).includes('outlier'), JSON.stringify(out.suspicious.slice(0, 5)));
  assert.ok(reasons(60).includes('likely mislabeled'));
  assert.ok(reasons(70).includes('duplicate'));
  const s = readFileSync(scores, 'utf8').trim().split('\n');
  assert.equal(s[0], 'row,outlier_score,isolation_score,label_issue_score,suggested_label,duplicate_of,reasons');
  assert.equal(s.length, 401);
  const rows = s.slice(1).map((l) => l.split(','));
  rows.forEach((cells, i) => assert.equal(cells[0], String(i)));
  const outlier = rows.map((cells) => Number(cells[1]));
  const ranked = [...outlier.keys()].sort((a, b) => outlier[b] - outlier[a]);
  assert.deepEqual(ranked.slice(0, 2).sort(), [50, 51], 'the outliers score highest');
  assert.equal(rows[70][5], '69');
  assert.ok(Number(rows[60][3]) > 0.8, 'the flipped row has a high label_issue_score');
  const kept = readFileSync(clean, 'utf8').trim().split('\n');
  assert.equal(kept[0], lines[0]);
  assert.equal(kept.length - 1, 400 - out.counts.flagged);
  assert.ok(!kept.includes(lines[51]) && kept.includes(lines[1]));
});

test('data scan --stream gives the same outliers and the same scores layout', async () => {
  const scores = path.join(dir, 'stream-scores.csv');
  const r = await bulwark(['data', 'scan', csv, '--label', 'label', '--drop', 'id', '--stream', '--scores', scores, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { streamed: boolean; suspicious: { row: number }[] };
  assert.equal(out.streamed, true);
  const rows = new Set(out.suspicious.map((s) => s.row));
  assert.ok(rows.has(50) && rows.has(51) && rows.has(70));
  assert.equal(readFileSync(scores, 'utf8').trim().split('\n').length, 401);
});

function write(name: string, text: string): string {
  const f = path.join(dir, name);
  writeFileSync(f, text);
  return f;
}
const rowsOf = (n: number, f: (i: number) => string): string => Array.from({ length: n }, (_, i) => f(i)).join('\n') + '\n';
const textInNumbers = write('text.csv', 'a,b,label\n' + rowsOf(30, (i) => `${i},${i === 7 ? 'oops' : i * 2},x`));
const nan = write('nan.csv', 'a,b,label\n' + rowsOf(30, (i) => `${i},${i === 9 ? 'NaN' : i % 7},${i % 2}`));
const empty = write('empty.csv', 'a,b,label\n' + rowsOf(30, (i) => `${i},,${i % 2}`));
const tiny = write('tiny.csv', 'a,b,label\n1,2,x\n3,4,y\n');
const constant = write('constant.csv', 'a,b,k,label\n' + rowsOf(40, (i) => `${(i * 37) % 11},${(i * 17) % 13},5,${i % 2}`));
const oneClass = write('one.csv', 'a,b,label\n' + rowsOf(40, (i) => `${(i * 37) % 11},${(i * 17) % 13},same`));
const textColumn = write('words.csv', 'a,b,colour,label\n' + rowsOf(40, (i) => `${(i * 37) % 11},${(i * 17) % 13},${['red', 'green'][i % 2]},${i % 2}`));

for (const c of [
  { args: [textInNumbers, '--label', 'label'], expect: /text\.csv line 9, column 'b': text 'oops' in a numeric column.*--drop b/ },
  { args: [nan, '--label', 'label'], expect: /nan\.csv line 11, column 'b': missing or infinite value 'NaN'/ },
  { args: [empty, '--label', 'label'], expect: /column 'b' has no values.*--drop b/ },
  { args: [csv, '--label', 'nope'], expect: /no column 'nope'.*'id', 'a'/ },
  { args: [tiny, '--label', 'label'], expect: /at least 5 rows/ },
  { args: [path.join(dir, 'missing.csv')], expect: /not found/ },
  { args: [csv, '--dataset', 'digits'], expect: /a FILE or --dataset NAME \(not both\)/ },
  { args: [textInNumbers, '--label', 'label', '--stream'], expect: /text 'oops' in a numeric column/ },
]) {
  test(`data scan bad input exits 2: ${path.basename(c.args[0])} ${c.args.slice(1).join(' ')}`, async () => {
    const r = await bulwark(['data', 'scan', ...c.args]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, c.expect);
    assert.doesNotMatch(r.stderr, /^\s+at /m);
    assert.equal(r.stdout, '');
  });
}

test('data scan warns and still answers: constant column, one class, a text column', async () => {
  const a = await bulwark(['data', 'scan', constant, '--label', 'label', '--json']);
  assert.equal(a.code, 0, a.stderr);
  assert.match(a.stderr, /warning: 1 constant column \('k'\) was left out/);
  const b = await bulwark(['data', 'scan', oneClass, '--label', 'label', '--json']);
  assert.equal(b.code, 0, b.stderr);
  assert.match(b.stderr, /warning: every row has the same label/);
  const c = await bulwark(['data', 'scan', textColumn, '--label', 'label']);
  assert.equal(c.code, 0, c.stderr);
  assert.match(c.stderr, /warning: column 'colour' holds text.*left out/);
});

test('attack poison writes a CSV whose poisoned column matches the reported rows, and an .npy pair', async () => {
  const out = path.join(dir, 'poisoned.csv');
  const r = await bulwark(['attack', 'poison', '--dataset', csv, '--label', 'label', '--drop', 'id', '--kind', 'badnets', '--rate', '0.1', '--target', '1', '--patch-size', '2', '--out', out, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const res = JSON.parse(r.stdout) as { poisoned: number; poisonedIndices: number[] };
  assert.equal(res.poisoned, 40);
  const body = readFileSync(out, 'utf8').trim().split('\n');
  assert.equal(body[0], 'a,b,c,d,label,poisoned');
  const marked = body.slice(1).flatMap((l, i) => (l.endsWith(',1') ? [i] : []));
  assert.deepEqual(marked, res.poisonedIndices);
  const npy = path.join(dir, 'poisoned.npy');
  const n = await bulwark(['attack', 'poison', '--dataset', csv, '--label', 'label', '--drop', 'id', '--kind', 'label-flip', '--rate', '0.05', '--out', npy]);
  assert.equal(n.code, 0, n.stderr);
  assert.ok(existsSync(npy) && existsSync(path.join(dir, 'poisoned.poisoned.npy')));
  const bad = await bulwark(['attack', 'poison', '--dataset', csv, '--label', 'label', '--drop', 'id', '--out', path.join(dir, 'x.txt')]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /\.csv or \.npy/);
});
