import Database from 'better-sqlite3';
import { openSync, readSync, closeSync, statSync } from 'node:fs';
import { BulwarkError } from '../../core/index.js';
import { chainEntries, defaultActor, prepareDraft, LEDGER_FORMAT, LEDGER_FORMAT_VERSION, type Entry, type EntryDraft, type PreparedDraft } from './entry.js';
import { GroupCommit, type Checkpoint, type CheckpointDraft, type LedgerStore } from './store.js';

export interface SqliteLedgerOptions {
  /** Create the file (and the tables) when absent. Default true; false for readers such as `verify`. */
  create?: boolean;
  /** Open without write access; implies create: false. */
  readonly?: boolean;
  /** Actor recorded when a draft names none. Default user@host. */
  actor?: string;
  /** How long a call waits (without blocking the event loop) for another process's transaction before E_TIMEOUT. Default 30 s. */
  busyTimeoutMs?: number;
  /**
   * When a commit counts as written. 'fsync' (default): the WAL is on disk before append
   * resolves, so an entry survives power loss. 'process': the commit is in the WAL file (the
   * operating system's cache) before append resolves — it survives the process being killed,
   * kill -9 included, but the last moments of entries can be lost if the machine itself goes
   * down; no fsync per commit, so a busy server's answers do not wait for the disk.
   */
  durability?: LedgerDurability;
  /**
   * Let SQLite checkpoint the WAL inside commits (default true). A server turns this off and
   * calls `checkpointWal()` from another thread, so no request waits for a checkpoint's fsync.
   */
  autoCheckpoint?: boolean;
}

export type LedgerDurability = 'fsync' | 'process';

const SQLITE_MAGIC = 'SQLite format 3\0';
const ENTRY_COLUMNS = 'seq, time, actor, kind, payload AS payloadJson, payload_digest AS payloadDigest, prev_hash AS prevHash, hash';
const CHECKPOINT_COLUMNS = 'n, seq, hash, time, alg, key_id AS keyId, signature';

type RawEntry = [number, string, string, string, string, string, string, string];

const SCHEMA = `
CREATE TABLE ledger_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE ledger_entries (
  seq INTEGER PRIMARY KEY,
  time TEXT NOT NULL, actor TEXT NOT NULL, kind TEXT NOT NULL,
  payload TEXT NOT NULL, payload_digest TEXT NOT NULL,
  prev_hash TEXT NOT NULL, hash TEXT NOT NULL
);
CREATE TABLE ledger_checkpoints (
  n INTEGER PRIMARY KEY,
  seq INTEGER NOT NULL, hash TEXT NOT NULL, time TEXT NOT NULL,
  alg TEXT NOT NULL, key_id TEXT, signature TEXT NOT NULL
);`;

function notALedger(file: string, why: string): BulwarkError {
  return new BulwarkError('E_DATA_PARSE', `${file} is not a bulwark ledger: ${why}. Give a ledger file, or a new path to create one.`);
}

function sqliteError(e: unknown, file: string, doing: string): BulwarkError {
  if (e instanceof BulwarkError) return e;
  const err = e as Error & { code?: string };
  const code = err.code ?? '';
  if (isBusy(e)) {
    return new BulwarkError('E_TIMEOUT', `ledger ${file} stayed locked by another writer while ${doing}; retry, or raise busyTimeoutMs`, { cause: e });
  }
  if (code === 'SQLITE_NOTADB') return notALedger(file, 'not a SQLite database');
  if (code.startsWith('SQLITE_CORRUPT')) return new BulwarkError('E_DATA_PARSE', `ledger ${file} is corrupt (${err.message}) while ${doing}`, { cause: e });
  return new BulwarkError('E_FILE_READ', `ledger ${file}: ${err.message} while ${doing}`, { cause: e });
}

/** Refuses, before SQLite touches it, anything that is not a SQLite file. Returns whether the file exists. */
function checkFile(file: string, mayCreate: boolean): boolean {
  let size: number;
  try {
    const st = statSync(file);
    if (st.isDirectory()) throw new BulwarkError('E_FILE_READ', `${file} is a directory; give the ledger's file path`);
    size = st.size;
  } catch (e) {
    if (e instanceof BulwarkError) throw e;
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT') {
      if (mayCreate) return false;
      throw new BulwarkError('E_FILE_NOT_FOUND', `no ledger at ${file}; append to it first to create it`);
    }
    throw new BulwarkError('E_FILE_READ', `cannot read ledger ${file}: ${err.message}`);
  }
  if (size === 0) return true;
  const head = Buffer.alloc(16);
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    readSync(fd, head, 0, 16, 0);
  } catch (e) {
    throw new BulwarkError('E_FILE_READ', `cannot read ledger ${file}: ${(e as Error).message}`);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  if (size < 100 || head.toString('latin1') !== SQLITE_MAGIC) throw notALedger(file, 'it is not a SQLite database');
  return true;
}

