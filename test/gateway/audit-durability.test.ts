import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { SqliteGatewayStore } from '../../src/gateway/index.js';
import { entryPayload, iterateEntries, openSqliteLedger, verifyLedger } from '../../src/provenance/index.js';
import { call, firstRows, inferBody, removeDir, tempDir, trainDigitsModel, serveProcess, type ServeProcess } from './helpers.js';


const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/**
 * The audit log's promise under the default durability ('process': committed to the WAL before
 * the answer, no fsync): a server killed with SIGKILL mid-load has logged every request it
 * answered 2xx, the chain verifies, and the server starts again on the same files.
 */
test('kill -9 mid-load: every 2xx answer is in the audit log, the chain verifies, the server restarts', { timeout: 90_000 }, async () => {
  const dir = tempDir('gw-durable');
  const servers: ServeProcess[] = [];
  after(async () => {
    for (const s of servers) if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
    await Promise.all(servers.map((s) => s.exited));
    removeDir(dir);
  });
  const modelDir = path.join(dir, 'digits');
  const { test: testSet } = await trainDigitsModel(modelDir);
  const storeFile = path.join(dir, 'gateway.db');
  const store = SqliteGatewayStore.open(storeFile);
  const key = (await store.createKey({ name: 'load', scopes: ['infer'], tier: 'default' })).key;
  await store.close();
  const args = ['--model', modelDir, '--name', 'digits', '--allow-unsigned', '--store', storeFile];
  const victim = await serveProcess(args);
  servers.push(victim);

  const rows = firstRows(testSet.x, 50);
  const size = 784;
  const answered: string[] = [];
  let stop = false;
  let killedAt = 0;
  const workers = Array.from({ length: 16 }, async (_, w) => {
    for (let i = 0; !stop; i++) {
      const j = (w * 7 + i) % 50;
      const body = inferBody({ data: rows.data.slice(j * size, (j + 1) * size), shape: [1, 28, 28, 1] }, { id: `w${w}-${i}` });
      try {
        const r = await call(`${victim.url}/v2/models/digits/infer`, { key, body });
        if (r.status === 200) answered.push(sha256(r.text));
      } catch {
        return; // the connection died with the server
      }
    }
  });
  // Kill once the log is busy, so the kill lands between commits and answers.
  while (answered.length < 300) await new Promise((r) => setTimeout(r, 20));
  victim.child.kill('SIGKILL');
  killedAt = answered.length;
  await victim.exited;
  stop = true;
  await Promise.all(workers);
  assert.ok(killedAt >= 300);

  const auditFile = path.join(dir, 'gateway.audit.db');
  const check = async () => {
    const ledger = await openSqliteLedger(auditFile, { readonly: true });
    try {
      const verified = await verifyLedger(ledger);
      const logged = new Set<string>();
      for await (const e of iterateEntries(ledger)) {
        const p = entryPayload(e) as { status?: number; outputSha256?: string };
        if (p.status === 200 && p.outputSha256) logged.add(p.outputSha256);
      }
      return { verified, logged };
    } finally {
      await ledger.close();
    }
  };
  const { verified, logged } = await check();
  assert.equal(verified.valid, true, JSON.stringify(verified));
  const missing = answered.filter((h) => !logged.has(h));
  assert.equal(missing.length, 0, `${missing.length} of ${answered.length} answers that got 200 are not in the audit log`);

  // The killed server's files are usable as they are.
  const again = await serveProcess(args);
  servers.push(again);
  const r = await call(`${again.url}/v2/models/digits/infer`, { key, body: inferBody(firstRows(testSet.x, 1), { id: 'after-restart' }) });
  assert.equal(r.status, 200, r.text);
  again.child.kill('SIGTERM');
  await again.exited;
  const after2 = await check();
  assert.equal(after2.verified.valid, true);
  assert.ok(after2.logged.has(sha256(r.text)), 'the first answer after the restart is logged too');
});
