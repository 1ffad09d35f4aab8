import { Worker } from 'node:worker_threads';
import { BulwarkError, type ErrorCode } from '../core/index.js';
import { isPostgresUrl, openLedger, type Checkpoint, type CheckpointDraft, type Entry, type EntryDraft, type LedgerStore, type OpenLedgerOptions } from '../provenance/index.js';

interface Reply {
  id?: number;
  entries?: Entry[];
  error?: { message: string; code?: unknown };
  ready?: boolean;
  failed?: { message: string; code?: unknown };
  warning?: { message: string };
  closed?: boolean;
}

function toError(e: { message: string; code?: unknown }): BulwarkError {
  return new BulwarkError(typeof e.code === 'string' && e.code.startsWith('E_') ? (e.code as ErrorCode) : 'E_FILE_READ', e.message);
}

/** Starts ledger-worker.ts in `mode` and waits until it has opened the ledger. */
async function startWorker(spec: string, workerData: Record<string, unknown>): Promise<Worker> {
  const here = import.meta.url;
  // Run from source (tests under tsx), the thread has to register tsx itself before loading the .ts file.
  const worker = here.endsWith('.ts')
    ? new Worker(`import('tsx/esm/api').then((t) => t.register()).then(() => import(${JSON.stringify(new URL('./ledger-worker.ts', here).href)}))`, { eval: true, workerData })
    : new Worker(new URL('./ledger-worker.js', here), { workerData });
  worker.unref();
  await new Promise<void>((resolve, reject) => {
    worker.once('error', reject);
    worker.once('message', (m: Reply) => {
      worker.off('error', reject);
      if (m.failed) reject(toError(m.failed));
      else resolve();
    });
  }).catch(async (e) => {
    await worker.terminate();
    throw e instanceof BulwarkError ? e : new BulwarkError('E_FILE_READ', `ledger ${spec}: the audit log's thread did not start: ${(e as Error).message}`);
  });
  return worker;
}

/** Asks the worker to finish what it holds, then stops it. */
async function stopWorker(worker: Worker, onClosed: (f: () => void) => void): Promise<void> {
  await new Promise<void>((resolve) => {
    onClosed(resolve);
    worker.postMessage('close');
  });
  await worker.terminate();
}

/**
 * The gateway's audit log. PostgreSQL ledgers are opened directly (asynchronous already). A
 * SQLite ledger never makes the event loop wait for the disk:
 * - durability 'process' (the default): entries are committed on this thread, into the WAL
 *   without an fsync (tens of microseconds; survives kill -9, not power loss), and a helper
 *   thread checkpoints the WAL — the step that does fsync — on its own connection;
 * - durability 'fsync': every commit reaches the disk before `append` resolves, and the
 *   commits run in a helper thread that batches whatever arrives while one is running.
 */
export async function openAuditLedger(spec: string, opts: OpenLedgerOptions & { checkpointEveryMs?: number } = {}): Promise<LedgerStore> {
  if (isPostgresUrl(spec)) return openLedger(spec, opts);
  const { checkpointEveryMs, ...ledgerOpts } = opts;
  const durability = ledgerOpts.durability ?? 'process';
  if (durability === 'process') {
    const store = await openLedger(spec, { ...ledgerOpts, durability, autoCheckpoint: false });
    let worker: Worker;
    try {
      worker = await startWorker(spec, { spec, options: { ...ledgerOpts, durability, create: false }, mode: 'checkpointer', checkpointEveryMs });
    } catch (e) {
      await store.close();
      throw e;
    }
    let onClosed: (() => void) | null = null;
    worker.on('message', (m: Reply) => {
      if (m.closed) onClosed?.();
      else if (m.warning) process.emitWarning(`audit log ${spec}: WAL checkpoint failed: ${m.warning.message}`);
    });
    let closing: Promise<void> | undefined;
    const close = () =>
      (closing ??= (async () => {
        await store.close();
        await stopWorker(worker, (f) => (onClosed = f));
      })());
    return {
      location: store.location,
      append: (d: EntryDraft) => store.append(d),
      appendMany: (d: readonly EntryDraft[]) => store.appendMany(d),
      head: () => store.head(),
      read: (from: number, limit: number) => store.read(from, limit),
      findByHash: (h: string) => store.findByHash(h),
      addCheckpoint: (cp: CheckpointDraft) => store.addCheckpoint(cp),
      checkpoints: () => store.checkpoints(),
      close,
    };
  }
  return openWriterThread(spec, { ...ledgerOpts, durability });
}

async function openWriterThread(spec: string, opts: OpenLedgerOptions): Promise<LedgerStore> {
  // Created (or checked) here first, so a bad path fails with the usual message before any thread starts.
  const reader = await openLedger(spec, opts);
  let worker: Worker;
  try {
    worker = await startWorker(spec, { spec, options: { ...opts, create: false }, mode: 'writer' });
  } catch (e) {
    await reader.close();
    throw e;
  }
  const pending = new Map<number, { resolve: (e: Entry[]) => void; reject: (e: unknown) => void }>();
  let nextId = 1;
  let dead: BulwarkError | null = null;
  let onClosed: (() => void) | null = null;
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
        // Lets the writer finish what it was handed before it goes.
        if (!dead) await stopWorker(worker, (f) => (onClosed = f));
        await reader.close();
      })()),
  };
  return store;
}
