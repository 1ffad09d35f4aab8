import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { generateKeyPairSync, randomBytes, sign, verify } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { BulwarkError } from '../../src/core/index.js';
import {
  canonicalJson,
  createCheckpoint,
  entryHash,
  entryHashInput,
  entryPayload,
  openLedger,
  openSqliteLedger,
  readPayloadArg,
  sha256Hex,
  verifyLedger,
  GENESIS_HASH,
  type LedgerStore,
  type Signer,
  type Verifier,
} from '../../src/provenance/ledger/index.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const LEDGER_MODULE = path.join(ROOT, 'src/provenance/ledger/index.ts');

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'bulwark-ledger-'));
}

function keyPair(): { signer: Signer; verifier: Verifier } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    signer: { alg: 'ed25519', sign: (d) => sign(null, d, privateKey) },
    verifier: { alg: 'ed25519', verify: (d, s) => verify(null, d, publicKey, s) },
  };
}

async function fill(store: LedgerStore, n: number): Promise<void> {
  const from = ((await store.head())?.seq ?? 0) + 1;
  await store.appendMany(Array.from({ length: n }, (_, i) => ({ kind: 'test', actor: 'tester', payload: { i: from + i, note: `entry ${from + i}` } })));
}

/** Edits the ledger file behind the library's back, as an attacker with file access would. */
function tamper(file: string, sql: string): void {
  const db = new Database(file);
  db.exec(sql);
  db.close();
}

async function verifyFile(file: string, verifier?: Verifier) {
  const store = await openSqliteLedger(file, { readonly: true });
  try {
    return await verifyLedger(store, verifier ? { verifier } : {});
  } finally {
    await store.close();
  }
}

