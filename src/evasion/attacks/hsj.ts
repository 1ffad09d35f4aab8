import { BulwarkError, Rng, sampleSize, silentProgress, type Model, type Samples } from '../../core/index.js';
import { budgetOption, predictScores } from './blackbox.js';
import { reached, resolveCommon, rowNorm, type AttackOptions, type EvasionResult, type Resolved } from './common.js';

export interface HsjOptions extends Omit<AttackOptions, 'eps'> {
  /**
   * Perturbation size that counts as a success. When given, a sample stops as soon as its
   * adversarial is this close; without it the attack spends the whole budget shrinking it.
   */
  eps?: number;
  /** Model queries allowed per sample, the clean query included. Default 1000. */
  budget?: number;
  /** Default 'l2' (the attack's natural geometry). */
  norm?: AttackOptions['norm'];
  /** Queries of the first gradient estimate; grows with √iteration. Default 100. */
  initEvals?: number;
  /** Cap on the queries of one gradient estimate. Default 10000. */
  maxEvals?: number;
  /** Random points tried to find a first adversarial. Default 100. */
  initTries?: number;
  /** Binary-search precision factor (the paper's γ). Default 1. */
  gamma?: number;
}

/**
 * HopSkipJump (Chen et al. 2020): a decision-based attack that needs only the predicted
 * label. From a first misclassified point it alternates a binary search to the decision
 * boundary, a Monte-Carlo estimate of the boundary's normal from labels alone, and a
 * geometric step along it, shrinking the perturbation each round. The samples move in
 * lockstep so that each round's queries go to the model in a few large batches.
 */
export async function hopSkipJump(model: Model, x: Samples, y: Int32Array, opts: HsjOptions = {}): Promise<EvasionResult> {
  const r = resolveCommon('HopSkipJump', model, x, y, { ...opts, norm: opts.norm ?? 'l2' }, false);
  if (r.clip === null) {
    throw new BulwarkError('E_USAGE', 'HopSkipJump needs the valid input range (clip: [min, max]) to draw its random starting points');
  }
  const budget = budgetOption('HopSkipJump', opts.budget ?? 1000);
  const initEvals = positiveInt('initEvals', opts.initEvals ?? 100);
  const maxEvals = positiveInt('maxEvals', opts.maxEvals ?? 10000);
  const initTries = positiveInt('initTries', opts.initTries ?? 100);
  const gamma = opts.gamma ?? 1;
  if (!(gamma > 0) || !Number.isFinite(gamma)) throw new BulwarkError('E_USAGE', `HopSkipJump: gamma must be a positive number, not ${gamma}`);
  const s = new HsjState(model, x, y, r, budget);
  const t0 = performance.now();
  const progress = r.progress ?? silentProgress;

  await s.start();
  await s.initialise(initTries);
  const theta = r.norm === 'l2' ? gamma / (s.d * Math.sqrt(s.d)) : gamma / (s.d * s.d);
  await s.toBoundary(s.live(), theta);
  progress.start('HopSkipJump', budget);
  let lastQueries = 0;
  for (let j = 1; ; j++) {
    const rows = s.live();
    if (rows.length === 0) break;
    const evals = Math.min(maxEvals, Math.floor(initEvals * Math.sqrt(j)));
    const updates = new Map<number, Float64Array>();
    for (const i of rows) {
      const delta = j === 1 ? 0.1 * (r.clip[1] - r.clip[0]) : (r.norm === 'l2' ? Math.sqrt(s.d) : s.d) * theta * s.dist[i];
      const g = await s.estimateGradient(i, Math.min(evals, s.left(i)), delta);
      if (g) updates.set(i, g);
    }
    await s.geometricStep([...updates.keys()], updates, j);
    await s.toBoundary([...updates.keys()], theta);
    const spent = Math.max(...Array.from(s.queries));
    progress.advance(spent - lastQueries, `median distance ${s.medianDistance().toPrecision(3)}`);
    lastQueries = spent;
  }
  progress.done();
  return s.result(t0);
}

