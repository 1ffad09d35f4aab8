import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { bulwark, tempDir } from './helpers.js';

const dir = tempDir('prov');
const at = (...p: string[]) => path.join(dir, ...p);
const fixtures = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../shared/fixtures/model-signing');

test('keys, sign and verify: valid, then every change named down to the CSV row', async () => {
  for (const alg of ['ed25519', 'ml-dsa-65']) {
    const r = await bulwark(['keys', 'generate', '--alg', alg, '--out', at(alg)]);
    assert.equal(r.code, 0, r.stderr);
  }
  const again = await bulwark(['keys', 'generate', '--out', at('ed25519')]);
  assert.equal(again.code, 2, 'never overwrites a key');

  mkdirSync(at('model'));
  const rows = ['id,x,label', ...Array.from({ length: 500 }, (_, i) => `${i},${(i * 7) % 13},${i % 2}`)];
  writeFileSync(at('model', 'data.csv'), rows.join('\n') + '\n');
  writeFileSync(at('model', 'weights.bin'), Buffer.alloc(1000, 7));
  writeFileSync(at('model', 'notes.txt'), 'v1\n');

  const signed = await bulwark(['sign', at('model'), '--key', at('ml-dsa-65.key'), '--out', at('model.sig'), '--records']);
  assert.equal(signed.code, 0, signed.stderr);
  const ok = await bulwark(['verify', at('model'), '--sig', at('model.sig'), '--pub', at('ml-dsa-65.pub'), '--json']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(JSON.parse(ok.stdout).valid, true);

  // Change data row 10 (line 11), delete row 300, add a file, remove one.
  const edited = [...rows];
  edited[10] = '9,999,1';
  edited.splice(300, 1);
  writeFileSync(at('model', 'data.csv'), edited.join('\n') + '\n');
  writeFileSync(at('model', 'extra.txt'), 'new\n');
  const { rmSync } = await import('node:fs');
  rmSync(at('model', 'notes.txt'));

  const bad = await bulwark(['verify', at('model'), '--sig', at('model.sig'), '--pub', at('ml-dsa-65.pub'), '--json']);
  assert.equal(bad.code, 1, bad.stderr);
  const result = JSON.parse(bad.stdout);
  assert.equal(result.valid, false);
  const byPath = Object.fromEntries(result.changes.map((c: { path: string }) => [c.path, c]));
  assert.equal(byPath['extra.txt'].kind, 'added');
  assert.equal(byPath['notes.txt'].kind, 'removed');
  assert.equal(byPath['data.csv'].kind, 'modified');
  assert.deepEqual(byPath['data.csv'].records, { changed: [10], added: [], removed: [300] });

  const human = await bulwark(['verify', at('model'), '--sig', at('model.sig'), '--pub', at('ml-dsa-65.pub')]);
  assert.equal(human.code, 1);
  assert.match(human.stdout, /modified data\.csv: rows changed 10; rows removed 300/);

  const otherKey = await bulwark(['verify', at('model'), '--sig', at('model.sig'), '--pub', at('ed25519.pub')]);
  assert.equal(otherKey.code, 1);
  assert.match(otherKey.stdout, /INVALID: .*key/);

  writeFileSync(at('broken.sig'), '{"mediaType": ');
  const malformed = await bulwark(['verify', at('model'), '--sig', at('broken.sig'), '--pub', at('ed25519.pub')]);
  assert.equal(malformed.code, 2);
  assert.match(malformed.stderr, /broken\.sig is not valid JSON/);

  const privateAsPublic = await bulwark(['verify', at('model'), '--sig', at('model.sig'), '--pub', at('ed25519.key')]);
  assert.equal(privateAsPublic.code, 2);
});

test("the OpenSSF model_signing tool's published signatures verify, and fail after a one-byte change", async (t) => {
  if (!existsSync(fixtures)) {
    t.skip(`OpenSSF test vectors not found at ${fixtures}`);
    return;
  }
  for (const vector of ['v1.0.1-elliptic-key', 'v1.1.0-elliptic-key']) {
    const src = path.join(fixtures, vector);
    const args = ['verify', src, '--sig', path.join(src, 'model.sig'), '--pub', path.join(fixtures, 'signing-key-pub.pem'), '--ignore', 'ignore-me'];
    const r = await bulwark(args);
    assert.equal(r.code, 0, `${vector}: ${r.stdout} ${r.stderr}`);
    // A copy with one byte changed in signme-1 fails, naming the file.
    const copy = at(`copy-${vector}`);
    mkdirSync(copy);
    for (const f of ['signme-1', 'signme-2', 'ignore-me']) writeFileSync(path.join(copy, f), readFileSync(path.join(src, f)));
    const bytes = readFileSync(path.join(copy, 'signme-1'));
    bytes[0] ^= 1;
    writeFileSync(path.join(copy, 'signme-1'), bytes);
    const tampered = await bulwark(['verify', copy, '--sig', path.join(src, 'model.sig'), '--pub', path.join(fixtures, 'signing-key-pub.pem'), '--ignore', 'ignore-me', '--json']);
    assert.equal(tampered.code, 1, `${vector} tampered: ${tampered.stderr}`);
    const res = JSON.parse(tampered.stdout);
    assert.ok(res.changes.some((c: { path: string; kind: string }) => c.path === 'signme-1' && c.kind === 'modified'), tampered.stdout);
  }
});

test('manifest create and verify', async () => {
  mkdirSync(at('tree', '.git'), { recursive: true });
  writeFileSync(at('tree', 'b.txt'), 'b');
  writeFileSync(at('tree', 'a.txt'), 'a');
  writeFileSync(at('tree', '.git', 'HEAD'), 'ref');
  const made = await bulwark(['manifest', 'create', at('tree'), '--out', at('tree.json'), '--json']);
  assert.equal(made.code, 0, made.stderr);
  const m = JSON.parse(readFileSync(at('tree.json'), 'utf8'));
  assert.equal(m._type, 'https://in-toto.io/Statement/v1');
  assert.deepEqual(m.predicate.resources.map((r: { name: string }) => r.name), ['a.txt', 'b.txt']);
  assert.equal((await bulwark(['manifest', 'verify', at('tree'), '--manifest', at('tree.json')])).code, 0);
  writeFileSync(at('tree', 'a.txt'), 'A');
  const changed = await bulwark(['manifest', 'verify', at('tree'), '--manifest', at('tree.json')]);
  assert.equal(changed.code, 1);
  assert.match(changed.stdout, /modified a\.txt/);
  writeFileSync(at('hand-edited.json'), readFileSync(at('tree.json'), 'utf8').slice(0, 40));
  const invalid = await bulwark(['manifest', 'verify', at('tree'), '--manifest', at('hand-edited.json')]);
  assert.equal(invalid.code, 2);
  assert.match(invalid.stderr, /hand-edited\.json/);
});

test('ledger: append, checkpoint, verify; an edited entry and a truncated tail are named', async () => {
  const ledger = at('audit.db');
  for (let i = 1; i <= 5; i++) {
    const r = await bulwark(['ledger', 'append', '--ledger', ledger, '--kind', 'dataset.added', '--payload', JSON.stringify({ file: `part-${i}.csv` })]);
    assert.equal(r.code, 0, r.stderr);
  }
  assert.equal((await bulwark(['ledger', 'checkpoint', '--ledger', ledger, '--key', at('ed25519.key')])).code, 0);
  const good = await bulwark(['ledger', 'verify', '--ledger', ledger, '--pub', at('ed25519.pub'), '--json']);
  assert.equal(good.code, 0, good.stderr);
  assert.equal(JSON.parse(good.stdout).entries, 5);

  const db = new Database(ledger);
  const table = (db.prepare("select name from sqlite_master where type='table' and name like '%entries%'").get() as { name: string }).name;
  const cols = db.prepare(`pragma table_info(${table})`).all() as { name: string }[];
  const payloadCol = cols.find((c) => /payload/.test(c.name) && !/digest/.test(c.name))!.name;
  db.prepare(`update ${table} set ${payloadCol} = ? where seq = 3`).run('{"file":"evil.csv"}');
  db.close();
  const edited = await bulwark(['ledger', 'verify', '--ledger', ledger, '--json']);
  assert.equal(edited.code, 1);
  const e = JSON.parse(edited.stdout);
  assert.equal(e.firstBad.seq, 3);
  assert.equal(e.firstBad.reason, 'edited');

  const ledger2 = at('second.db');
  for (let i = 1; i <= 4; i++) await bulwark(['ledger', 'append', '--ledger', ledger2, '--kind', 'k', '--payload', `{"i":${i}}`]);
  await bulwark(['ledger', 'checkpoint', '--ledger', ledger2, '--key', at('ed25519.key')]);
  const db2 = new Database(ledger2);
  db2.prepare(`delete from ${table} where seq >= 3`).run();
  db2.close();
  const truncated = await bulwark(['ledger', 'verify', '--ledger', ledger2, '--pub', at('ed25519.pub')]);
  assert.equal(truncated.code, 1);
  assert.match(truncated.stdout, /INVALID at #3 \(truncated\)/);

  const notLedger = await bulwark(['ledger', 'verify', '--ledger', at('ed25519.pub')]);
  assert.equal(notLedger.code, 2);
  assert.match(notLedger.stderr, /not a bulwark ledger/);
  const badJson = await bulwark(['ledger', 'append', '--ledger', ledger2, '--kind', 'k', '--payload', '{oops']);
  assert.equal(badJson.code, 2);
  assert.match(badJson.stderr, /not valid JSON/);
});
