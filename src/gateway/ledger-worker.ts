// The audit log's writer thread: owns a SQLite ledger connection so that its synchronous
// commits (each one an fsync) block this thread, never the server's event loop. Drafts that
// arrive while a commit is running queue up and go into the next one together.
import { parentPort, workerData } from 'node:worker_threads';
import { openLedger, type EntryDraft } from '../provenance/index.js';

interface Request {
  id: number;
  drafts: EntryDraft[];
}

const { spec, options } = workerData as { spec: string; options: Record<string, unknown> };
const port = parentPort;
if (!port) throw new Error('ledger-worker must run in a worker thread');

try {
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
          port.postMessage({ id: r.id, entries: entries.slice(at, at + r.drafts.length) });
          at += r.drafts.length;
        }
      },
      (e: unknown) => {
        const error = { message: e instanceof Error ? e.message : String(e), code: (e as { code?: unknown }).code };
        for (const r of batch) port.postMessage({ id: r.id, error });
      },
    );
  };
  port.on('message', (m: Request | 'close') => {
    if (m === 'close') {
      flush();
      void flushing.then(() => store.close()).then(() => port.postMessage({ closed: true }));
      return;
    }
    queue.push(m);
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  });
  port.postMessage({ ready: true });
} catch (e) {
  port.postMessage({ failed: { message: e instanceof Error ? e.message : String(e), code: (e as { code?: unknown }).code } });
}
