import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadPublicKey } from '../../src/provenance/keys.js';
import { verifyPath } from '../../src/provenance/verify.js';
import { copyWritable, flipByte, rejects, tempDir } from './signing-helpers.js';

// Published test vectors of the OpenSSF model_signing tool (key-signed, ECDSA P-384).
const here = path.dirname(fileURLToPath(import.meta.url));
const FIXTURES = path.resolve(here, '../../../shared/fixtures/model-signing');
const KEY = path.join(FIXTURES, 'signing-key-pub.pem');
const tmp = tempDir('openssf');

// v1.0.1 did not record ignore_paths in the predicate: like model_signing's own test, the
// verifier is told about ignore-me. v1.1.0 records it, so nothing needs saying.
const VECTORS = [
  { name: 'v1.0.1-elliptic-key', ignore: ['ignore-me'] },
  { name: 'v1.1.0-elliptic-key', ignore: [] },
];

let n = 0;
function copy(name: string): string {
  return copyWritable(path.join(FIXTURES, name), path.join(tmp, `${n++}`, name));
}

for (const v of VECTORS) {
  test(`${v.name}: the published signature verifies`, async () => {
    const pub = await loadPublicKey(KEY); // the file has a certtool preamble before the PEM block
    const dir = path.join(FIXTURES, v.name);
    const r = await verifyPath(dir, path.join(dir, 'model.sig'), pub, { ignore: v.ignore });
    assert.equal(r.valid, true, r.reason);
    assert.deepEqual(r.changes, []);
    assert.equal(r.subject?.name, v.name);
  });

  for (const file of ['signme-1', 'signme-2']) {
    for (const at of [0, 4, 100]) {
      test(`${v.name}: flipping byte ${at} of ${file} invalidates it and names the file`, async () => {
        const dir = copy(v.name);
        flipByte(path.join(dir, file), at);
        const r = await verifyPath(dir, path.join(dir, 'model.sig'), await loadPublicKey(KEY), { ignore: v.ignore });
        assert.equal(r.valid, false);
        assert.deepEqual(r.changes, [{ path: file, kind: 'modified' }]);
        assert.match(r.reason ?? '', /1 modified/);
      });
    }
  }

  test(`${v.name}: changing the ignored file does not invalidate`, async () => {
    const dir = copy(v.name);
    flipByte(path.join(dir, 'ignore-me'));
    fs.appendFileSync(path.join(dir, 'ignore-me'), 'more');
    const r = await verifyPath(dir, path.join(dir, 'model.sig'), await loadPublicKey(KEY), { ignore: v.ignore });
    assert.equal(r.valid, true, r.reason);
  });

  test(`${v.name}: an added file and a removed file are named`, async () => {
    const dir = copy(v.name);
    fs.writeFileSync(path.join(dir, 'extra.bin'), 'x');
    fs.mkdirSync(path.join(dir, 'sub'));
    fs.writeFileSync(path.join(dir, 'sub', 'more.bin'), 'y');
    fs.rmSync(path.join(dir, 'signme-2'));
    const r = await verifyPath(dir, path.join(dir, 'model.sig'), await loadPublicKey(KEY), { ignore: v.ignore });
    assert.equal(r.valid, false);
    assert.deepEqual(r.changes, [
      { path: 'extra.bin', kind: 'added' },
      { path: 'signme-2', kind: 'removed' },
      { path: 'sub/more.bin', kind: 'added' },
    ]);
  });

  test(`${v.name}: a one-byte change inside the envelope's payload or signature is refused`, async () => {
    const pub = await loadPublicKey(KEY);
    for (const field of ['payload', 'sig'] as const) {
      const dir = copy(v.name);
      const sigFile = path.join(dir, 'model.sig');
      const bundle = JSON.parse(fs.readFileSync(sigFile, 'utf8'));
      const env = bundle.dsseEnvelope;
      const s: string = field === 'payload' ? env.payload : env.signatures[0].sig;
      const i = 40;
      const tampered = s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
      if (field === 'payload') env.payload = tampered;
      else env.signatures[0].sig = tampered;
      fs.writeFileSync(sigFile, JSON.stringify(bundle));
      const r = await verifyPath(dir, sigFile, pub, { ignore: v.ignore });
      assert.equal(r.valid, false, field);
      assert.match(r.reason ?? '', /signature does not verify/);
    }
  });

  test(`${v.name}: a signature bundle that is not JSON is an input error`, async () => {
    const dir = copy(v.name);
    const sigFile = path.join(dir, 'model.sig');
    fs.writeFileSync(sigFile, fs.readFileSync(sigFile, 'utf8').slice(0, 100));
    await rejects(verifyPath(dir, sigFile, await loadPublicKey(KEY)), 'E_DATA_PARSE', /model\.sig is not valid JSON/);
  });
}

test('the v1.0.1 signature without its ignore list reports ignore-me as added', async () => {
  const dir = path.join(FIXTURES, 'v1.0.1-elliptic-key');
  const r = await verifyPath(dir, path.join(dir, 'model.sig'), await loadPublicKey(KEY));
  assert.equal(r.valid, false);
  assert.deepEqual(r.changes, [{ path: 'ignore-me', kind: 'added' }]);
});
