import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { BulwarkError, Rng, silentProgress, type Dataset, type Model, type Progress, type Samples } from '../../core/index.js';
import { logitConfidence, type MembershipResult } from './membership.js';
import { membershipMetrics, type MetricsOptions } from './roc.js';
import { trainShadow, type ShadowArchitecture, type ShadowData, type ShadowJob, type ShadowTraining } from './shadow.js';
import type { WorkerInit, WorkerReply } from './shadow-worker.js';

/**
 * The likelihood-ratio attack (LiRA) of Carlini et al. (2022), "Membership Inference
 * Attacks From First Principles". Shadow models are trained on random halves of an
 * evaluation pool, so every pool example is IN for half of them and OUT for the rest; the
 * target's confidence on an example is then compared with the two Gaussians fitted to the
 * shadows' confidences (online) or with the OUT Gaussian alone (offline, which needs no
 * shadow trained on the example).
 *
 * The pool is `evaluate` known members (from the target's training set) and as many
 * non-members (held out). Each shadow also trains on the rest of the target's training
 * set, so it sees as much data as the target did.
 */

export interface LiraOptions extends MetricsOptions {
  /** Shadow models (default 16; an even number, at least 4). */
  shadows?: number;
  architecture: ShadowArchitecture;
  training: ShadowTraining;
  /** Members and non-members each in the evaluation pool (default 1000). */
  evaluate?: number;
  /** Worker threads (default: one per core, at most one per shadow); 0 trains in this thread. */
  workers?: number;
  seed?: number;
  progress?: Progress;
}

export interface LiraResult {
  online: MembershipResult;
  offline: MembershipResult;
  shadows: number;
  /** Worker threads that trained shadows (0: all in the calling thread). */
  workers: number;
  seconds: number;
  notes: string[];
}

/** Below this many shadows per side, per-example variances are too noisy: pool them (Carlini et al., §VI). */
const GLOBAL_VARIANCE_BELOW = 32;

export async function liraAttack(target: Model, data: { train: Dataset; test: Dataset }, opts: LiraOptions): Promise<LiraResult> {
  const scoreFrom = typeof (target as { predictLogits?: unknown }).predictLogits === 'function' ? 'auto' : 'probabilities';
  const set = await trainShadowSet(data, { ...opts, scoreFrom });
  const { online, offline } = await liraScore(target, set, opts);
  return { online, offline, shadows: set.inside.length, workers: set.workers, seconds: online.seconds, notes: set.notes };
}

/** Trained shadow models' confidences on an evaluation pool: reusable against every target trained on the same split. */
export interface ShadowSet {
  poolX: Samples;
  poolY: Int32Array;
  isMember: Uint8Array;
  /** scores[s][p]: shadow s's logit-scaled confidence on pool example p. */
  scores: Float64Array[];
  /** inside[s][p]: whether pool example p was in shadow s's training set. */
  inside: Uint8Array[];
  scoreFrom: 'auto' | 'probabilities';
  workers: number;
  seconds: number;
  notes: string[];
  description: string;
}

