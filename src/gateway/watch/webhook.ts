import { createHmac } from 'node:crypto';

export const SIGNATURE_HEADER = 'X-Bulwark-Signature';

/** `sha256=<hex HMAC-SHA256 of the body>`: what the receiver recomputes with the shared secret. */
export function signBody(body: string, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(body, 'utf8').digest('hex')}`;
}

export interface WebhookOptions {
  url: string;
  secret: string;
  /** Attempts after the first. */
  retries: number;
  /** First wait between attempts, doubled each time (with ±20% jitter). */
  backoffMs: number;
  timeoutMs: number;
  /** Deliveries waiting or in flight beyond which new ones are dropped (and counted). Default 1000. */
  maxPending?: number;
}

export interface Delivery {
  delivered: boolean;
  attempts: number;
  /** The last HTTP status, or null when the last attempt got no answer. */
  status: number | null;
  error?: string;
}

/**
 * Posts JSON to one URL, signed, in the background: `send` returns at once and a failed POST
 * (network error, timeout, 429 or 5xx) is tried again with exponential backoff. A 4xx other
 * than 429 is the receiver refusing the message, so it is not retried.
 */
export class WebhookSender {
  private pending = 0;
  private readonly inflight = new Set<Promise<Delivery>>();
  readonly counts = { delivered: 0, failed: 0, dropped: 0 };
  private closed = false;
  /** Cuts the waits between attempts short when the server stops. */
  private readonly stop = new AbortController();

  constructor(private readonly opts: WebhookOptions) {}

  /** Queues a delivery; `done` hears how it ended (after every retry). False when dropped. */
  send(message: unknown, done?: (d: Delivery) => void): boolean {
    if (this.closed || this.pending >= (this.opts.maxPending ?? 1000)) {
      this.counts.dropped++;
      return false;
    }
    this.pending++;
    const body = JSON.stringify(message);
    const p = this.deliver(body).then((d) => {
      this.pending--;
      this.inflight.delete(p);
      if (d.delivered) this.counts.delivered++;
      else this.counts.failed++;
      done?.(d);
      return d;
    });
    this.inflight.add(p);
    return true;
  }

  get queued(): number {
    return this.pending;
  }

  /** Stops taking new deliveries and waits up to `ms` for those under way. */
  async close(ms = 2000): Promise<void> {
    this.closed = true;
    this.stop.abort();
    if (this.inflight.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.allSettled([...this.inflight]), new Promise((r) => (timer = setTimeout(r, ms)))]);
    clearTimeout(timer);
  }

  private async deliver(body: string): Promise<Delivery> {
    const signature = signBody(body, this.opts.secret);
    let status: number | null = null;
    let error: string | undefined;
    for (let attempt = 1; attempt <= this.opts.retries + 1; attempt++) {
      try {
        const res = await fetch(this.opts.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', [SIGNATURE_HEADER]: signature, 'user-agent': 'bulwark-gateway' },
          body,
          signal: AbortSignal.timeout(this.opts.timeoutMs),
        });
        status = res.status;
        await res.arrayBuffer().catch(() => undefined);
        error = undefined;
        if (res.ok) return { delivered: true, attempts: attempt, status };
        if (res.status !== 429 && res.status < 500) return { delivered: false, attempts: attempt, status, error: `the receiver refused it with HTTP ${res.status}` };
        error = `HTTP ${res.status}`;
      } catch (e) {
        status = null;
        error = (e as Error).name === 'TimeoutError' ? `no answer within ${this.opts.timeoutMs} ms` : (e as Error).message;
      }
      if (attempt <= this.opts.retries && !this.closed) {
        // Retrying keeps the process alive, as a request in flight would.
        const wait = this.opts.backoffMs * 2 ** (attempt - 1) * (0.8 + 0.4 * Math.random());
        await new Promise<void>((resolve) => {
          const signal = this.stop.signal;
          const timer = setTimeout(done, wait);
          function done() {
            clearTimeout(timer);
            signal.removeEventListener('abort', done);
            resolve();
          }
          signal.addEventListener('abort', done);
        });
      } else if (this.closed) {
        return { delivered: false, attempts: attempt, status, error: `${error}; the server stopped before another attempt` };
      }
    }
    return { delivered: false, attempts: this.opts.retries + 1, status, ...(error ? { error } : {}) };
  }
}