function tableNames(db: Database.Database): string[] {
  return (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map((r) => r.name);
}

/** Checks the format marker; returns false for an empty database (which we may initialise). */
function checkSchema(db: Database.Database, file: string): boolean {
  const tables = tableNames(db);
  if (tables.length === 0) return false;
  if (!tables.includes('ledger_meta')) {
    const shown = tables.slice(0, 5).join(', ') + (tables.length > 5 ? ', …' : '');
    throw notALedger(file, `it is a SQLite database with other tables (${shown}) and no ledger_meta; refusing to touch it`);
  }
  const meta = new Map((db.prepare('SELECT key, value FROM ledger_meta').all() as { key: string; value: string }[]).map((r) => [r.key, r.value]));
  if (meta.get('format') !== LEDGER_FORMAT) throw notALedger(file, `its ledger_meta names format '${meta.get('format') ?? '(none)'}'`);
  const version = Number(meta.get('version'));
  if (version !== LEDGER_FORMAT_VERSION) {
    throw new BulwarkError('E_DATA_PARSE', `ledger ${file} has format version ${meta.get('version')}; this bulwark reads version ${LEDGER_FORMAT_VERSION}`);
  }
  for (const t of ['ledger_entries', 'ledger_checkpoints']) if (!tables.includes(t)) throw notALedger(file, `table ${t} is missing`);
  return true;
}

function isBusy(e: unknown): boolean {
  const code = (e as { code?: unknown }).code;
  return typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'));
}

/**
 * Runs `f`, retrying while another process holds the lock. The connection's own busy_timeout
 * is 0: SQLite's busy handler would sleep inside the synchronous call and stall the whole
 * event loop (a server's every request) for as long as another writer holds the file.
 * Short jittered sleeps also let waiting processes poll often, which keeps writers fairer.
 */
async function retryBusy<T>(file: string, timeoutMs: number, doing: string, f: () => T): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; ; attempt++) {
    try {
      return f();
    } catch (e) {
      if (!isBusy(e) || Date.now() >= deadline) throw sqliteError(e, file, doing);
      const ms = Math.min(1 + attempt, 8) * (0.5 + Math.random());
      await new Promise((r) => setTimeout(r, ms));
    }
  }
}

function setWal(db: Database.Database, file: string): void {
  const mode = db.pragma('journal_mode = WAL', { simple: true });
  if (String(mode).toLowerCase() !== 'wal') throw new BulwarkError('E_FILE_READ', `ledger ${file}: cannot switch to WAL mode (got ${String(mode)})`);
}

function prepareStatements(db: Database.Database, readonly: boolean) {
  return {
    headLink: db.prepare('SELECT seq, hash, time FROM ledger_entries ORDER BY seq DESC LIMIT 1'),
    head: db.prepare(`SELECT ${ENTRY_COLUMNS} FROM ledger_entries ORDER BY seq DESC LIMIT 1`),
    // Rows as arrays: better-sqlite3 builds those ~2.5× faster than objects, which verification feels.
    read: db.prepare(`SELECT ${ENTRY_COLUMNS} FROM ledger_entries WHERE seq >= ? ORDER BY seq LIMIT ?`).raw(true),
    byHash: db.prepare(`SELECT ${ENTRY_COLUMNS} FROM ledger_entries WHERE hash = ? ORDER BY seq LIMIT 1`),
    checkpoints: db.prepare(`SELECT ${CHECKPOINT_COLUMNS} FROM ledger_checkpoints ORDER BY n`),
    insert: readonly ? null : db.prepare('INSERT INTO ledger_entries (seq, time, actor, kind, payload, payload_digest, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)'),
    insertCheckpoint: readonly ? null : db.prepare('INSERT INTO ledger_checkpoints (seq, hash, time, alg, key_id, signature) VALUES (?, ?, ?, ?, ?, ?)'),
  };
}

/**
 * The embedded ledger: one SQLite file in WAL mode with synchronous=FULL by default, so every
 * commit fsyncs the WAL before returning (NORMAL — durability 'process' — survives a process
 * crash but can lose the last commits on power loss).
 * Writers serialise on BEGIN IMMEDIATE; seq is the INTEGER PRIMARY KEY, so even a writer
 * that bypassed the lock could not create a second entry with the same seq.
 */
export class SqliteLedgerStore implements LedgerStore {
  readonly location: string;
  private readonly committer: GroupCommit;
  private readonly stmts: ReturnType<typeof prepareStatements>;
  private closed = false;