export async function trainShadowSet(data: { train: Dataset; test: Dataset }, opts: LiraOptions & { scoreFrom?: 'auto' | 'probabilities' }): Promise<ShadowSet> {
  const t0 = performance.now();
  const shadows = opts.shadows ?? 16;
  if (!Number.isInteger(shadows) || shadows < 4 || shadows % 2 !== 0) {
    throw new BulwarkError('E_USAGE', `LiRA needs an even number of shadow models, at least 4 (so each example is IN for half of them), got ${shadows}`);
  }
  const progress = opts.progress ?? silentProgress;
  const rng = new Rng(opts.seed ?? 42);
  const { train, test } = data;
  const size = train.x.data.length / Math.max(1, train.y.length);
  const m = Math.min(opts.evaluate ?? 1000, test.y.length, Math.floor(train.y.length / 2));
  if (m < 2) throw new BulwarkError('E_USAGE', `LiRA needs held-out examples and a training set of at least 4; got ${train.y.length} and ${test.y.length}`);

  // Candidate rows: the whole training set, then the m held-out examples.
  const nTrain = train.y.length;
  const memberRows = rng.permutation(nTrain).slice(0, m);
  const testRows = rng.permutation(test.y.length).slice(0, m);
  const shared = new SharedArrayBuffer((nTrain + m) * size * 4);
  const x = new Float32Array(shared);
  x.set(train.x.data.subarray(0, nTrain * size));
  testRows.forEach((r, i) => x.set(test.x.data.subarray(r * size, (r + 1) * size), (nTrain + i) * size));
  const ySab = new SharedArrayBuffer((nTrain + m) * 4);
  const y = new Int32Array(ySab);
  y.set(train.y);
  testRows.forEach((r, i) => (y[nTrain + i] = test.y[r]));
  const poolIdx = Int32Array.from([...memberRows, ...Array.from({ length: m }, (_, i) => nTrain + i)]);
  const isMember = Uint8Array.from(poolIdx, (_, i) => (i < m ? 1 : 0));

  // Each pool example IN for exactly half the shadows.
  const inside = Array.from({ length: shadows }, () => new Uint8Array(2 * m));
  for (let p = 0; p < 2 * m; p++) {
    const order = rng.permutation(shadows);
    for (let j = 0; j < shadows / 2; j++) inside[order[j]][p] = 1;
  }
  const inPool = new Uint8Array(nTrain + m);
  for (const r of poolIdx) inPool[r] = 1;
  const rest: number[] = [];
  for (let r = 0; r < nTrain; r++) if (!inPool[r]) rest.push(r);
  const jobs: ShadowJob[] = inside.map((mask, s) => ({
    shadow: s,
    trainIdx: Int32Array.from([...rest, ...Array.from(poolIdx).filter((_, p) => mask[p])]),
    seed: (opts.seed ?? 42) * 1000 + s + 1,
  }));

  const scoreFrom = opts.scoreFrom ?? 'auto';
  const poolX = { data: new Float32Array(2 * m * size), shape: [2 * m, ...train.x.shape.slice(1)] };
  poolIdx.forEach((r, i) => poolX.data.set(x.subarray(r * size, (r + 1) * size), i * size));
  const poolY = Int32Array.from(poolIdx, (r) => y[r]);

  const init: WorkerInit = { arch: opts.architecture, training: opts.training, x: shared, shape: [nTrain + m, ...train.x.shape.slice(1)], y: ySab, classNames: [...train.classNames], poolIdx, scoreFrom };
  const notes: string[] = [];
  progress.start(`LiRA: ${shadows} shadow models`, shadows);
  const want = opts.workers ?? Math.max(1, os.availableParallelism?.() ?? os.cpus().length);
  const { scores, workers, failure } = await runShadows(init, jobs, Math.min(want, shadows), progress);
  if (failure) notes.push(`worker threads failed (${failure}); the remaining shadow models were trained one after another in this thread`);
  progress.done();
  const description = `${shadows} shadow models (${opts.architecture.kind === 'zoo' ? opts.architecture.architecture : "the target's architecture"}, ${opts.training.epochs} epochs), each trained on the ${rest.length} non-pool training examples plus a random half of a pool of ${m} members and ${m} non-members`;
  return { poolX, poolY, isMember, scores, inside, scoreFrom, workers, seconds: (performance.now() - t0) / 1000, notes, description };
}

/** Online and offline LiRA against one target, from a trained shadow set. */
export async function liraScore(target: Model, set: ShadowSet, opts: MetricsOptions = {}): Promise<{ online: MembershipResult; offline: MembershipResult }> {
  const t0 = performance.now();
  const targetScores = await logitConfidence(target, set.poolX, set.poolY, set.scoreFrom);
  const { online, offline } = likelihoodRatios(targetScores, set.scores, set.inside);
  const common = { queries: set.poolY.length, seconds: (performance.now() - t0) / 1000 + set.seconds, notes: [...set.notes, set.description] };
  return {
    online: { attack: 'lira-online', ...membershipMetrics(online, set.isMember, opts), ...common },
    offline: { attack: 'lira-offline', ...membershipMetrics(offline, set.isMember, opts), ...common },
  };
}

