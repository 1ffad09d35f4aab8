import Database from 'better-sqlite3';
import { statSync } from 'node:fs';
import { BulwarkError } from '../../core/index.js';
import { newApiKey, type ApiKeyRecord, type KeyRestriction, type NewKey, type Scope } from '../keys.js';
import { DEFAULT_ALERT_LIMIT, MAX_ALERT_LIMIT, type Alert, type AlertDraft, type AlertQuery } from '../watch/alerts.js';
import type { GatewayStore, LiveVersion } from './types.js';
import { WalChangeWatch } from './wal-watch.js';

/** Key records held between commits to the store; past this many ids the cache starts over. */
const MAX_CACHED_KEYS = 10_000;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS gateway_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS gateway_keys (
  id TEXT PRIMARY KEY, name TEXT NOT NULL, scopes TEXT NOT NULL, tier TEXT NOT NULL,
  created_at TEXT NOT NULL, revoked_at TEXT, hash TEXT NOT NULL, restriction TEXT
);
CREATE TABLE IF NOT EXISTS gateway_alerts (
  id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS gateway_alerts_at ON gateway_alerts (at);
CREATE TABLE IF NOT EXISTS gateway_live (
  model TEXT PRIMARY KEY, version TEXT NOT NULL, history TEXT NOT NULL, changed_at TEXT NOT NULL
);
INSERT OR IGNORE INTO gateway_meta (key, value) VALUES ('format', 'bulwark-gateway'), ('version', '1');`;

interface KeyRow {
  id: string;
  name: string;
  scopes: string;
  tier: string;
  created_at: string;
  revoked_at: string | null;
  hash: string;
  restriction: string | null;
}

function toRecord(r: KeyRow): ApiKeyRecord {
  return {
    id: r.id,
    name: r.name,
    scopes: JSON.parse(r.scopes) as Scope[],
    tier: r.tier,
    createdAt: r.created_at,
    revokedAt: r.revoked_at,
    hash: r.hash,
    restriction: r.restriction ? (JSON.parse(r.restriction) as KeyRestriction) : null,
  };
}

function deepFreeze(record: ApiKeyRecord): ApiKeyRecord {
  Object.freeze(record.scopes);
  if (record.restriction?.throttle) Object.freeze(record.restriction.throttle);
  if (record.restriction) Object.freeze(record.restriction);
  return Object.freeze(record);
}

/** Stores made before keys could be restricted lack the column; adding it is all the migration there is. */
function migrate(db: Database.Database): void {
  const columns = (db.prepare('PRAGMA table_info(gateway_keys)').all() as { name: string }[]).map((c) => c.name);
  if (!columns.includes('restriction')) db.exec('ALTER TABLE gateway_keys ADD COLUMN restriction TEXT');
}

/**
 * The embedded store: a SQLite file in WAL mode. Reads never wait for writers, so the
 * per-request key lookup stays in the microseconds even while `bulwark keys` writes.
 * Key records are cached until the next commit to the file by any process (`bulwark keys
 * revoke`, another replica, this one), which the wal-index header tells without a read
 * transaction; a revocation therefore still takes effect at the next request.
 */
export class SqliteGatewayStore implements GatewayStore {
  readonly location: string;
  private readonly stmts;
  private readonly keyCache = new Map<string, ApiKeyRecord | null>();

  private constructor(
    private readonly db: Database.Database,
    file: string,
    private readonly changes: WalChangeWatch | null,
  ) {
    this.location = file;
    this.stmts = {
      insert: db.prepare('INSERT INTO gateway_keys (id, name, scopes, tier, created_at, revoked_at, hash) VALUES (?, ?, ?, ?, ?, NULL, ?)'),
      get: db.prepare('SELECT * FROM gateway_keys WHERE id = ?'),
      list: db.prepare('SELECT * FROM gateway_keys ORDER BY created_at, id'),
      revoke: db.prepare('UPDATE gateway_keys SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?'),
      getLive: db.prepare('SELECT version, history, changed_at FROM gateway_live WHERE model = ?'),
      // json_patch merges in one statement, so two replicas restricting at once both count.
      restrict: db.prepare("UPDATE gateway_keys SET restriction = json_patch(coalesce(restriction, '{}'), ?) WHERE id = ?"),
      restore: db.prepare('UPDATE gateway_keys SET restriction = NULL WHERE id = ?'),
      addAlert: db.prepare('INSERT INTO gateway_alerts (at, body) VALUES (?, ?)'),
      listAlerts: db.prepare('SELECT id, body FROM gateway_alerts WHERE at >= ? ORDER BY id DESC LIMIT ?'),
      setLive: db.prepare(
        'INSERT INTO gateway_live (model, version, history, changed_at) VALUES (?, ?, ?, ?) ON CONFLICT (model) DO UPDATE SET version = excluded.version, history = excluded.history, changed_at = excluded.changed_at',
      ),
    };
  }

  static open(file: string): SqliteGatewayStore {
    try {
      if (statSync(file, { throwIfNoEntry: false })?.isDirectory()) throw new BulwarkError('E_FILE_READ', `${file} is a directory; give the gateway store's file path`);
      // Waiting for a writer is rare (keys are created by hand), so SQLite's own busy wait is fine here.
      const db = new Database(file, { timeout: 5000 });
      const wal = String(db.pragma('journal_mode = WAL', { simple: true })).toLowerCase() === 'wal';
      const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((r) => r.name);
      if (tables.length > 0 && !tables.includes('gateway_meta')) {
        db.close();
        throw new BulwarkError('E_DATA_PARSE', `${file} is a SQLite database without the gateway's tables (it holds ${tables.slice(0, 4).join(', ')}); give another --store file`);
      }
      db.exec(SCHEMA);
      migrate(db);
      // Without WAL (a file system that cannot share memory, say) every lookup reads the file.
      return new SqliteGatewayStore(db, file, wal ? WalChangeWatch.open(file) : null);
    } catch (e) {
      if (e instanceof BulwarkError) throw e;
      const err = e as Error & { code?: string };
      throw new BulwarkError(err.code === 'SQLITE_NOTADB' ? 'E_DATA_PARSE' : 'E_FILE_READ', `gateway store ${file}: ${err.message}`);
    }
  }

  async createKey(opts: { name: string; scopes: readonly Scope[]; tier: string }): Promise<NewKey> {
    const k = newApiKey(opts);
    const r = k.record;
    this.stmts.insert.run(r.id, r.name, JSON.stringify(r.scopes), r.tier, r.createdAt, r.hash);
    return k;
  }

  async listKeys(): Promise<ApiKeyRecord[]> {
    return (this.stmts.list.all() as KeyRow[]).map(toRecord);
  }

  async getKey(id: string): Promise<ApiKeyRecord | null> {
    if (!this.changes) return this.readKey(id);
    // The header is read before the row, so a commit landing in between is seen next time.
    if (this.changes.changed() || this.keyCache.size >= MAX_CACHED_KEYS) this.keyCache.clear();
    let record = this.keyCache.get(id);
    if (record === undefined) {
      // Frozen: every request shares the cached record, so none may change it for the others.
      record = this.readKey(id);
      if (record) deepFreeze(record);
      this.keyCache.set(id, record);
    }
    return record;
  }

  private readKey(id: string): ApiKeyRecord | null {
    const r = this.stmts.get.get(id) as KeyRow | undefined;
    return r ? toRecord(r) : null;
  }

  async revokeKey(id: string): Promise<ApiKeyRecord | null> {
    this.stmts.revoke.run(new Date().toISOString(), id);
    return this.getKey(id);
  }

  async restrictKey(id: string, patch: KeyRestriction): Promise<ApiKeyRecord | null> {
    this.stmts.restrict.run(JSON.stringify(patch), id);
    return this.getKey(id);
  }

  async restoreKey(id: string): Promise<ApiKeyRecord | null> {
    this.stmts.restore.run(id);
    return this.getKey(id);
  }

  async addAlert(alert: AlertDraft): Promise<Alert> {
    const info = this.stmts.addAlert.run(alert.at, JSON.stringify(alert));
    return { ...alert, id: Number(info.lastInsertRowid) };
  }

  async listAlerts(query: AlertQuery = {}): Promise<Alert[]> {
    const limit = Math.min(MAX_ALERT_LIMIT, query.limit ?? DEFAULT_ALERT_LIMIT);
    const rows = this.stmts.listAlerts.all(query.since ?? '', limit) as { id: number; body: string }[];
    return rows.map((r) => ({ ...(JSON.parse(r.body) as AlertDraft), id: r.id }));
  }

  async getLive(model: string): Promise<LiveVersion | null> {
    const r = this.stmts.getLive.get(model) as { version: string; history: string; changed_at: string } | undefined;
    return r ? { version: r.version, history: JSON.parse(r.history) as string[], changedAt: r.changed_at } : null;
  }

  async setLive(model: string, live: LiveVersion): Promise<void> {
    this.stmts.setLive.run(model, live.version, JSON.stringify(live.history), live.changedAt);
  }

  async close(): Promise<void> {
    this.changes?.close();
    if (this.db.open) this.db.close();
  }
}
