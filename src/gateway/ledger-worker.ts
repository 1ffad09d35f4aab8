// The audit log's helper thread. With durability 'fsync' it is the writer: it owns the SQLite
// connection so that each commit's fsync blocks this thread, never the server's event loop, and
// drafts that arrive while a commit runs go into the next one together. With durability
// 'process' the server commits on its own thread (no fsync, tens of microseconds) and this thread
// only checkpoints the WAL, the one step that still waits for the disk.
import { parentPort, workerData } from 'node:worker_threads';
import { openLedger, openSqliteLedger, type EntryDraft } from '../provenance/index.js';

interface Request {
  id: number;
  drafts: EntryDraft[];
}

const { spec, options, mode, checkpointEveryMs } = workerData as {
  spec: string;
  options: Record<string, unknown>;
  mode: 'writer' | 'checkpointer';
  checkpointEveryMs?: number;
};
const port = parentPort;
if (!port) throw new Error('ledger-worker must run in a worker thread');

const failed = (e: unknown) => ({ message: e instanceof Error ? e.message : String(e), code: (e as { code?: unknown }).code });

async function checkpointer(): Promise<void> {
  const store = await openSqliteLedger(spec, { ...options, create: false });
  let running = false;
  const tick = async () => {
    if (running) return;
    running = true;
    try {
      await store.checkpointWal();
    } catch (e) {
      port!.postMessage({ warning: failed(e) });
    } finally {
      running = false;
    }
  };
  const timer = setInterval(() => void tick(), checkpointEveryMs ?? 500);
  port!.on('message', (m: unknown) => {
    if (m !== 'close') return;
    clearInterval(timer);
    void tick()
      .then(() => store.close())
      .then(() => port!.postMessage({ closed: true }));
  });
  port!.postMessage({ ready: true });
}

async function writer(): Promise<void> {
  const store = await openLedger(spec, options);
  // Every request that arrived while the last commit held this thread goes into the next one.
  let queue: Request[] = [];
  let scheduled = false;
  let flushing: Promise<void> = Promise.resolve();
  const flush = (): void => {
    scheduled = false;
    const batch = queue;
    queue = [];
    if (batch.length === 0) return;
    flushing = store.appendMany(batch.flatMap((r) => r.drafts)).then(
      (entries) => {
        let at = 0;
        for (const r of batch) {
          port!.postMessage({ id: r.id, entries: entries.slice(at, at + r.drafts.length) });
          at += r.drafts.length;
        }
      },
      (e: unknown) => {
        const error = failed(e);
        for (const r of batch) port!.postMessage({ id: r.id, error });
      },
    );
  };
  port!.on('message', (m: Request | 'close') => {
    if (m === 'close') {
      flush();
      void flushing.then(() => store.close()).then(() => port!.postMessage({ closed: true }));
      return;
    }
    queue.push(m);
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  });
  port!.postMessage({ ready: true });
}

try {
  await (mode === 'checkpointer' ? checkpointer() : writer());
} catch (e) {
  port.postMessage({ failed: failed(e) });
}
