import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { generateKeyPairSync, randomBytes, sign, verify } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { BulwarkError } from '../../src/core/index.js';
import {
  createCheckpoint,
  entryPayload,
  openLedger,
  openPostgresLedger,
  redactUrl,
  verifyLedger,
  GENESIS_HASH,
  type Signer,
  type Verifier,
} from '../../src/provenance/ledger/index.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const LEDGER_MODULE = path.join(ROOT, 'src/provenance/ledger/index.ts');
const URL = process.env.BULWARK_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** Null when the server answers, otherwise why not. */
async function probe(): Promise<string | null> {
  const client = new pg.Client({ connectionString: URL, connectionTimeoutMillis: 3000 });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT 1');
    return null;
  } catch (e) {
    return (e as Error).message || String(e);
  } finally {
    await client.end().catch(() => {});
  }
}
const unreachable = await probe();

async function sql(text: string): Promise<void> {
  const client = new pg.Client(URL);
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

/** A fresh schema for this test, dropped after it; null (and the test skipped) without a server. */
function freshSchema(t: TestContext): string | null {
  if (unreachable) {
    t.skip(`PostgreSQL not reachable at ${redactUrl(URL)}: ${unreachable}`);
    return null;
  }
  const schema = `bulwark_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  t.after(() => sql(`DROP SCHEMA IF EXISTS ${schema} CASCADE`));
  return schema;
}

function keyPair(): { signer: Signer; verifier: Verifier } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    signer: { alg: 'ed25519', sign: (d) => sign(null, d, privateKey) },
    verifier: { alg: 'ed25519', verify: (d, s) => verify(null, d, publicKey, s) },
  };
}

async function rejectsWith(p: Promise<unknown>, code: string, mention: string): Promise<BulwarkError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof BulwarkError, `expected a BulwarkError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.ok(e.message.includes(mention), `message should mention ${mention}: ${e.message}`);
    return e;
  }
  assert.fail('expected a rejection');
}

async function verifySchema(schema: string, verifier?: Verifier) {
  const store = await openPostgresLedger(URL, { schema, readonly: true });
  try {
    return await verifyLedger(store, verifier ? { verifier } : {});
  } finally {
    await store.close();
  }
}

