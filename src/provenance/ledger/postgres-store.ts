import pg from 'pg';
import { createHash } from 'node:crypto';
import { BulwarkError } from '../../core/index.js';
import { chainEntries, defaultActor, prepareDraft, LEDGER_FORMAT, LEDGER_FORMAT_VERSION, type Entry, type EntryDraft, type PreparedDraft } from './entry.js';
import { GroupCommit, type Checkpoint, type CheckpointDraft, type LedgerStore } from './store.js';

export interface PostgresLedgerOptions {
  /** Schema holding the tables; created when absent. Default 'public'. */
  schema?: string;
  /** Table-name prefix: tables are PREFIX_meta, PREFIX_entries, PREFIX_checkpoints. Default 'bulwark_ledger'. */
  prefix?: string;
  /** Create the tables when absent. Default true. */
  create?: boolean;
  readonly?: boolean;
  actor?: string;
  /** Share an existing pool (the gateway's); close() then leaves it open. */
  pool?: pg.Pool;
  /** Size of the pool this store creates. Default 4. */
  maxConnections?: number;
}

const IDENT = /^[a-z_][a-z0-9_]{0,39}$/;

export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url.replace(/\/\/([^:/@]*):[^@]*@/, '//$1:***@');
  }
}

function pgError(e: unknown, where: string, doing: string): BulwarkError {
  if (e instanceof BulwarkError) return e;
  const err = e as Error & { code?: string };
  return new BulwarkError('E_REMOTE', `ledger ${where}: PostgreSQL failed while ${doing}: ${err.message}${err.code ? ` (${err.code})` : ''}`, { cause: e });
}

function notALedger(where: string, why: string): BulwarkError {
  return new BulwarkError('E_DATA_PARSE', `${where} is not a bulwark ledger: ${why}. Choose another table prefix or schema.`);
}

interface EntryRow {
  seq: string;
  time: string;
  actor: string;
  kind: string;
  payloadJson: string;
  payloadDigest: string;
  prevHash: string;
  hash: string;
}

function toEntry(r: EntryRow): Entry {
  return { seq: Number(r.seq), time: r.time, actor: r.actor, kind: r.kind, payloadJson: r.payloadJson, payloadDigest: r.payloadDigest, prevHash: r.prevHash, hash: r.hash };
}

/**
 * The scale-out ledger. Writers take a transaction-scoped advisory lock keyed by the table
 * names, read the head and insert after it, so appenders in any number of processes form one
 * chain; seq is the primary key as a last line of defence. Each write transaction sets
 * synchronous_commit = on, so COMMIT returns only after the WAL reached disk, whatever the
 * server's default.
 */
export class PostgresLedgerStore implements LedgerStore {
  readonly location: string;
  private readonly committer: GroupCommit;
  private readonly sql: ReturnType<typeof statements>;
  private closed = false;

  constructor(
    private readonly pool: pg.Pool,
    private readonly ownsPool: boolean,
    where: string,
    private readonly lockKey: string,
    tables: { meta: string; entries: string; checkpoints: string },
    private readonly readonly: boolean,
    private readonly actor: string,
  ) {
    this.location = where;
    this.sql = statements(tables);
    this.committer = new GroupCommit((drafts) => this.writeBatch(drafts));
  }

  private async inLockedTx<T>(doing: string, f: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (e) {
      throw pgError(e, this.location, doing);
    }
    try {
      await client.query(`BEGIN; SET LOCAL synchronous_commit = on; SELECT pg_advisory_xact_lock(${this.lockKey})`);
      const out = await f(client);
      await client.query('COMMIT');
      return out;
    } catch (e) {
      await client.query('ROLLBACK').catch(() => {});
      throw pgError(e, this.location, doing);
    } finally {
      client.release();
    }
  }

  private writeBatch(drafts: PreparedDraft[]): Promise<Entry[]> {
    return this.inLockedTx('appending', async (c) => {
      const { rows } = await c.query<{ seq: string; hash: string; time: string }>(this.sql.headLink);
      const head = rows[0] ? { seq: Number(rows[0].seq), hash: rows[0].hash, time: rows[0].time } : null;
      const now = new Date().toISOString();
      const entries = chainEntries(drafts, head, head && head.time > now ? head.time : now);
      await c.query(this.sql.insert, [
        entries.map((e) => e.seq),
        entries.map((e) => e.time),
        entries.map((e) => e.actor),
        entries.map((e) => e.kind),
        entries.map((e) => e.payloadJson),
        entries.map((e) => e.payloadDigest),
        entries.map((e) => e.prevHash),
        entries.map((e) => e.hash),
      ]);
      return entries;
    });
  }