/** Online and offline LiRA scores from the target's and the shadows' confidences on the pool. */
export function likelihoodRatios(target: Float64Array, shadowScores: Float64Array[], inside: Uint8Array[]): { online: Float64Array; offline: Float64Array } {
  const n = target.length;
  const k = shadowScores.length;
  const muIn = new Float64Array(n);
  const muOut = new Float64Array(n);
  const varIn = new Float64Array(n);
  const varOut = new Float64Array(n);
  let pooledIn = 0;
  let pooledOut = 0;
  let countIn = 0;
  let countOut = 0;
  for (let p = 0; p < n; p++) {
    let si = 0;
    let so = 0;
    let ni = 0;
    let no = 0;
    for (let s = 0; s < k; s++) {
      const v = shadowScores[s][p];
      if (inside[s][p]) {
        si += v;
        ni++;
      } else {
        so += v;
        no++;
      }
    }
    muIn[p] = si / Math.max(1, ni);
    muOut[p] = so / Math.max(1, no);
    for (let s = 0; s < k; s++) {
      const v = shadowScores[s][p];
      if (inside[s][p]) varIn[p] += (v - muIn[p]) ** 2;
      else varOut[p] += (v - muOut[p]) ** 2;
    }
    pooledIn += varIn[p];
    pooledOut += varOut[p];
    countIn += Math.max(0, ni - 1);
    countOut += Math.max(0, no - 1);
    varIn[p] /= Math.max(1, ni - 1);
    varOut[p] /= Math.max(1, no - 1);
  }
  const globalIn = pooledIn / Math.max(1, countIn);
  const globalOut = pooledOut / Math.max(1, countOut);
  const perExample = k / 2 >= GLOBAL_VARIANCE_BELOW;
  const online = new Float64Array(n);
  const offline = new Float64Array(n);
  for (let p = 0; p < n; p++) {
    const vi = Math.max(perExample ? varIn[p] : globalIn, 1e-8);
    const vo = Math.max(perExample ? varOut[p] : globalOut, 1e-8);
    const x = target[p];
    online[p] = -0.5 * ((x - muIn[p]) ** 2 / vi + Math.log(vi)) + 0.5 * ((x - muOut[p]) ** 2 / vo + Math.log(vo));
    offline[p] = (x - muOut[p]) / Math.sqrt(vo);
  }
  return { online, offline };
}

function startWorker(init: WorkerInit): Worker {
  if (import.meta.url.endsWith('.ts')) {
    // Running from the TypeScript sources (the test runner): loader hooks do not reach
    // worker threads on their own, so the worker registers tsx before loading the module.
    const entry = new URL('./shadow-worker.ts', import.meta.url).href;
    const tsx = import.meta.resolve('tsx/esm/api');
    const code = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`;
    return new Worker(code, { eval: true, workerData: init });
  }
  return new Worker(new URL('./shadow-worker.js', import.meta.url), { workerData: init });
}

/**
 * Trains the shadows in `count` worker threads, handing each the next job as it finishes.
 * If the threads cannot start or die, what is left is trained here, one after another.
 */
async function runShadows(init: WorkerInit, jobs: ShadowJob[], count: number, progress: Progress): Promise<{ scores: Float64Array[]; workers: number; failure: string | null }> {
  const scores: Float64Array[] = new Array(jobs.length);
  const queue = [...jobs];
  let failure: string | null = null;
  let started = 0;
  if (count > 0) {
    await new Promise<void>((resolve, reject) => {
      let live = 0;
      let settled = false;
      const finish = (err?: Error) => {
        if (settled) return;
        if (err) {
          settled = true;
          reject(err);
        } else if (live === 0) {
          settled = true;
          resolve();
        }
      };
      for (let w = 0; w < count; w++) {
        let worker: Worker;
        try {
          worker = startWorker(init);
        } catch (e) {
          failure = (e as Error).message;
          continue;
        }
        started++;
        live++;
        let current: ShadowJob | null = null;
        let ended = false;
        const end = () => {
          if (ended) return;
          ended = true;
          live--;
          if (current) queue.push(current);
          current = null;
          void worker.terminate();
          finish();
        };
        const next = () => {
          current = queue.shift() ?? null;
          if (current) worker.postMessage(current);
          else end();
        };
        worker.on('message', (msg: WorkerReply) => {
          if (msg.type === 'ready') next();
          else if (msg.type === 'done') {
            scores[msg.shadow] = msg.scores;
            current = null;
            progress.advance(1, `shadow ${msg.shadow + 1} done`);
            next();
          } else {
            current = null;
            for (const t of [worker]) void t.terminate();
            finish(new BulwarkError('E_USAGE', `training shadow model ${msg.shadow + 1} failed: ${msg.message}`));
          }
        });
        worker.on('error', (e) => {
          failure ??= e.message;
          end();
        });
        worker.on('exit', () => end());
      }
      if (started === 0) finish();
    });
  }
  const left = jobs.filter((j) => !scores[j.shadow]);
  if (left.length > 0) {
    if (count > 0 && !failure) failure = 'no worker thread finished';
    const data: ShadowData = { x: new Float32Array(init.x), shape: init.shape, y: new Int32Array(init.y), classNames: init.classNames, poolIdx: init.poolIdx, scoreFrom: init.scoreFrom };
    for (const job of left) {
      scores[job.shadow] = await trainShadow(init.arch, init.training, data, job);
      progress.advance(1, `shadow ${job.shadow + 1} done`);
    }
  }
  return { scores, workers: started, failure: count > 0 ? failure : null };
}
