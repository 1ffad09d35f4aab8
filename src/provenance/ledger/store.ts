import type { Entry, EntryDraft, PreparedDraft } from './entry.js';

/** A signed statement "the log's entry `seq` had hash `hash` at `time`". */
export interface CheckpointDraft {
  seq: number;
  hash: string;
  time: string;
  alg: string;
  keyId?: string;
  /** base64 signature over `checkpointMessage({seq, hash, time})`. */
  signature: string;
}

export interface Checkpoint extends CheckpointDraft {
  /** 1-based, in the order checkpoints were stored. */
  n: number;
}

/**
 * The port every ledger backend implements. The chain link (seq, prevHash) is computed inside
 * the store's write transaction, under a lock that serialises all writers of the same log,
 * so processes appending concurrently never fork the chain. `append` and `appendMany`
 * resolve only after the entries are committed durably.
 */
export interface LedgerStore {
  /** The file path or (password-free) URL, for messages. */
  readonly location: string;
  append(draft: EntryDraft): Promise<Entry>;
  /** One transaction, one flush to disk, for all the drafts; they get consecutive seqs. */
  appendMany(drafts: readonly EntryDraft[]): Promise<Entry[]>;
  head(): Promise<Entry | null>;
  /** Up to `limit` entries with seq ≥ fromSeq, in seq order (gaps show as jumps in seq). */
  read(fromSeq: number, limit: number): Promise<Entry[]>;
  /** The entry whose stored hash is `hash`, if any; verification uses it to tell reordering from editing. */
  findByHash(hash: string): Promise<Entry | null>;
  addCheckpoint(cp: CheckpointDraft): Promise<Checkpoint>;
  checkpoints(): Promise<Checkpoint[]>;
  close(): Promise<void>;
}

/** Reads the whole log in seq order, a chunk at a time. */
export async function* iterateEntries(store: LedgerStore, opts: { from?: number; chunk?: number } = {}): AsyncGenerator<Entry> {
  const chunk = opts.chunk ?? 10_000;
  let from = opts.from ?? 1;
  for (;;) {
    const rows = await store.read(from, chunk);
    for (const r of rows) yield r;
    if (rows.length < chunk) return;
    from = rows[rows.length - 1].seq + 1;
  }
}

interface Pending {
  drafts: readonly PreparedDraft[];
  resolve: (entries: Entry[]) => void;
  reject: (e: unknown) => void;
}

/**
 * Group commit: `append` calls made while a write is pending or in the same tick go into one
 * transaction, so each call still returns only after its own entry is durable, while many
 * concurrent callers share one fsync. Drafts are validated before they are queued, so a bad
 * draft fails its own caller and never a batch.
 */
export class GroupCommit {
  private queue: Pending[] = [];
  private draining: Promise<void> | null = null;

  constructor(
    private readonly write: (drafts: PreparedDraft[]) => Promise<Entry[]> | Entry[],
    private readonly maxBatch = 5_000,
  ) {}

  submit(drafts: readonly PreparedDraft[]): Promise<Entry[]> {
    return new Promise<Entry[]>((resolve, reject) => {
      this.queue.push({ drafts, resolve, reject });
      // Waits for the end of this event-loop turn, so that every request that reached its
      // append in the same turn shares one transaction (one commit instead of many).
      this.draining ??= new Promise<void>((r) => setImmediate(r)).then(() => this.drain());
    });
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const batch: Pending[] = [];
      let size = 0;
      while (this.queue.length > 0 && (batch.length === 0 || size + this.queue[0].drafts.length <= this.maxBatch)) {
        const p = this.queue.shift() as Pending;
        batch.push(p);
        size += p.drafts.length;
      }
      try {
        const all = await this.write(batch.flatMap((p) => p.drafts));
        let at = 0;
        for (const p of batch) {
          p.resolve(all.slice(at, at + p.drafts.length));
          at += p.drafts.length;
        }
      } catch (e) {
        for (const p of batch) p.reject(e);
      }
    }
    this.draining = null;
  }

  /** Resolves once every submitted batch has been written (or has failed). */
  async settle(): Promise<void> {
    while (this.draining) await this.draining;
  }
}