  private writable(): void {
    if (this.closed) throw new BulwarkError('E_USAGE', `ledger ${this.location} is closed`);
    if (this.readonly) throw new BulwarkError('E_USAGE', `ledger ${this.location} was opened read-only`);
  }

  async append(draft: EntryDraft): Promise<Entry> {
    this.writable();
    const [e] = await this.committer.submit([prepareDraft(draft, this.actor)]);
    return e;
  }

  async appendMany(drafts: readonly EntryDraft[]): Promise<Entry[]> {
    this.writable();
    if (drafts.length === 0) return [];
    return this.committer.submit(drafts.map((d) => prepareDraft(d, this.actor)));
  }

  private async query<R extends pg.QueryResultRow>(doing: string, text: string, params: unknown[] = []): Promise<R[]> {
    if (this.closed) throw new BulwarkError('E_USAGE', `ledger ${this.location} is closed`);
    try {
      return (await this.pool.query<R>(text, params)).rows;
    } catch (e) {
      throw pgError(e, this.location, doing);
    }
  }

  async head(): Promise<Entry | null> {
    const rows = await this.query<EntryRow>('reading the head', this.sql.head);
    return rows[0] ? toEntry(rows[0]) : null;
  }

  async read(fromSeq: number, limit: number): Promise<Entry[]> {
    return (await this.query<EntryRow>('reading entries', this.sql.read, [fromSeq, limit])).map(toEntry);
  }

  async findByHash(hash: string): Promise<Entry | null> {
    const rows = await this.query<EntryRow>('searching entries', this.sql.byHash, [hash]);
    return rows[0] ? toEntry(rows[0]) : null;
  }

  async addCheckpoint(cp: CheckpointDraft): Promise<Checkpoint> {
    this.writable();
    return this.inLockedTx('storing a checkpoint', async (c) => {
      const { rows } = await c.query<{ n: string }>(this.sql.insertCheckpoint, [cp.seq, cp.hash, cp.time, cp.alg, cp.keyId ?? null, cp.signature]);
      return { ...cp, n: Number(rows[0].n) };
    });
  }

  async checkpoints(): Promise<Checkpoint[]> {
    const rows = await this.query<{ n: string; seq: string; hash: string; time: string; alg: string; keyId: string | null; signature: string }>('reading checkpoints', this.sql.checkpoints);
    return rows.map((r) => ({ n: Number(r.n), seq: Number(r.seq), hash: r.hash, time: r.time, alg: r.alg, ...(r.keyId !== null ? { keyId: r.keyId } : {}), signature: r.signature }));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.committer.settle();
    this.closed = true;
    if (this.ownsPool) await this.pool.end();
  }
}

function statements(t: { meta: string; entries: string; checkpoints: string }) {
  const cols = 'seq, time, actor, kind, payload AS "payloadJson", payload_digest AS "payloadDigest", prev_hash AS "prevHash", hash';
  return {
    headLink: `SELECT seq, hash, time FROM ${t.entries} ORDER BY seq DESC LIMIT 1`,
    head: `SELECT ${cols} FROM ${t.entries} ORDER BY seq DESC LIMIT 1`,
    read: `SELECT ${cols} FROM ${t.entries} WHERE seq >= $1 ORDER BY seq LIMIT $2`,
    byHash: `SELECT ${cols} FROM ${t.entries} WHERE hash = $1 ORDER BY seq LIMIT 1`,
    insert: `INSERT INTO ${t.entries} (seq, time, actor, kind, payload, payload_digest, prev_hash, hash)
      SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[])`,
    insertCheckpoint: `INSERT INTO ${t.checkpoints} (n, seq, hash, time, alg, key_id, signature)
      SELECT coalesce(max(n), 0) + 1, $1, $2, $3, $4, $5, $6 FROM ${t.checkpoints} RETURNING n`,
    checkpoints: `SELECT n, seq, hash, time, alg, key_id AS "keyId", signature FROM ${t.checkpoints} ORDER BY n`,
  };
}