test('entries round-trip through a PostgreSQL ledger and the chain verifies', async (t) => {
  const schema = freshSchema(t);
  if (!schema) return;
  await rejectsWith(openPostgresLedger(URL, { schema, readonly: true }), 'E_FILE_NOT_FOUND', `${schema}.bulwark_ledger_*`);
  const store = await openLedger(URL, { schema, actor: 'gateway' });
  const first = await store.append({ kind: 'request', payload: { route: '/infer', status: 200 } });
  assert.deepEqual([first.seq, first.prevHash, first.actor], [1, GENESIS_HASH, 'gateway']);
  const many = await store.appendMany([{ kind: 'a', payload: null }, { kind: 'b', payload: [1, 'two'] }]);
  assert.deepEqual(many.map((e) => e.seq), [2, 3]);
  const together = await Promise.all([0, 1, 2].map((i) => store.append({ kind: 'c', payload: { i } })));
  assert.deepEqual(together.map((e) => e.seq), [4, 5, 6]);
  const { signer, verifier } = keyPair();
  const cp = await createCheckpoint(store, signer);
  assert.deepEqual([cp.n, cp.seq, cp.hash], [1, 6, together[2].hash]);
  await store.close();

  const reader = await openPostgresLedger(URL, { schema, readonly: true });
  const all = await reader.read(1, 100);
  assert.deepEqual(all.map((e) => e.seq), [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(entryPayload(all[2]), [1, 'two']);
  assert.deepEqual(await reader.head(), all[5]);
  assert.deepEqual(await reader.checkpoints(), [cp]);
  const res = await verifyLedger(reader, { verifier });
  assert.deepEqual(res, { valid: true, entries: 6, head: { seq: 6, hash: all[5].hash }, checkpoints: 1, signaturesChecked: true, unanchored: 0 });
  await reader.close();
});

/** 40 entries with a checkpoint at 30, in a fresh schema. */
async function tamperFixture(t: TestContext) {
  const schema = freshSchema(t);
  if (!schema) return null;
  const keys = keyPair();
  const store = await openPostgresLedger(URL, { schema });
  const batch = (from: number, n: number) => Array.from({ length: n }, (_, i) => ({ kind: 'test', payload: { i: from + i } }));
  await store.appendMany(batch(1, 30));
  await createCheckpoint(store, keys.signer);
  await store.appendMany(batch(31, 10));
  await store.close();
  assert.equal((await verifySchema(schema, keys.verifier)).valid, true);
  return { schema, entries: `${schema}.bulwark_ledger_entries`, ...keys };
}

test('PostgreSQL tampering is detected and named: edited', async (t) => {
  const f = await tamperFixture(t);
  if (!f) return;
  await sql(`UPDATE ${f.entries} SET payload = '{"i":500}' WHERE seq = 5`);
  const res = await verifySchema(f.schema, f.verifier);
  assert.deepEqual([res.valid, res.firstBad?.seq, res.firstBad?.reason], [false, 5, 'edited']);
});

test('PostgreSQL tampering is detected and named: removed', async (t) => {
  const f = await tamperFixture(t);
  if (!f) return;
  await sql(`DELETE FROM ${f.entries} WHERE seq = 17`);
  const res = await verifySchema(f.schema, f.verifier);
  assert.deepEqual([res.firstBad?.seq, res.firstBad?.reason], [17, 'removed']);
});

test('PostgreSQL tampering is detected and named: reordered', async (t) => {
  const f = await tamperFixture(t);
  if (!f) return;
  await sql(`UPDATE ${f.entries} SET seq = 100000 WHERE seq = 8; UPDATE ${f.entries} SET seq = 8 WHERE seq = 9; UPDATE ${f.entries} SET seq = 9 WHERE seq = 100000`);
  const res = await verifySchema(f.schema, f.verifier);
  assert.deepEqual([res.firstBad?.seq, res.firstBad?.reason], [8, 'reordered']);
});

test('PostgreSQL tampering is detected and named: truncated after a checkpoint', async (t) => {
  const f = await tamperFixture(t);
  if (!f) return;
  await sql(`DELETE FROM ${f.entries} WHERE seq > 20`);
  const res = await verifySchema(f.schema, f.verifier);
  assert.deepEqual([res.firstBad?.seq, res.firstBad?.reason], [21, 'truncated']);
  assert.match(res.firstBad?.message ?? '', /checkpoint 1 .* covers seq 30/);
});

test('PostgreSQL tampering is detected and named: bad signature', async (t) => {
  const f = await tamperFixture(t);
  if (!f) return;
  const store = await openPostgresLedger(URL, { schema: f.schema });
  await createCheckpoint(store, keyPair().signer);
  await store.close();
  const res = await verifySchema(f.schema, f.verifier);
  assert.deepEqual([res.firstBad?.seq, res.firstBad?.reason], [40, 'bad-signature']);
});

test('four processes appending to one PostgreSQL ledger at once form one unbroken chain', async (t) => {
  const schema = freshSchema(t);
  if (!schema) return;
  const code = `
    import { openLedger } from ${JSON.stringify(LEDGER_MODULE)};
    const { LEDGER_SPEC, LEDGER_SCHEMA, CHILD_ID } = process.env;
    const store = await openLedger(LEDGER_SPEC, { schema: LEDGER_SCHEMA });
    process.stdout.write('ready\\n');
    await new Promise((r) => process.stdin.once('data', r));
    process.stdin.destroy();
    for (let i = 0; i < 200; i++) await store.append({ kind: 'test', actor: 'child-' + CHILD_ID, payload: { i } });
    await store.close();
  `;
  const kids = [1, 2, 3, 4].map((id) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
      cwd: ROOT,
      env: { ...process.env, LEDGER_SPEC: URL, LEDGER_SCHEMA: schema, CHILD_ID: String(id) },
    });
    let out = '';
    let err = '';
    proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const ready = new Promise<void>((resolve, reject) => {
      proc.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('ready')) resolve();
      });
      proc.on('exit', (c) => reject(new Error(`child ${id} exited (${c}) before it was ready: ${err}`)));
    });
    const exited = new Promise<number | null>((resolve) => proc.on('exit', resolve));
    return { proc, ready, exited, err: () => err };
  });
  await Promise.all(kids.map((k) => k.ready));
  for (const k of kids) k.proc.stdin.write('go\n');
  assert.deepEqual(await Promise.all(kids.map((k) => k.exited)), [0, 0, 0, 0], kids.map((k) => k.err()).join('\n'));

  const store = await openPostgresLedger(URL, { schema, readonly: true });
  const res = await verifyLedger(store);
  assert.equal(res.valid, true, res.firstBad?.message);
  assert.equal(res.entries, 800);
  const all = await store.read(1, 1000);
  assert.deepEqual(all.map((e) => e.seq), Array.from({ length: 800 }, (_, i) => i + 1));
  for (const id of [1, 2, 3, 4]) {
    const mine = all.filter((e) => e.actor === `child-${id}`).map((e) => (entryPayload(e) as { i: number }).i);
    assert.deepEqual(mine, Array.from({ length: 200 }, (_, i) => i));
  }
  const switches = all.filter((e, i) => i > 0 && e.actor !== all[i - 1].actor).length;
  assert.ok(switches >= 10, `the writers really interleaved (${switches} changes of writer along the chain)`);
  await store.close();
});

test('PostgreSQL tables that are not a ledger are refused with a clear error', async (t) => {
  const schema = freshSchema(t);
  if (!schema) return;
  await sql(`CREATE SCHEMA ${schema}; CREATE TABLE ${schema}.bulwark_ledger_entries (x int)`);
  const err = await rejectsWith(openPostgresLedger(URL, { schema }), 'E_DATA_PARSE', `${schema}.bulwark_ledger_entries`);
  assert.match(err.message, /not a bulwark ledger/);
  await sql(`CREATE TABLE ${schema}.other_meta (key text, value text); INSERT INTO ${schema}.other_meta VALUES ('format', 'something-else')`);
  await rejectsWith(openPostgresLedger(URL, { schema, prefix: 'other' }), 'E_DATA_PARSE', "format 'something-else'");
  await rejectsWith(openPostgresLedger(URL, { schema, prefix: 'Bad-Name' }), 'E_USAGE', 'prefix');
});

test('an unreachable server gives E_REMOTE without leaking the password', async () => {
  const err = await rejectsWith(openPostgresLedger('postgres://u:hunter2@127.0.0.1:1/none'), 'E_REMOTE', '127.0.0.1:1');
  assert.ok(!err.message.includes('hunter2'), err.message);
});