  constructor(
    private readonly db: Database.Database,
    file: string,
    private readonly readonly: boolean,
    private readonly actor: string,
    private readonly busyTimeoutMs: number,
  ) {
    this.location = file;
    this.stmts = prepareStatements(db, readonly);
    const tx = db.transaction((drafts: PreparedDraft[]): Entry[] => {
      const head = this.stmts.headLink.get() as { seq: number; hash: string; time: string } | undefined;
      const now = new Date().toISOString();
      // Times never run backwards along the chain, even when clocks do.
      const entries = chainEntries(drafts, head ?? null, head && head.time > now ? head.time : now);
      const insert = this.stmts.insert as Database.Statement;
      for (const e of entries) insert.run(e.seq, e.time, e.actor, e.kind, e.payloadJson, e.payloadDigest, e.prevHash, e.hash);
      return entries;
    });
    this.committer = new GroupCommit((drafts) => this.query('appending', () => tx.immediate(drafts)));
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

  private query<T>(doing: string, f: () => T): Promise<T> {
    if (this.closed) throw new BulwarkError('E_USAGE', `ledger ${this.location} is closed`);
    return retryBusy(this.location, this.busyTimeoutMs, doing, f);
  }

  async head(): Promise<Entry | null> {
    return this.query('reading the head', () => (this.stmts.head.get() as Entry | undefined) ?? null);
  }

  async read(fromSeq: number, limit: number): Promise<Entry[]> {
    const rows = await this.query('reading entries', () => this.stmts.read.all(fromSeq, limit) as RawEntry[]);
    const out: Entry[] = new Array(rows.length);
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i];
      out[i] = { seq: r[0], time: r[1], actor: r[2], kind: r[3], payloadJson: r[4], payloadDigest: r[5], prevHash: r[6], hash: r[7] };
    }
    return out;
  }

  async findByHash(hash: string): Promise<Entry | null> {
    return this.query('searching entries', () => (this.stmts.byHash.get(hash) as Entry | undefined) ?? null);
  }

  async addCheckpoint(cp: CheckpointDraft): Promise<Checkpoint> {
    this.writable();
    return this.query('storing a checkpoint', () => {
      const info = (this.stmts.insertCheckpoint as Database.Statement).run(cp.seq, cp.hash, cp.time, cp.alg, cp.keyId ?? null, cp.signature);
      return { ...cp, n: Number(info.lastInsertRowid) };
    });
  }

  async checkpoints(): Promise<Checkpoint[]> {
    const rows = await this.query('reading checkpoints', () => this.stmts.checkpoints.all() as (Checkpoint & { keyId: string | null })[]);
    return rows.map(({ keyId, ...r }) => (keyId === null ? r : { ...r, keyId }));
  }

  /**
   * Copies committed WAL frames into the database file without blocking writers (a PASSIVE
   * checkpoint); for a connection whose writers were opened with autoCheckpoint: false.
   */
  async checkpointWal(): Promise<{ walFrames: number; checkpointed: number }> {
    const [r] = await this.query('checkpointing the WAL', () => this.db.pragma('wal_checkpoint(PASSIVE)') as { busy: number; log: number; checkpointed: number }[]);
    return { walFrames: r?.log ?? 0, checkpointed: r?.checkpointed ?? 0 };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.committer.settle();
    this.closed = true;
    this.db.close();
  }
}

export async function openSqliteLedger(file: string, opts: SqliteLedgerOptions = {}): Promise<SqliteLedgerStore> {
  const readonly = opts.readonly ?? false;
  const mayCreate = !readonly && (opts.create ?? true);
  const timeout = Math.max(0, opts.busyTimeoutMs ?? 30_000);
  const existed = checkFile(file, mayCreate);
  let db: Database.Database;
  try {
    db = new Database(file, { readonly, fileMustExist: !mayCreate, timeout: 0 });
  } catch (e) {
    throw sqliteError(e, file, 'opening');
  }
  const step = <T>(f: () => T) => retryBusy(file, timeout, 'opening', f);
  try {
    const ready = existed && (await step(() => checkSchema(db, file)));
    if (!ready) {
      if (!mayCreate) throw notALedger(file, 'it is an empty database');
      // Only now, once the file is known to be empty or absent, may it be changed.
      await step(() => setWal(db, file));
      await step(() =>
        db
          .transaction(() => {
            // Another process may have initialised the file since we looked.
            if (checkSchema(db, file)) return;
            db.exec(SCHEMA);
            const put = db.prepare('INSERT INTO ledger_meta (key, value) VALUES (?, ?)');
            put.run('format', LEDGER_FORMAT);
            put.run('version', String(LEDGER_FORMAT_VERSION));
            put.run('encoding', 'jcs-sha256');
            put.run('created', new Date().toISOString());
          })
          .immediate(),
      );
    } else if (!readonly) {
      await step(() => setWal(db, file));
    }
    if (!readonly) db.pragma(opts.durability === 'process' ? 'synchronous = NORMAL' : 'synchronous = FULL');
    if (!readonly && opts.autoCheckpoint === false) db.pragma('wal_autocheckpoint = 0');
    return new SqliteLedgerStore(db, file, readonly, opts.actor ?? defaultActor(), timeout);
  } catch (e) {
    db.close();
    throw sqliteError(e, file, 'opening');
  }
}
