/**
 * Coalesces items into batches: while one batch is being processed, everything that arrives
 * waits in the next one, so the per-batch cost (a message to the detection thread, a
 * status read) is paid once however fast requests come. Batches run one at a time, in order.
 */
export class Batcher<T> {
  private queue: T[] = [];
  private next: { promise: Promise<void>; resolve: () => void } | null = null;
  private running: Promise<void> | null = null;
  private size = 0;
  /** Items not queued because the queue was full. */
  dropped = 0;

  constructor(
    private readonly run: (batch: T[]) => Promise<void>,
    private readonly onError: (e: unknown) => void,
    /** Most queued weight (rows) before new items are dropped; and each item's weight. */
    private readonly limit: { max: number; weight: (item: T) => number } = { max: Infinity, weight: () => 1 },
  ) {}

  /** Queues the item; the promise settles once its batch has been processed (never rejects). Null when the queue is full. */
  push(item: T): Promise<void> | null {
    const w = this.limit.weight(item);
    if (this.size + w > this.limit.max && this.queue.length > 0) {
      this.dropped += w;
      return null;
    }
    this.size += w;
    this.queue.push(item);
    if (!this.next) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.next = { promise, resolve };
    }
    // Started on the next turn of the event loop: the answer that queued the item goes out first.
    if (!this.running) this.running = new Promise<void>((r) => setImmediate(r)).then(() => this.loop());
    return this.next.promise;
  }

  private async loop(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue;
      const done = this.next!;
      this.queue = [];
      this.size = 0;
      this.next = null;
      try {
        await this.run(batch);
      } catch (e) {
        this.onError(e);
      }
      done.resolve();
    }
    this.running = null;
  }

  /** Resolves once everything queued so far has been processed. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }
}