class HsjState {
  readonly d: number;
  readonly n: number;
  readonly queries: Int32Array;
  /** The current adversarial point of each sample (always one the model has labelled). */
  readonly cur: Float32Array;
  readonly curLabel: Int32Array;
  readonly dist: Float64Array;
  readonly found: boolean[];
  readonly best: Float32Array;
  readonly bestLabel: Int32Array;
  readonly bestDist: Float64Array;
  cleanPredicted: Int32Array = new Int32Array(0);
  private readonly rng: Rng;

  constructor(
    private readonly model: Model,
    private readonly x: Samples,
    private readonly y: Int32Array,
    private readonly r: Resolved,
    private readonly budget: number,
  ) {
    this.d = sampleSize(x);
    this.n = x.shape[0];
    this.queries = new Int32Array(this.n);
    this.cur = new Float32Array(x.data);
    this.best = new Float32Array(x.data);
    this.curLabel = new Int32Array(this.n);
    this.bestLabel = new Int32Array(this.n);
    this.dist = new Float64Array(this.n).fill(Infinity);
    this.bestDist = new Float64Array(this.n).fill(Infinity);
    this.found = new Array<boolean>(this.n).fill(false);
    this.rng = new Rng(r.seed);
  }

  left(i: number): number {
    return this.budget - this.queries[i];
  }

  private target(i: number): number {
    return this.r.targets ? this.r.targets[i] : -1;
  }

  private isAdversarial(i: number, label: number): boolean {
    return reached(label, this.y[i], this.target(i));
  }

