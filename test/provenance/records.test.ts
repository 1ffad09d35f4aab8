import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { diffRecords } from '../../src/provenance/diff.js';
import { loadPrivateKey, loadPublicKey, writeKeyPair } from '../../src/provenance/keys.js';
import { createManifest } from '../../src/provenance/manifest.js';
import { leafHash, merkleRoot, MerkleAccumulator } from '../../src/provenance/merkle.js';
import { recordDigestsOf } from '../../src/provenance/records.js';
import { Sha256 } from '../../src/provenance/sha256.js';
import { signPath, writeSignature } from '../../src/provenance/sign.js';
import { verifyPath } from '../../src/provenance/verify.js';
import { tempDir, writeTree } from './signing-helpers.js';

const tmp = tempDir('records');

test('Merkle root of three leaves matches RFC 6962 computed by hand', () => {
  // leaf = SHA-256(0x00 || data), node = SHA-256(0x01 || left || right); 3 leaves split 2 + 1.
  const sha = (...parts: Buffer[]) => createHash('sha256').update(Buffer.concat(parts)).digest();
  const leaf = (s: string) => sha(Buffer.from([0]), Buffer.from(s));
  const node = (l: Buffer, r: Buffer) => sha(Buffer.from([1]), l, r);
  const byHand = node(node(leaf('a'), leaf('b')), leaf('c')).toString('hex');
  assert.equal(byHand, '36642e73c2540ab121e3a6bf9545b0a24982cd830eb13d3cd19de3ce6c021ec1');
  assert.equal(merkleRoot(['a', 'b', 'c'].map((s) => leafHash(Buffer.from(s)))), byHand);
  assert.equal(recordDigestsOf(Buffer.from('a\nb\nc\n'), 'jsonl').merkleRoot, byHand);
  assert.equal(merkleRoot([]), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
});

test('the streaming Merkle root equals the recursive definition for every size up to 70', () => {
  const mth = (leaves: Buffer[]): Buffer => {
    if (leaves.length === 1) return leaves[0];
    let k = 1;
    while (k * 2 < leaves.length) k *= 2;
    return createHash('sha256').update(Buffer.from([1])).update(mth(leaves.slice(0, k))).update(mth(leaves.slice(k))).digest();
  };
  const leaves = Array.from({ length: 70 }, (_, i) => leafHash(Buffer.from(`row ${i}`)));
  for (let n = 1; n <= leaves.length; n++) {
    const acc = new MerkleAccumulator();
    leaves.slice(0, n).forEach((l) => acc.push(l));
    assert.equal(acc.root(), mth(leaves.slice(0, n)).toString('hex'), `n=${n}`);
  }
});

test('the small-input SHA-256 agrees with OpenSSL on every length and split', () => {
  const sha = new Sha256();
  const out = new Uint8Array(32);
  for (let len = 0; len < 200; len++) {
    const data = randomBytes(len);
    for (const cut of [0, 1, 55, 64, len]) {
      const k = Math.min(cut, len);
      sha.reset().update(data, 0, k).update(data, k, len).digestInto(out);
      assert.equal(Buffer.from(out).toString('hex'), createHash('sha256').update(data).digest('hex'), `len ${len} cut ${k}`);
    }
  }
});

test('records: quoted newlines stay in one CSV row, CRLF and LF give the same records, chunk cuts do not matter', () => {
  const csv = 'id,text\r\n1,"two\r\nlines"\r\n2,"a ""quoted"" word"\r\n\r\n3,plain\r\n4,"last"';
  const lf = csv.replace(/\r\n/g, '\n');
  const whole = recordDigestsOf(Buffer.from(csv), 'csv');
  assert.equal(whole.count, 4); // the blank line is not a record; the header is apart
  for (const chunkSize of [1, 2, 3, 5, 8, 13]) assert.deepEqual(recordDigestsOf(Buffer.from(csv), 'csv', { chunkSize }), whole, `chunk ${chunkSize}`);
  const fromLf = recordDigestsOf(Buffer.from(lf), 'csv');
  // Only the quoted field's own CRLF differs between the two files: row 1 and nothing else.
  assert.deepEqual(diffRecords(whole.digests, fromLf.digests, 8), { changed: [1], added: [], removed: [] });
  assert.equal(whole.header, leafHash(Buffer.from('id,text')).toString('hex'));
});

test('diff: rows are numbered in the old file (changed, removed) and the new file (added)', () => {
  const digests = (rows: string[]) => recordDigestsOf(Buffer.from(rows.join('\n')), 'jsonl').digests;
  const old = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
  const next = ['a', 'B', 'c', 'e', 'f', 'x', 'g', 'y'];
  assert.deepEqual(diffRecords(digests(old), digests(next), 8), { changed: [2], removed: [4], added: [6, 8] });
  // Among duplicate rows the diff is still a shortest one: one row moved is one out, one in.
  const dup = ['r', 'r', 's', 'r', 's', 's', 'r'];
  const dup2 = ['r', 'r', 's', 's', 's', 'r', 'r'];
  assert.deepEqual(diffRecords(digests(dup), digests(dup2), 8), { changed: [], added: [6], removed: [4] });
  assert.deepEqual(diffRecords(digests([]), digests(['a']), 8), { changed: [], added: [1], removed: [] });
  assert.deepEqual(diffRecords(digests(['a', 'b']), digests([]), 8), { changed: [], added: [], removed: [1, 2] });
});

/** Deterministic rows; `edit` returns the new rows and the row numbers verification must name. */
function scenario(n: number, render: (i: number) => string) {
  const old = Array.from({ length: n }, (_, i) => render(i));
  const changedAt = [100, 900, 1500]; // 0-based positions in the old rows
  const deletedAt = [400, 1800];
  const insertedBefore = [700, 1200];
  const next: string[] = [];
  const added: number[] = [];
  old.forEach((row, i) => {
    if (insertedBefore.includes(i)) {
      next.push(render(n + i));
      added.push(next.length);
    }
    if (deletedAt.includes(i)) return;
    next.push(changedAt.includes(i) ? row.replace('0.', '9.') : row);
  });
  return { old, next, expected: { changed: changedAt.map((i) => i + 1), added, removed: deletedAt.map((i) => i + 1) } };
}

for (const format of ['csv', 'jsonl'] as const) {
  test(`${format}: signed with records, 3 changed, 2 inserted and 2 deleted rows out of 2000 are named exactly`, async () => {
    const render =
      format === 'csv'
        ? (i: number) => `${i},${(i * 0.37) % 1 === 0 ? '0.5' : ((i * 0.37) % 1).toFixed(6)},"note ${i}, with comma"`
        : (i: number) => JSON.stringify({ id: i, x: Number(((i * 0.37) % 1).toFixed(6)) || 0.5, tag: `t${i % 7}` });
    const { old, next, expected } = scenario(2000, render);
    const header = format === 'csv' ? 'id,x,note\n' : '';
    const dir = writeTree(path.join(tmp, `ds-${format}`), { [`train.${format}`]: header + old.join('\n') + '\n', 'README.md': 'data\n' });
    const base = path.join(tmp, `key-${format}`);
    await writeKeyPair('ecdsa-p256', base);
    const sigFile = path.join(tmp, `ds-${format}.sig`);
    await writeSignature(await signPath(dir, await loadPrivateKey(`${base}.key`), { records: true }), sigFile);

    const pub = await loadPublicKey(`${base}.pub`);
    assert.equal((await verifyPath(dir, sigFile, pub)).valid, true);
    fs.writeFileSync(path.join(dir, `train.${format}`), header + next.join('\n') + '\n');
    const r = await verifyPath(dir, sigFile, pub);
    assert.equal(r.valid, false);
    assert.deepEqual(r.changes, [{ path: `train.${format}`, kind: 'modified', records: expected }]);
  });
}

test('records: a changed header or only new line endings are told apart from changed rows', async () => {
  const dir = writeTree(path.join(tmp, 'hdr'), { 'd.csv': 'a,b\n1,2\n3,4\n' });
  const base = path.join(tmp, 'key-hdr');
  await writeKeyPair('ed25519', base);
  const sigFile = path.join(tmp, 'hdr.sig');
  await writeSignature(await signPath(dir, await loadPrivateKey(`${base}.key`), { records: true }), sigFile);
  const pub = await loadPublicKey(`${base}.pub`);
  fs.writeFileSync(path.join(dir, 'd.csv'), 'a,b\r\n1,2\r\n3,4\r\n');
  assert.deepEqual((await verifyPath(dir, sigFile, pub)).changes, [{ path: 'd.csv', kind: 'modified', records: { changed: [], added: [], removed: [] } }]);
  fs.writeFileSync(path.join(dir, 'd.csv'), 'a,c\n1,2\n3,4\n');
  assert.deepEqual((await verifyPath(dir, sigFile, pub)).changes, [{ path: 'd.csv', kind: 'modified', records: { changed: [], added: [], removed: [], headerChanged: true } }]);
});

test('manifest records: one digest per data row, packed in the predicate extension', async () => {
  const dir = writeTree(path.join(tmp, 'pack'), { 'x.jsonl': '{"a":1}\n{"a":2}\n\n{"a":3}\n', 'y.bin': 'zz' });
  const m = await createManifest([dir], { records: true });
  const rec = m.predicate.bulwark?.records ?? [];
  assert.equal(rec.length, 1);
  assert.equal(rec[0].name, 'x.jsonl');
  assert.equal(rec[0].count, 3);
  assert.equal(rec[0].header, null);
  assert.equal(Buffer.from(rec[0].digests, 'base64').length, 3 * rec[0].digest_bytes);
  assert.equal(rec[0].merkle_root, merkleRoot(['{"a":1}', '{"a":2}', '{"a":3}'].map((s) => leafHash(Buffer.from(s)))));
  assert.equal((await createManifest([dir])).predicate.bulwark?.records.length, 0);
});