async function rejectsWith(p: Promise<unknown>, code: string, mention: string | RegExp): Promise<BulwarkError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof BulwarkError, `expected a BulwarkError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (typeof mention === 'string') assert.ok(e.message.includes(mention), `message should mention ${mention}: ${e.message}`);
    else assert.match(e.message, mention);
    return e;
  }
  assert.fail('expected a rejection');
}

test('the encoding is canonical JSON and pinned', () => {
  assert.equal(canonicalJson({ b: [1, 2.5, -0, 'é\n'], a: { z: null, y: true } }), '{"a":{"y":true,"z":null},"b":[1,2.5,0,"é\\n"]}');
  const e = { seq: 7, time: '2025-01-02T03:04:05.678Z', actor: 'alice@host', kind: 'model.push', payloadDigest: sha256Hex('{"a":1}'), prevHash: GENESIS_HASH };
  assert.equal(entryHashInput(e), canonicalJson(e));
  // A change to this value is a change of ledger format: old ledgers would stop verifying.
  assert.equal(entryHash(e), sha256Hex(canonicalJson(e)));
  assert.equal(entryHash(e), '4979c075b8968e560f1b4a064259f71e1f99bd3fdede2a68d7ee908b98711fb8');
  assert.throws(() => canonicalJson({ x: Number.NaN }), (err: unknown) => err instanceof BulwarkError && err.code === 'E_DATA_VALUE' && err.message.includes('$.x'));
  assert.throws(() => canonicalJson({ d: new Date(0) }), (err: unknown) => err instanceof BulwarkError && err.code === 'E_DATA_VALUE');
  // Deep inside, the error still names the place.
  assert.throws(() => canonicalJson({ a: [1, { b: undefined }] }), (err: unknown) => err instanceof BulwarkError && err.message.includes('$.a[1].b is undefined'));
  // A sparse array has no JSON form either.
  assert.throws(() => canonicalJson({ a: [1, , 3] }), (err: unknown) => err instanceof BulwarkError && err.message.includes('$.a[1] is undefined'));
  // Key order is by UTF-16 code units (RFC 8785), at every depth.
  assert.equal(canonicalJson([{ b: 1, B: 2, á: 3, a: [{ y: 1, x: 2 }] }]), '[{"B":2,"a":[{"x":2,"y":1}],"b":1,"á":3}]');
});

test('entries round-trip through a SQLite ledger and the chain verifies', async (t) => {
  const dir = tempDir();
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'audit.ledger');
  const store = await openLedger(file, { actor: 'svc' });
  const first = await store.append({ kind: 'model.push', payload: { model: 'm1', sha256: 'ab'.repeat(32) } });
  assert.equal(first.seq, 1);
  assert.equal(first.prevHash, GENESIS_HASH);
  assert.equal(first.actor, 'svc');
  assert.equal(first.payloadDigest, sha256Hex(first.payloadJson));
  const many = await store.appendMany([
    { kind: 'a', payload: null, actor: 'bob' },
    { kind: 'b', payload: [1, 'two', { three: 3 }] },
  ]);
  assert.deepEqual(many.map((e) => e.seq), [2, 3]);
  assert.equal(many[0].prevHash, first.hash);
  // Appends issued together share one transaction but each gets its own entry, in call order.
  const together = await Promise.all([0, 1, 2, 3].map((i) => store.append({ kind: 'c', payload: { i } })));
  assert.deepEqual(together.map((e) => e.seq), [4, 5, 6, 7]);
  assert.deepEqual(together.map((e) => entryPayload(e)), [{ i: 0 }, { i: 1 }, { i: 2 }, { i: 3 }]);
  // A bad draft fails its own call only.
  await rejectsWith(store.append({ kind: '', payload: 1 }), 'E_USAGE', 'kind');
  await rejectsWith(store.append({ kind: 'x', payload: { n: Infinity } }), 'E_DATA_VALUE', '$.n');
  await store.close();

  const reader = await openSqliteLedger(file, { readonly: true });
  const all = await reader.read(1, 100);
  assert.deepEqual(all.map((e) => e.seq), [1, 2, 3, 4, 5, 6, 7]);
  assert.deepEqual(entryPayload(all[2]), [1, 'two', { three: 3 }]);
  assert.equal(all[1].actor, 'bob');
  assert.deepEqual(await reader.head(), all[6]);
  for (let i = 1; i < all.length; i++) assert.ok(all[i].time >= all[i - 1].time, 'time never runs backwards');
  const res = await verifyLedger(reader);
  assert.deepEqual(res, { valid: true, entries: 7, head: { seq: 7, hash: all[6].hash }, checkpoints: 0, signaturesChecked: false, unanchored: 7 });
  await rejectsWith(reader.append({ kind: 'x', payload: 1 }), 'E_USAGE', 'read-only');
  await reader.close();
});

test('checkpoints sign the head and anchor the chain', async (t) => {
  const dir = tempDir();
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'l.db');
  const { signer, verifier } = keyPair();
  const store = await openSqliteLedger(file);
  await rejectsWith(createCheckpoint(store, signer), 'E_USAGE', 'empty');
  await fill(store, 10);
  const cp = await createCheckpoint(store, signer);
  assert.equal(cp.n, 1);
  assert.equal(cp.seq, 10);
  assert.equal(cp.hash, (await store.head())?.hash);
  await fill(store, 5);
  await store.close();
  const res = await verifyFile(file, verifier);
  assert.equal(res.valid, true);
  assert.equal(res.checkpoints, 1);
  assert.equal(res.signaturesChecked, true);
  assert.equal(res.unanchored, 5);
});

/** A ledger of 40 entries with a checkpoint at 30; returns the file and the keys. */
async function tamperFixture(t: { after: (f: () => void) => void }) {
  const dir = tempDir();
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'l.db');
  const keys = keyPair();
  const store = await openSqliteLedger(file);
  await fill(store, 30);
  await createCheckpoint(store, keys.signer);
  await fill(store, 10);
  await store.close();
  assert.equal((await verifyFile(file, keys.verifier)).valid, true);
  return { file, ...keys };
}

test('tampering is detected and named: edited payload', async (t) => {
  const { file, verifier } = await tamperFixture(t);
  tamper(file, `UPDATE ledger_entries SET payload = '{"i":5,"note":"nothing to see"}' WHERE seq = 5`);
  const res = await verifyFile(file, verifier);
  assert.equal(res.valid, false);
  assert.equal(res.firstBad?.seq, 5);
  assert.equal(res.firstBad?.reason, 'edited');
  assert.match(res.firstBad?.message ?? '', /entry 5 .*payload/);
  assert.equal(res.entries, 4);
});

test('tampering is detected and named: edited field, and a rewrite re-hashed up to the head', async (t) => {
  const { file, verifier } = await tamperFixture(t);
  tamper(file, `UPDATE ledger_entries SET actor = 'mallory' WHERE seq = 12`);
  let res = await verifyFile(file, verifier);
  assert.deepEqual([res.firstBad?.seq, res.firstBad?.reason], [12, 'edited']);

  // An attacker who recomputes every hash after the edit gets a consistent chain, but not the checkpoint.
  const db = new Database(file);
  const rows = db.prepare('SELECT seq, time, actor, kind, payload_digest AS payloadDigest, prev_hash AS prevHash, hash FROM ledger_entries ORDER BY seq').all() as {
    seq: number; time: string; actor: string; kind: string; payloadDigest: string; prevHash: string; hash: string;
  }[];
  const update = db.prepare('UPDATE ledger_entries SET prev_hash = ?, hash = ? WHERE seq = ?');
  let prev = GENESIS_HASH;
  for (const r of rows) {
    const hash = entryHash({ ...r, prevHash: prev });
    update.run(prev, hash, r.seq);
    prev = hash;
  }
  db.close();
  res = await verifyFile(file, verifier);
  assert.equal(res.firstBad?.reason, 'edited');
  assert.equal(res.firstBad?.seq, 30);
  assert.match(res.firstBad?.message ?? '', /checkpoint 1.*seq 1\.\.30/);
});

test('tampering is detected and named: removed entry', async (t) => {
  const { file, verifier } = await tamperFixture(t);
  tamper(file, 'DELETE FROM ledger_entries WHERE seq = 17');
  const res = await verifyFile(file, verifier);
  assert.deepEqual([res.firstBad?.seq, res.firstBad?.reason], [17, 'removed']);
  assert.match(res.firstBad?.message ?? '', /jumps from seq 16 to seq 18/);
});

test('tampering is detected and named: removed entry with the rest renumbered', async (t) => {
  const { file } = await tamperFixture(t);
  tamper(file, 'DELETE FROM ledger_entries WHERE seq = 17; UPDATE ledger_entries SET seq = seq - 1 WHERE seq > 17');
  const res = await verifyFile(file);
  assert.deepEqual([res.firstBad?.seq, res.firstBad?.reason], [17, 'removed']);
  assert.match(res.firstBad?.message ?? '', /written as seq 18/);
});

test('tampering is detected and named: reordered entries', async (t) => {
  const { file, verifier } = await tamperFixture(t);
  tamper(file, 'UPDATE ledger_entries SET seq = 1000 WHERE seq = 8; UPDATE ledger_entries SET seq = 8 WHERE seq = 9; UPDATE ledger_entries SET seq = 9 WHERE seq = 1000');
  const res = await verifyFile(file, verifier);
  assert.deepEqual([res.firstBad?.seq, res.firstBad?.reason], [8, 'reordered']);
  assert.match(res.firstBad?.message ?? '', /follow the entry now at seq 9/);
});

test('tampering is detected and named: truncated after a checkpoint', async (t) => {
  const { file, verifier } = await tamperFixture(t);
  tamper(file, 'DELETE FROM ledger_entries WHERE seq > 20');
  const res = await verifyFile(file, verifier);
  assert.deepEqual([res.firstBad?.seq, res.firstBad?.reason], [21, 'truncated']);
  assert.match(res.firstBad?.message ?? '', /ends at seq 20, but checkpoint 1 .* covers seq 30/);
  assert.equal(res.entries, 20);
});

test('a checkpoint kept outside the log still catches truncation when the stored ones are deleted too', async (t) => {
  const { file, verifier } = await tamperFixture(t);
  const store = await openSqliteLedger(file, { readonly: true });
  const kept = await store.checkpoints();
  await store.close();
  tamper(file, 'DELETE FROM ledger_entries WHERE seq > 20; DELETE FROM ledger_checkpoints');
  assert.equal((await verifyFile(file, verifier)).valid, true, 'undetectable from the file alone');
  const reader = await openSqliteLedger(file, { readonly: true });
  const res = await verifyLedger(reader, { verifier, trusted: kept });
  await reader.close();
  assert.deepEqual([res.firstBad?.seq, res.firstBad?.reason], [21, 'truncated']);
  assert.match(res.firstBad?.message ?? '', /trusted checkpoint 1/);
});

test('tampering is detected and named: a checkpoint signed by another key', async (t) => {
  const { file, verifier } = await tamperFixture(t);
  const store = await openSqliteLedger(file);
  await createCheckpoint(store, keyPair().signer);
  await store.close();
  const res = await verifyFile(file, verifier);
  assert.deepEqual([res.firstBad?.seq, res.firstBad?.reason], [40, 'bad-signature']);
  assert.match(res.firstBad?.message ?? '', /checkpoint 2 .*does not verify/);
  // Without a key the chain still holds; signatures are simply not checked.
  const unsigned = await verifyFile(file);
  assert.equal(unsigned.valid, true);
  assert.equal(unsigned.signaturesChecked, false);
  // A forged signature on a stored checkpoint is caught the same way.
  tamper(file, `UPDATE ledger_checkpoints SET signature = '${randomBytes(64).toString('base64')}' WHERE n = 1`);
  const forged = await verifyFile(file, verifier);
  assert.deepEqual([forged.firstBad?.seq, forged.firstBad?.reason], [30, 'bad-signature']);
});

test('a file that is not a ledger gives one clear error naming it, and is left untouched', async (t) => {
  const dir = tempDir();
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const random = path.join(dir, 'random.bin');
  fs.writeFileSync(random, randomBytes(4096));
  await rejectsWith(openSqliteLedger(random), 'E_DATA_PARSE', `${random} is not a bulwark ledger`);
  await rejectsWith(openLedger(random, { readonly: true }), 'E_DATA_PARSE', random);

  const other = path.join(dir, 'other.db');
  const db = new Database(other);
  db.exec("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO users (name) VALUES ('x')");
  db.close();
  const before = fs.readFileSync(other);
  const err = await rejectsWith(openSqliteLedger(other), 'E_DATA_PARSE', other);
  assert.match(err.message, /other tables \(users\)/);
  assert.deepEqual(fs.readFileSync(other), before);
  assert.equal(fs.existsSync(`${other}-wal`), false);

  await rejectsWith(openSqliteLedger(path.join(dir, 'missing.db'), { readonly: true }), 'E_FILE_NOT_FOUND', 'missing.db');
  assert.equal(fs.existsSync(path.join(dir, 'missing.db')), false);
  await rejectsWith(openSqliteLedger(dir), 'E_FILE_READ', 'is a directory');
});

test('payload arguments: JSON text, @file, and clear errors for bad JSON', async (t) => {
  const dir = tempDir();
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  assert.deepEqual(await readPayloadArg('{"a":[1,2]}'), { a: [1, 2] });
  const good = path.join(dir, 'p.json');
  fs.writeFileSync(good, '{"model":"m"}');
  assert.deepEqual(await readPayloadArg(`@${good}`), { model: 'm' });
  await rejectsWith(readPayloadArg('{a:1}'), 'E_USAGE', '--payload');
  const bad = path.join(dir, 'bad.json');
  fs.writeFileSync(bad, '{"model":');
  await rejectsWith(readPayloadArg(`@${bad}`), 'E_DATA_PARSE', bad);
  await rejectsWith(readPayloadArg(`@${path.join(dir, 'nope.json')}`), 'E_FILE_NOT_FOUND', 'nope.json');
});

/** Runs a child that opens the ledger, says "ready", waits for a line on stdin, then appends. */
const APPENDER = `
import { openLedger } from ${JSON.stringify(LEDGER_MODULE)};
const { LEDGER_SPEC, CHILD_ID, COUNT } = process.env;
const store = await openLedger(LEDGER_SPEC);
process.stdout.write('ready\\n');
await new Promise((r) => process.stdin.once('data', r));
process.stdin.destroy();
for (let i = 0; i < Number(COUNT); i++) {
  await store.append({ kind: 'test', actor: 'child-' + CHILD_ID, payload: { child: Number(CHILD_ID), i } });
  // Like real writers, pause between appends now and then; back-to-back appends from one
  // process would hold the lock in a run (SQLite's locking is not fair) and hide interleaving.
  if (i % 2 === 0) await new Promise((r) => setTimeout(r, Math.random() * 3));
}
await store.close();
`;

function child(code: string, env: Record<string, string>) {
  const proc = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (c) => resolve(c)));
  const waitFor = (text: string) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (out.includes(text)) resolve();
      };
      proc.stdout.on('data', check);
      check();
      void exited.then((c) => reject(new Error(`child exited (${c}) before '${text}': ${err}`)));
    });
  return { proc, exited, waitFor, stderr: () => err };
}

test('four processes appending to one file at once form one unbroken chain', async (t) => {
  const dir = tempDir();
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'shared.ledger');
  const kids = [1, 2, 3, 4].map((id) => child(APPENDER, { LEDGER_SPEC: file, CHILD_ID: String(id), COUNT: '200' }));
  await Promise.all(kids.map((k) => k.waitFor('ready')));
  for (const k of kids) k.proc.stdin.write('go\n');
  const codes = await Promise.all(kids.map((k) => k.exited));
  assert.deepEqual(codes, [0, 0, 0, 0], kids.map((k) => k.stderr()).join('\n'));

  const store = await openSqliteLedger(file, { readonly: true });
  const res = await verifyLedger(store);
  assert.equal(res.valid, true, res.firstBad?.message);
  assert.equal(res.entries, 800);
  const all = await store.read(1, 1000);
  assert.deepEqual(all.map((e) => e.seq), Array.from({ length: 800 }, (_, i) => i + 1));
  for (const id of [1, 2, 3, 4]) {
    const mine = all.filter((e) => e.actor === `child-${id}`).map((e) => (entryPayload(e) as { i: number }).i);
    assert.deepEqual(mine, Array.from({ length: 200 }, (_, i) => i), `child ${id}'s entries are all there, in its order`);
  }
  const switches = all.filter((e, i) => i > 0 && e.actor !== all[i - 1].actor).length;
  assert.ok(switches >= 10, `the writers really interleaved (${switches} changes of writer along the chain)`);
  await store.close();
});

test('an append is durable once it returns: SIGKILL right after does not lose it', async (t) => {
  const dir = tempDir();
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'durable.ledger');
  const code = `
    import { openLedger } from ${JSON.stringify(LEDGER_MODULE)};
    const store = await openLedger(process.env.LEDGER_SPEC);
    for (let i = 0; i < 20; i++) await store.append({ kind: 'warmup', payload: i });
    const e = await store.append({ kind: 'important', payload: { keep: true } });
    process.stdout.write('appended ' + e.seq + ' ' + e.hash + '\\n');
    setInterval(() => {}, 1000);
  `;
  const k = child(code, { LEDGER_SPEC: file });
  await k.waitFor('appended');
  k.proc.kill('SIGKILL');
  assert.equal(await k.exited, null);
  const store = await openSqliteLedger(file, { readonly: true });
  const head = await store.head();
  assert.equal(head?.seq, 21);
  assert.equal(head?.kind, 'important');
  assert.equal((await verifyLedger(store)).valid, true);
  await store.close();
});
