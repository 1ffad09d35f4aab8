import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { createManifest, readManifest, subjectDigest, writeManifest } from '../../src/provenance/manifest.js';
import { checkManifest } from '../../src/provenance/verify.js';
import { compareNames } from '../../src/provenance/walk.js';
import { rejects, tempDir, writeTree } from './signing-helpers.js';

const tmp = tempDir('manifest');

test('a directory: sorted POSIX names relative to it, sizes and SHA-256, .git and friends left out', async () => {
  const dir = writeTree(path.join(tmp, 'model'), {
    'b.bin': 'bbb',
    'a-b.txt': 'dash',
    'a/b.txt': 'slash',
    'a/z/deep.txt': 'deep',
    'A.txt': 'upper',
    '.git/config': 'x',
    '.gitignore': 'x',
    'sub/.git/keep': 'nested .git is content: only the root one is ignored, as model_signing does',
  });
  const m = await createManifest([dir]);
  const names = m.predicate.resources.map((r) => r.name);
  // Component-wise order, as Python sorts PurePosixPath: "a/…" before "a-b.txt".
  assert.deepEqual(names, ['A.txt', 'a/b.txt', 'a/z/deep.txt', 'a-b.txt', 'b.bin', 'sub/.git/keep']);
  assert.equal(m.predicate.resources[4].digest, createHash('sha256').update('bbb').digest('hex'));
  assert.deepEqual(m.predicate.bulwark?.sizes, [5, 5, 4, 4, 3, 75]);
  assert.equal(m.subject[0].name, 'model');
  assert.equal(m.subject[0].digest.sha256, subjectDigest(m.predicate.resources));
  assert.deepEqual(m.predicate.serialization, { method: 'files', hash_type: 'sha256', allow_symlinks: false, ignore_paths: ['.git', '.gitattributes', '.github', '.gitignore'] });
});

test('name order is by path component, then code point', () => {
  const names = ['a-b', 'a/b', 'a', 'Z', 'é', 'a/a/a', '\u{1F600}', '\uFF01'];
  assert.deepEqual([...names].sort(compareNames), ['Z', 'a', 'a/a/a', 'a/b', 'a-b', 'é', '\uFF01', '\u{1F600}']);
});

test('ignore patterns: directories with or without a slash, globs within a component', async () => {
  const dir = writeTree(path.join(tmp, 'ign'), { 'keep.txt': 'k', 'logs/run1.log': 'l', 'cache/tmp/x': 'c', 'cache/keep': 'k', 'w.tmp': 't', 'sub/w.tmp': 't' });
  const m = await createManifest([dir], { ignore: ['logs/', 'cache/tmp', '*.tmp'] });
  assert.deepEqual(m.predicate.resources.map((r) => r.name), ['cache/keep', 'keep.txt', 'sub/w.tmp']);
  assert.deepEqual(m.predicate.serialization.ignore_paths?.slice(4), ['logs', 'cache/tmp', '*.tmp']);
  await rejects(createManifest([dir], { ignore: ['*'] }), 'E_USAGE', /no files left/);
});

test('symbolic links are refused unless allowed, then followed', async () => {
  const dir = writeTree(path.join(tmp, 'links'), { 'real.bin': 'data', 'sub/x.txt': 'x' });
  fs.symlinkSync(path.join(dir, 'real.bin'), path.join(dir, 'link.bin'));
  fs.symlinkSync(path.join(dir, 'sub'), path.join(dir, 'sublink'));
  fs.symlinkSync(dir, path.join(dir, 'sub', 'loop'));
  await rejects(createManifest([dir]), 'E_USAGE', /symbolic link/, /allowSymlinks/);
  const m = await createManifest([dir], { allowSymlinks: true });
  const names = m.predicate.resources.map((r) => r.name);
  // The loop back to the root is not entered; a link to a sibling folder is listed under its own name.
  assert.deepEqual(names, ['link.bin', 'real.bin', 'sub/x.txt', 'sublink/x.txt']);
  const digest = (n: string) => m.predicate.resources.find((r) => r.name === n)?.digest;
  assert.equal(digest('link.bin'), digest('real.bin'));
  assert.equal(m.predicate.serialization.allow_symlinks, true);
});

test('several paths are named under their base names; duplicates are refused', async () => {
  const a = writeTree(path.join(tmp, 'multi', 'data'), { 'x.csv': 'h\n1\n' });
  const b = path.join(tmp, 'multi', 'model.onnx');
  fs.writeFileSync(b, 'onnx');
  const m = await createManifest([a, b]);
  assert.deepEqual(m.predicate.resources.map((r) => r.name), ['data/x.csv', 'model.onnx']);
  assert.equal(m.subject[0].name, 'data,model.onnx');
  const verified = await checkManifest([a, b], m);
  assert.equal(verified.valid, true);
  fs.writeFileSync(b, 'onnx2');
  assert.deepEqual((await checkManifest([a, b], m)).changes, [{ path: 'model.onnx', kind: 'modified' }]);
  const other = writeTree(path.join(tmp, 'multi2', 'data'), { 'y': 'y' });
  await rejects(createManifest([a, other]), 'E_USAGE', /share the name "data"/);
});

test('write and read back; unreadable or non-manifest JSON is an input error naming the file', async () => {
  const dir = writeTree(path.join(tmp, 'rw'), { 'f.jsonl': '{"a":1}\n' });
  const m = await createManifest([dir], { records: true });
  const file = path.join(tmp, 'out', 'manifest.json');
  await writeManifest(m, file);
  assert.deepEqual(await readManifest(file), m);
  const bad = path.join(tmp, 'bad.json');
  fs.writeFileSync(bad, '{"_type": ');
  await rejects(readManifest(bad), 'E_DATA_PARSE', /bad\.json is not valid JSON/);
  fs.writeFileSync(bad, '{"_type": "something else"}');
  await rejects(readManifest(bad), 'E_DATA_PARSE', /bad\.json is not a Bulwark\/OpenSSF manifest: _type/);
  await rejects(readManifest(path.join(tmp, 'absent.json')), 'E_FILE_NOT_FOUND', /absent\.json/);
  await rejects(createManifest([path.join(tmp, 'absent-dir')]), 'E_FILE_NOT_FOUND', /absent-dir/);
});