  /** Samples still worth a round: a start found, budget left, and not yet within eps. */
  live(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.n; i++) {
      const closeEnough = this.bestDist[i] === 0 || (Number.isFinite(this.r.eps) && this.bestDist[i] <= this.r.eps);
      if (this.found[i] && this.left(i) > 0 && !closeEnough) out.push(i);
    }
    return out;
  }

  /** Labels of the given points (rows × d), one query charged to each owner. */
  private async ask(points: Float32Array, owners: number[]): Promise<Int32Array> {
    if (owners.length === 0) return new Int32Array(0);
    const q = { data: points, shape: [owners.length, ...this.x.shape.slice(1)] };
    return (await predictScores(this.model, q, owners, this.r.batchSize, this.queries)).labels;
  }

  private accept(i: number, point: Float32Array, offset: number, label: number): void {
    this.cur.set(point.subarray(offset, offset + this.d), i * this.d);
    this.curLabel[i] = label;
    this.dist[i] = rowNorm(this.cur, this.x.data, i * this.d, this.d, this.r.norm);
    this.found[i] = true;
    if (this.dist[i] < this.bestDist[i]) {
      this.bestDist[i] = this.dist[i];
      this.bestLabel[i] = label;
      this.best.set(this.cur.subarray(i * this.d, (i + 1) * this.d), i * this.d);
    }
  }

  /** The clean query: an input the model already gets wrong needs no perturbation. */
  async start(): Promise<void> {
    const all = Array.from({ length: this.n }, (_, i) => i);
    this.cleanPredicted = await this.ask(this.x.data, all);
    for (const i of all) if (this.isAdversarial(i, this.cleanPredicted[i])) this.accept(i, this.x.data, i * this.d, this.cleanPredicted[i]);
  }

  /** Uniform noise until misclassified, then a binary search along the blend towards x. */
  async initialise(tries: number): Promise<void> {
    const [lo, hi] = this.r.clip as readonly [number, number];
    const d = this.d;
    const noise = new Map<number, Float32Array>();
    for (let t = 0; t < tries; t++) {
      const rows = [...Array(this.n).keys()].filter((i) => !this.found[i] && this.left(i) > 0);
      if (rows.length === 0) break;
      const pts = new Float32Array(rows.length * d);
      for (let j = 0; j < pts.length; j++) pts[j] = lo + (hi - lo) * this.rng.next();
      const labels = await this.ask(pts, rows);
      rows.forEach((i, a) => {
        if (!this.isAdversarial(i, labels[a])) return;
        this.accept(i, pts, a * d, labels[a]);
        noise.set(i, pts.slice(a * d, (a + 1) * d));
      });
    }
    const low = new Map<number, number>();
    const high = new Map<number, number>();
    for (const i of noise.keys()) {
      low.set(i, 0);
      high.set(i, 1);
    }
    for (;;) {
      const rows = [...noise.keys()].filter((i) => high.get(i)! - low.get(i)! > 0.001 && this.left(i) > 0);
      if (rows.length === 0) break;
      const pts = new Float32Array(rows.length * d);
      rows.forEach((i, a) => {
        const mid = (low.get(i)! + high.get(i)!) / 2;
        const nz = noise.get(i)!;
        for (let j = 0; j < d; j++) pts[a * d + j] = (1 - mid) * this.x.data[i * d + j] + mid * nz[j];
      });
      const labels = await this.ask(pts, rows);
      rows.forEach((i, a) => {
        const mid = (low.get(i)! + high.get(i)!) / 2;
        if (this.isAdversarial(i, labels[a])) {
          high.set(i, mid);
          this.accept(i, pts, a * d, labels[a]);
        } else low.set(i, mid);
      });
    }
  }

  /** Binary search between x and the current point, to just on the adversarial side of the boundary. */
  async toBoundary(rows: number[], theta: number): Promise<void> {
    const d = this.d;
    const end = new Map<number, Float32Array>();
    const low = new Map<number, number>();
    const high = new Map<number, number>();
    const thr = new Map<number, number>();
    for (const i of rows) {
      end.set(i, this.cur.slice(i * d, (i + 1) * d));
      low.set(i, 0);
      const h = this.r.norm === 'l2' ? 1 : this.dist[i];
      high.set(i, h);
      thr.set(i, this.r.norm === 'l2' ? theta : Math.min(h * theta, theta));
    }
    for (;;) {
      const pending = rows.filter((i) => (high.get(i)! - low.get(i)!) / thr.get(i)! > 1 && this.left(i) > 0);
      if (pending.length === 0) break;
      const pts = new Float32Array(pending.length * d);
      pending.forEach((i, a) => {
        const mid = (low.get(i)! + high.get(i)!) / 2;
        const e = end.get(i)!;
        for (let j = 0; j < d; j++) {
          const x0 = this.x.data[i * d + j];
          pts[a * d + j] = this.r.norm === 'l2' ? (1 - mid) * x0 + mid * e[j] : Math.max(x0 - mid, Math.min(x0 + mid, e[j]));
        }
      });
      const labels = await this.ask(pts, pending);
      pending.forEach((i, a) => {
        const mid = (low.get(i)! + high.get(i)!) / 2;
        if (this.isAdversarial(i, labels[a])) {
          high.set(i, mid);
          this.accept(i, pts, a * d, labels[a]);
        } else low.set(i, mid);
      });
    }
  }

  /** Direction of the boundary's normal at the current point, from the labels of `evals` random probes. */
  async estimateGradient(i: number, evals: number, delta: number): Promise<Float64Array | null> {
    if (evals < 2) return null;
    const d = this.d;
    const [lo, hi] = this.r.clip as readonly [number, number];
    const pts = new Float32Array(evals * d);
    const dirs = new Float32Array(evals * d);
    const u = new Float64Array(d);
    for (let e = 0; e < evals; e++) {
      let s = 0;
      for (let j = 0; j < d; j++) {
        u[j] = this.r.norm === 'l2' ? this.rng.normal() : 2 * this.rng.next() - 1;
        s += u[j] * u[j];
      }
      const len = Math.sqrt(s) || 1;
      for (let j = 0; j < d; j++) {
        const c = this.cur[i * d + j];
        const p = Math.fround(Math.max(lo, Math.min(hi, c + (delta * u[j]) / len)));
        pts[e * d + j] = p;
        dirs[e * d + j] = (p - c) / delta;
      }
    }
    const labels = await this.ask(pts, new Array<number>(evals).fill(i));
    const f = Array.from(labels, (l) => (this.isAdversarial(i, l) ? 1 : -1));
    const mean = f.reduce((a, b) => a + b, 0) / evals;
    // Subtracting the mean decision is the paper's baseline; all-equal answers keep their sign.
    const w = f.map((v) => (mean === 1 || mean === -1 ? v : v - mean));
    const g = new Float64Array(d);
    for (let e = 0; e < evals; e++) for (let j = 0; j < d; j++) g[j] += w[e] * dirs[e * d + j];
    let s = 0;
    for (const v of g) s += v * v;
    const len = Math.sqrt(s);
    if (!(len > 0)) return null;
    for (let j = 0; j < d; j++) g[j] /= len;
    if (this.r.norm === 'linf') for (let j = 0; j < d; j++) g[j] = Math.sign(g[j]);
    return g;
  }

  /** A step of size dist/√j along the update, halved until the point is still adversarial. */
  async geometricStep(rows: number[], updates: Map<number, Float64Array>, j: number): Promise<void> {
    const d = this.d;
    const [lo, hi] = this.r.clip as readonly [number, number];
    const step = new Map<number, number>();
    for (const i of rows) step.set(i, this.dist[i] / Math.sqrt(j));
    let pending = rows;
    for (let halvings = 0; halvings < 40 && pending.length > 0; halvings++) {
      pending = pending.filter((i) => this.left(i) > 0);
      const pts = new Float32Array(pending.length * d);
      pending.forEach((i, a) => {
        const g = updates.get(i)!;
        const sz = step.get(i)!;
        for (let k = 0; k < d; k++) pts[a * d + k] = Math.max(lo, Math.min(hi, this.cur[i * d + k] + sz * g[k]));
      });
      const labels = await this.ask(pts, pending);
      const next: number[] = [];
      pending.forEach((i, a) => {
        if (this.isAdversarial(i, labels[a])) {
          // Not `accept`: the point may be further from x; only the binary search after it shrinks the distance.
          this.cur.set(pts.subarray(a * d, (a + 1) * d), i * d);
          this.curLabel[i] = labels[a];
          this.dist[i] = rowNorm(this.cur, this.x.data, i * d, d, this.r.norm);
        } else {
          step.set(i, step.get(i)! / 2);
          next.push(i);
        }
      });
      pending = next;
    }
  }

  medianDistance(): number {
    const v = Array.from(this.bestDist).filter(Number.isFinite).sort((a, b) => a - b);
    return v.length === 0 ? NaN : v[Math.floor(v.length / 2)];
  }

  result(t0: number): EvasionResult {
    const adversarial = new Float32Array(this.x.data);
    const predicted = Int32Array.from(this.cleanPredicted);
    const norms = new Float64Array(this.n);
    const success = new Array<boolean>(this.n).fill(false);
    for (let i = 0; i < this.n; i++) {
      if (!this.found[i]) continue;
      adversarial.set(this.best.subarray(i * this.d, (i + 1) * this.d), i * this.d);
      predicted[i] = this.bestLabel[i];
      norms[i] = this.bestDist[i];
      success[i] = this.bestDist[i] <= this.r.eps;
    }
    return {
      attack: 'hsj',
      norm: this.r.norm,
      eps: Number.isFinite(this.r.eps) ? this.r.eps : null,
      targeted: this.r.targets !== null,
      adversarial: { data: adversarial, shape: [...this.x.shape] },
      success,
      cleanPredicted: this.cleanPredicted,
      predicted,
      norms,
      queries: this.queries,
      seconds: (performance.now() - t0) / 1000,
    };
  }
}

function positiveInt(what: string, v: number): number {
  if (!Number.isInteger(v) || v < 1) throw new BulwarkError('E_USAGE', `HopSkipJump: ${what} must be a positive integer, not ${v}`);
  return v;
}
