import { Worker } from 'node:worker_threads';
import { BulwarkError, type ErrorCode } from '../core/index.js';
import { isPostgresUrl, openLedger, type Checkpoint, type CheckpointDraft, type Entry, type EntryDraft, type LedgerStore, type OpenLedgerOptions } from '../provenance/index.js';

interface Reply {
  id?: number;
  entries?: Entry[];
  error?: { message: string; code?: unknown };
  ready?: boolean;
  failed?: { message: string; code?: unknown };
  closed?: boolean;
}

function toError(e: { message: string; code?: unknown }): BulwarkError {
  return new BulwarkError(typeof e.code === 'string' && e.code.startsWith('E_') ? (e.code as ErrorCode) : 'E_FILE_READ', e.message);
}

/**
 * A SQLite ledger whose appends run in a worker thread. better-sqlite3 commits synchronously,
 * so on the main thread every durable append (an fsync) would stall all requests; here the
 * event loop keeps serving while the worker commits, and `append` still resolves only once the
 * entry is durable. Reads go through an ordinary connection on this thread. PostgreSQL ledgers
 * are asynchronous already and are opened directly.
 */
export async function openAuditLedger(spec: string, opts: OpenLedgerOptions = {}): Promise<LedgerStore> {
  if (isPostgresUrl(spec)) return openLedger(spec, opts);
  // Created (or checked) here first, so a bad path fails with the usual message before any thread starts.
  const reader = await openLedger(spec, opts);
  const here = import.meta.url;
  const workerData = { spec, options: { ...opts, create: false } };
  // Run from source (tests under tsx), the thread has to register tsx itself before loading the .ts file.
  const worker = here.endsWith('.ts')
    ? new Worker(`import('tsx/esm/api').then((t) => t.register()).then(() => import(${JSON.stringify(new URL('./ledger-worker.ts', here).href)}))`, { eval: true, workerData })
    : new Worker(new URL('./ledger-worker.js', here), { workerData });
  worker.unref();
  const pending = new Map<number, { resolve: (e: Entry[]) => void; reject: (e: unknown) => void }>();
  let nextId = 1;
  let dead: BulwarkError | null = null;
  let onClosed: (() => void) | null = null;
  await new Promise<void>((resolve, reject) => {
    worker.once('error', reject);
    worker.once('message', (m: Reply) => {
      worker.off('error', reject);
      if (m.failed) reject(toError(m.failed));
      else resolve();
    });
  }).catch(async (e) => {
    await worker.terminate();
    await reader.close();
    throw e;
  });
  const fail = (e: BulwarkError) => {
    dead = e;
    for (const p of pending.values()) p.reject(e);
    pending.clear();
  };
  worker.on('message', (m: Reply) => {
    if (m.closed) return onClosed?.();
    if (m.id === undefined) return;
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if (m.error) p.reject(toError(m.error));
    else p.resolve(m.entries ?? []);
  });
  worker.on('error', (e) => fail(new BulwarkError('E_FILE_READ', `ledger ${spec}: the writer thread failed: ${e.message}`)));
  worker.on('exit', () => fail(new BulwarkError('E_USAGE', `ledger ${spec} is closed`)));

  const appendMany = (drafts: readonly EntryDraft[]): Promise<Entry[]> => {
    if (dead) return Promise.reject(dead);
    if (drafts.length === 0) return Promise.resolve([]);
    const id = nextId++;
    return new Promise<Entry[]>((resolve, reject) => {
      pending.set(id, { resolve, reject });
      worker.postMessage({ id, drafts });
    });
  };
  let closing: Promise<void> | undefined;
  const store: LedgerStore = {
    location: reader.location,
    append: async (d: EntryDraft) => (await appendMany([d]))[0],
    appendMany,
    head: () => reader.head(),
    read: (from: number, limit: number) => reader.read(from, limit),
    findByHash: (h: string) => reader.findByHash(h),
    addCheckpoint: (cp: CheckpointDraft): Promise<Checkpoint> => reader.addCheckpoint(cp),
    checkpoints: () => reader.checkpoints(),
    close: () =>
      (closing ??= (async () => {
        if (!dead) {
          // Lets the writer finish what it was handed before it goes.
          await new Promise<void>((resolve) => {
            onClosed = resolve;
            worker.postMessage('close');
          });
          await worker.terminate();
        }
        await reader.close();
      })()),
  };
  return store;
}
