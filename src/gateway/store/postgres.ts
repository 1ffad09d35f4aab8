import pg from 'pg';
import { BulwarkError } from '../../core/index.js';
import { redactUrl } from '../../provenance/index.js';
import { newApiKey, type ApiKeyRecord, type KeyRestriction, type NewKey, type Scope } from '../keys.js';
import { DEFAULT_ALERT_LIMIT, MAX_ALERT_LIMIT, type Alert, type AlertDraft, type AlertQuery } from '../watch/alerts.js';
import type { GatewayStore, LiveVersion } from './types.js';

export interface PostgresGatewayStoreOptions {
  /** Schema for the tables (created when absent). Default 'public'. */
  schema?: string;
  /** Share a pool (the ledger's); close() then leaves it open. */
  pool?: pg.Pool;
}

interface KeyRow {
  id: string;
  name: string;
  scopes: string[];
  tier: string;
  created_at: string;
  revoked_at: string | null;
  hash: string;
  restriction: KeyRestriction | null;
}

function toRecord(r: KeyRow): ApiKeyRecord {
  return { id: r.id, name: r.name, scopes: r.scopes as Scope[], tier: r.tier, createdAt: r.created_at, revokedAt: r.revoked_at, hash: r.hash, restriction: r.restriction ?? null };
}

/** The scale-out store: every replica reads the same tables, so a revocation is seen by all at once. */
export class PostgresGatewayStore implements GatewayStore {
  private constructor(
    readonly location: string,
    private readonly pool: pg.Pool,
    private readonly ownsPool: boolean,
    private readonly t: { keys: string; live: string; alerts: string },
  ) {}

  static async open(url: string, opts: PostgresGatewayStoreOptions = {}): Promise<PostgresGatewayStore> {
    const schema = opts.schema ?? 'public';
    if (!/^[a-z_][a-z0-9_]{0,39}$/.test(schema)) throw new BulwarkError('E_USAGE', `schema '${schema}' must be lower-case letters, digits and _ (at most 40)`);
    const where = `${redactUrl(url)} (${schema}.bulwark_gateway_*)`;
    const pool = opts.pool ?? new pg.Pool({ connectionString: url, max: 4 });
    if (!opts.pool) pool.on('error', () => {});
    const t = { keys: `"${schema}".bulwark_gateway_keys`, live: `"${schema}".bulwark_gateway_live`, alerts: `"${schema}".bulwark_gateway_alerts` };
    let client: pg.PoolClient | undefined;
    try {
      client = await pool.connect();
      // Serialised by an advisory lock so replicas starting together do not race on CREATE.
      await client.query(`BEGIN; SELECT pg_advisory_xact_lock(4242001);
        CREATE SCHEMA IF NOT EXISTS "${schema}";
        CREATE TABLE IF NOT EXISTS ${t.keys} (
          id TEXT PRIMARY KEY, name TEXT NOT NULL, scopes TEXT[] NOT NULL, tier TEXT NOT NULL,
          created_at TEXT NOT NULL, revoked_at TEXT, hash TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS ${t.live} (
          model TEXT PRIMARY KEY, version TEXT NOT NULL, history TEXT[] NOT NULL, changed_at TEXT NOT NULL);
        ALTER TABLE ${t.keys} ADD COLUMN IF NOT EXISTS restriction JSONB;
        CREATE TABLE IF NOT EXISTS ${t.alerts} (id BIGSERIAL PRIMARY KEY, at TEXT NOT NULL, body JSONB NOT NULL);
        CREATE INDEX IF NOT EXISTS bulwark_gateway_alerts_at ON ${t.alerts} (at);
        COMMIT;`);
      client.release();
    } catch (e) {
      if (client) {
        await client.query('ROLLBACK').catch(() => {});
        client.release();
      }
      if (!opts.pool) await pool.end().catch(() => {});
      throw new BulwarkError('E_REMOTE', `gateway store ${where}: PostgreSQL failed while opening: ${(e as Error).message}`, { cause: e });
    }
    return new PostgresGatewayStore(where, pool, !opts.pool, t);
  }