async function prepareTables(
  client: pg.PoolClient,
  where: string,
  schema: string,
  prefix: string,
  t: { meta: string; entries: string; checkpoints: string },
  create: boolean,
): Promise<void> {
  const names = [`${prefix}_meta`, `${prefix}_entries`, `${prefix}_checkpoints`];
  const { rows } = await client.query<{ table_name: string }>(
    'SELECT table_name FROM information_schema.tables WHERE table_schema = $1 AND table_name = ANY($2::text[])',
    [schema, names],
  );
  const present = new Set(rows.map((r) => r.table_name));
  if (present.has(names[0])) {
    const meta = new Map((await client.query<{ key: string; value: string }>(`SELECT key, value FROM ${t.meta}`)).rows.map((r) => [r.key, r.value]));
    if (meta.get('format') !== LEDGER_FORMAT) throw notALedger(where, `table ${schema}.${names[0]} names format '${meta.get('format') ?? '(none)'}'`);
    if (Number(meta.get('version')) !== LEDGER_FORMAT_VERSION) {
      throw new BulwarkError('E_DATA_PARSE', `ledger ${where} has format version ${meta.get('version')}; this bulwark reads version ${LEDGER_FORMAT_VERSION}`);
    }
    for (const n of names.slice(1)) if (!present.has(n)) throw notALedger(where, `table ${schema}.${n} is missing`);
    return;
  }
  if (present.size > 0) throw notALedger(where, `tables ${[...present].map((n) => `${schema}.${n}`).join(', ')} exist without ${schema}.${names[0]}`);
  if (!create) throw new BulwarkError('E_FILE_NOT_FOUND', `no ledger at ${where}: tables ${schema}.${prefix}_* do not exist; append to it first to create it`);
  if (schema !== 'public') await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
  await client.query(`
    CREATE TABLE ${t.meta} (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE ${t.entries} (
      seq BIGINT PRIMARY KEY CHECK (seq > 0),
      time TEXT NOT NULL, actor TEXT NOT NULL, kind TEXT NOT NULL,
      payload TEXT NOT NULL, payload_digest TEXT NOT NULL,
      prev_hash TEXT NOT NULL, hash TEXT NOT NULL
    );
    CREATE TABLE ${t.checkpoints} (
      n BIGINT PRIMARY KEY,
      seq BIGINT NOT NULL, hash TEXT NOT NULL, time TEXT NOT NULL,
      alg TEXT NOT NULL, key_id TEXT, signature TEXT NOT NULL
    );`);
  await client.query(`INSERT INTO ${t.meta} (key, value) VALUES ('format', $1), ('version', $2), ('encoding', 'jcs-sha256'), ('created', $3)`, [
    LEDGER_FORMAT,
    String(LEDGER_FORMAT_VERSION),
    new Date().toISOString(),
  ]);
}

/** Opens (and on first use creates) a ledger in PostgreSQL. */
export async function openPostgresLedger(url: string, opts: PostgresLedgerOptions = {}): Promise<PostgresLedgerStore> {
  const schema = opts.schema ?? 'public';
  const prefix = opts.prefix ?? 'bulwark_ledger';
  for (const [name, v] of [['schema', schema], ['prefix', prefix]] as const) {
    if (!IDENT.test(v)) throw new BulwarkError('E_USAGE', `ledger ${name} '${v}' must be lower-case letters, digits and _ (at most 40), starting with a letter or _`);
  }
  const readonly = opts.readonly ?? false;
  const where = `${redactUrl(url)} (${schema}.${prefix}_*)`;
  const tables = { meta: `"${schema}"."${prefix}_meta"`, entries: `"${schema}"."${prefix}_entries"`, checkpoints: `"${schema}"."${prefix}_checkpoints"` };
  // One advisory-lock key per log, from its qualified name, so different logs never wait on each other.
  const lockKey = createHash('sha256').update(`bulwark-ledger:${schema}.${prefix}`).digest().readBigInt64BE(0).toString();
  const pool = opts.pool ?? new pg.Pool({ connectionString: url, max: opts.maxConnections ?? 4 });
  if (!opts.pool) pool.on('error', () => {}); // an idle client dropped by the server; the next query reconnects
  let client: pg.PoolClient | undefined;
  try {
    client = await pool.connect();
    await client.query(readonly ? 'BEGIN' : `BEGIN; SELECT pg_advisory_xact_lock(${lockKey})`);
    await prepareTables(client, where, schema, prefix, tables, !readonly && (opts.create ?? true));
    await client.query('COMMIT');
  } catch (e) {
    if (client) await client.query('ROLLBACK').catch(() => {});
    client?.release();
    client = undefined;
    if (!opts.pool) await pool.end().catch(() => {});
    throw pgError(e, where, 'opening');
  } finally {
    client?.release();
  }
  return new PostgresLedgerStore(pool, !opts.pool, where, lockKey, tables, readonly, opts.actor ?? defaultActor());
}
