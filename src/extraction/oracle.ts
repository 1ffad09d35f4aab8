import { type Predictor, type Progress, type Samples, sampleCount, sliceSamples } from '../core/index.js';
import { checkAnswers, refusalStatus } from './answers.js';

/** The http engine's running count of rows sent, where the target has one. */
function sentCounter(target: Predictor): (() => number) | null {
  const q = (target as { queries?: unknown }).queries;
  return typeof q === 'number' ? () => (target as unknown as { queries: number }).queries : null;
}

export interface Refusal {
  status: number;
  message: string;
}

/**
 * The target as the attacker reaches it: every row sent is charged to the budget, no call is
 * started that could pass it, and a refusal (revoked, suspended, throttled or spent key) ends
 * the querying instead of the attack. Everything answered is kept for training.
 */
export class Oracle {
  private answeredRows = 0;
  private readonly counter: (() => number) | null;
  private readonly counterStart: number;
  private readonly xs: Float32Array[] = [];
  private readonly ys: Float32Array[] = [];
  refusal: Refusal | null = null;

  constructor(
    private readonly target: Predictor,
    readonly budget: number,
    private readonly batchSize: number,
    private readonly progress: Progress,
  ) {
    this.counter = sentCounter(target);
    this.counterStart = this.counter?.() ?? 0;
  }

  /**
   * Rows charged so far: those answered, or what the http engine counted as sent if that is
   * more (retried attempts are sent again and a server may count them).
   */
  get used(): number {
    return Math.max(this.answeredRows, this.counter ? this.counter() - this.counterStart : 0);
  }

  /** Rows the target answered: what the surrogate is trained on. */
  get answered(): number {
    return this.answeredRows;
  }

  get remaining(): number {
    return Math.max(0, this.budget - this.used);
  }

  /** True once nothing more can be asked: the budget is spent or the target refused. */
  get closed(): boolean {
    return this.refusal !== null || this.remaining === 0;
  }

  /** Sends rows from the start of `x` until all are answered, the budget is spent or the target refuses; returns how many were answered. */
  async ask(x: Samples): Promise<number> {
    const n = sampleCount(x);
    const k = this.target.info.numClasses;
    let done = 0;
    while (done < n && !this.closed) {
      const rows = Math.min(this.batchSize, n - done, this.remaining);
      const chunk = sliceSamples(x, done, done + rows);
      let answers: Samples;
      try {
        answers = await this.target.predict(chunk);
      } catch (e) {
        const status = refusalStatus(e);
        if (status === null) throw e;
        this.refusal = { status, message: (e as Error).message };
        this.progress.log(`the target refused after ${this.answeredRows} answered queries (HTTP ${status}); training on what was answered`);
        break;
      }
      checkAnswers(answers, rows, k, this.target.info.name);
      this.xs.push(Float32Array.from(chunk.data));
      this.ys.push(Float32Array.from(answers.data));
      this.answeredRows += rows;
      done += rows;
      this.progress.advance(rows);
    }
    return done;
  }

  /** Every row answered so far and its answer, in the order asked. */
  collected(sampleShape: readonly number[]): { x: Samples; answers: Samples } {
    const size = sampleShape.reduce((a, b) => a * b, 1);
    const k = this.target.info.numClasses;
    return {
      x: { data: concat(this.xs, this.answeredRows * size), shape: [this.answeredRows, ...sampleShape] },
      answers: { data: concat(this.ys, this.answeredRows * k), shape: [this.answeredRows, k] },
    };
  }
}

function concat(parts: Float32Array[], total: number): Float32Array {
  const out = new Float32Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