  private async q<R extends pg.QueryResultRow>(doing: string, text: string, params: unknown[]): Promise<R[]> {
    try {
      return (await this.pool.query<R>(text, params)).rows;
    } catch (e) {
      throw new BulwarkError('E_REMOTE', `gateway store ${this.location}: PostgreSQL failed while ${doing}: ${(e as Error).message}`, { cause: e });
    }
  }

  async createKey(opts: { name: string; scopes: readonly Scope[]; tier: string }): Promise<NewKey> {
    const k = newApiKey(opts);
    const r = k.record;
    await this.q('creating a key', `INSERT INTO ${this.t.keys} (id, name, scopes, tier, created_at, hash) VALUES ($1, $2, $3, $4, $5, $6)`, [r.id, r.name, r.scopes, r.tier, r.createdAt, r.hash]);
    return k;
  }

  async listKeys(): Promise<ApiKeyRecord[]> {
    return (await this.q<KeyRow>('listing keys', `SELECT * FROM ${this.t.keys} ORDER BY created_at, id`, [])).map(toRecord);
  }

  async getKey(id: string): Promise<ApiKeyRecord | null> {
    const rows = await this.q<KeyRow>('reading a key', `SELECT * FROM ${this.t.keys} WHERE id = $1`, [id]);
    return rows[0] ? toRecord(rows[0]) : null;
  }

  async revokeKey(id: string): Promise<ApiKeyRecord | null> {
    const rows = await this.q<KeyRow>('revoking a key', `UPDATE ${this.t.keys} SET revoked_at = coalesce(revoked_at, $2) WHERE id = $1 RETURNING *`, [id, new Date().toISOString()]);
    return rows[0] ? toRecord(rows[0]) : null;
  }

  async restrictKey(id: string, patch: KeyRestriction): Promise<ApiKeyRecord | null> {
    // jsonb || merges in the row's own update, so restrictions from two replicas both hold.
    const rows = await this.q<KeyRow>(
      'restricting a key',
      `UPDATE ${this.t.keys} SET restriction = coalesce(restriction, '{}'::jsonb) || $2::jsonb WHERE id = $1 RETURNING *`,
      [id, JSON.stringify(patch)],
    );
    return rows[0] ? toRecord(rows[0]) : null;
  }

  async restoreKey(id: string): Promise<ApiKeyRecord | null> {
    const rows = await this.q<KeyRow>('restoring a key', `UPDATE ${this.t.keys} SET restriction = NULL WHERE id = $1 RETURNING *`, [id]);
    return rows[0] ? toRecord(rows[0]) : null;
  }

  async addAlert(alert: AlertDraft): Promise<Alert> {
    const rows = await this.q<{ id: string }>('keeping an alert', `INSERT INTO ${this.t.alerts} (at, body) VALUES ($1, $2) RETURNING id`, [alert.at, JSON.stringify(alert)]);
    return { ...alert, id: Number(rows[0].id) };
  }

  async listAlerts(query: AlertQuery = {}): Promise<Alert[]> {
    const limit = Math.min(MAX_ALERT_LIMIT, query.limit ?? DEFAULT_ALERT_LIMIT);
    const rows = await this.q<{ id: string; body: AlertDraft }>('listing alerts', `SELECT id, body FROM ${this.t.alerts} WHERE at >= $1 ORDER BY id DESC LIMIT $2`, [query.since ?? '', limit]);
    return rows.map((r) => ({ ...r.body, id: Number(r.id) }));
  }

  async getLive(model: string): Promise<LiveVersion | null> {
    const rows = await this.q<{ version: string; history: string[]; changed_at: string }>('reading the live version', `SELECT version, history, changed_at FROM ${this.t.live} WHERE model = $1`, [model]);
    return rows[0] ? { version: rows[0].version, history: rows[0].history, changedAt: rows[0].changed_at } : null;
  }

  async setLive(model: string, live: LiveVersion): Promise<void> {
    await this.q(
      'switching the live version',
      `INSERT INTO ${this.t.live} (model, version, history, changed_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (model) DO UPDATE SET version = excluded.version, history = excluded.history, changed_at = excluded.changed_at`,
      [model, live.version, live.history, live.changedAt],
    );
  }

  async close(): Promise<void> {
    if (this.ownsPool) await this.pool.end().catch(() => {});
  }
}
