import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import path from 'node:path';
import Database from 'better-sqlite3';
import { SqliteGatewayStore } from '../../src/gateway/index.js';
import { WalChangeWatch } from '../../src/gateway/store/wal-watch.js';
import { removeDir, tempDir } from './helpers.js';

const dir = tempDir('gw-key-cache');
after(() => removeDir(dir));

test('a cached key record follows every commit another connection makes, across WAL restarts', async () => {
  const file = path.join(dir, 'toggle.db');
  const server = SqliteGatewayStore.open(file);
  const other = SqliteGatewayStore.open(file);
  // A raw connection, to restart the WAL the way a checkpoint by any process does.
  const raw = new Database(file);
  try {
    const { record } = await server.createKey({ name: 'k', scopes: ['infer'], tier: 'free' });
    for (let i = 0; i < 200; i++) {
      // Every state change is small and alike, so after a WAL restart the log is rewritten at the
      // same offsets with the same size: a check on file size or time could miss it.
      if (i % 2 === 0) await other.restrictKey(record.id, { suspended: true, by: 'test', reason: `round ${i}`, since: new Date().toISOString() });
      else await other.restoreKey(record.id);
      const seen = await server.getKey(record.id);
      assert.equal(seen?.restriction?.suspended ?? false, i % 2 === 0, `round ${i}: the serving handle sees the other's commit`);
      if (i % 2 === 0) assert.equal(seen?.restriction?.reason, `round ${i}`);
      if (i % 25 === 24) raw.pragma('wal_checkpoint(TRUNCATE)');
    }
    await other.revokeKey(record.id);
    assert.ok((await server.getKey(record.id))?.revokedAt, 'a revocation by another connection is seen at the next lookup');
    // Its own writes too.
    const fresh = await server.createKey({ name: 'k2', scopes: ['infer'], tier: 'free' });
    assert.equal(await other.getKey('ffffffffffffffff'), null);
    assert.equal((await other.getKey(fresh.record.id))?.name, 'k2');
  } finally {
    raw.close();
    await server.close();
    await other.close();
  }
});

test('cached records are frozen, so no request can change what the next one reads', async () => {
  const store = SqliteGatewayStore.open(path.join(dir, 'frozen.db'));
  try {
    const { record } = await store.createKey({ name: 'k', scopes: ['infer'], tier: 'free' });
    const a = await store.getKey(record.id);
    assert.ok(a && Object.isFrozen(a) && Object.isFrozen(a.scopes));
    assert.throws(() => (a.scopes as string[]).push('admin'), TypeError);
    assert.deepEqual((await store.getKey(record.id))?.scopes, ['infer']);
  } finally {
    await store.close();
  }
});

test('the WAL watch reports a change for each commit and none without one', () => {
  const file = path.join(dir, 'watch.db');
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE t (x)');
  const watch = WalChangeWatch.open(file);
  assert.ok(watch, 'a WAL database has a wal-index to read');
  try {
    assert.equal(watch.changed(), true, 'the first look counts as a change');
    assert.equal(watch.changed(), false);
    db.prepare('INSERT INTO t VALUES (1)').run();
    assert.equal(watch.changed(), true);
    assert.equal(watch.changed(), false);
    db.prepare('SELECT * FROM t').all();
    assert.equal(watch.changed(), false, 'reads change nothing');
  } finally {
    watch.close();
    db.close();
  }
  assert.equal(WalChangeWatch.open(path.join(dir, 'absent.db')), null, 'no wal-index, no watch');
});
