import * as tfl from '@tensorflow/tfjs-layers';
import { BulwarkError, type Dataset, type Progress } from '../../core/index.js';
import { TfjsModel } from '../../engines/index.js';
import { createZooModel, featureStats, type ZooArchitecture } from '../../zoo/index.js';
import { logitConfidence } from './membership.js';

/**
 * Training one LiRA shadow model: the same code runs in a worker thread and, when workers
 * are unavailable, in the calling thread. Everything here is plain data so it can cross
 * a thread boundary.
 */

export type ShadowArchitecture =
  /** A built-in architecture; `standardize` adds the zoo's frozen standardiser for tabular data. */
  | { kind: 'zoo'; architecture: ZooArchitecture; standardize: boolean }
  /** A tfjs-layers model topology (model.json's modelTopology), trained from fresh weights. */
  | { kind: 'topology'; topology: object };

export interface ShadowTraining {
  epochs: number;
  batchSize: number;
  learningRate: number;
}

/** The whole candidate data once, and which rows each shadow scores. */
export interface ShadowData {
  x: Float32Array;
  shape: number[];
  y: Int32Array;
  classNames: string[];
  /** Rows whose confidence each shadow reports (the evaluation pool). */
  poolIdx: Int32Array;
  /** Score from probabilities when the target only answers with probabilities, so both are scored alike. */
  scoreFrom: 'auto' | 'probabilities';
}

export interface ShadowJob {
  shadow: number;
  trainIdx: Int32Array;
  seed: number;
}

function rows(data: ShadowData, idx: Int32Array, name: string): Dataset {
  const size = data.shape.slice(1).reduce((a, b) => a * b, 1);
  const x = new Float32Array(idx.length * size);
  const y = new Int32Array(idx.length);
  idx.forEach((r, i) => {
    x.set(data.x.subarray(r * size, (r + 1) * size), i * size);
    y[i] = data.y[r];
  });
  return { name, x: { data: x, shape: [idx.length, ...data.shape.slice(1)] }, y, classNames: data.classNames };
}

/** Every initializer and dropout seed in a topology replaced, so each shadow starts from its own weights. */
function reseed(node: unknown, seed: { next: number }): unknown {
  if (Array.isArray(node)) return node.map((v) => reseed(v, seed));
  if (node && typeof node === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(node)) out[k] = k === 'seed' ? seed.next++ : reseed(v, seed);
    return out;
  }
  return node;
}

async function buildShadow(arch: ShadowArchitecture, train: Dataset, numClasses: number, seed: number): Promise<TfjsModel> {
  if (arch.kind === 'zoo') {
    return createZooModel(arch.architecture, {
      inputShape: train.x.shape.slice(1),
      numClasses,
      classNames: train.classNames,
      seed,
      name: `shadow-${seed}`,
      standardize: arch.standardize ? featureStats(train.x) : undefined,
    });
  }
  return fromTopology(arch.topology, seed, `shadow-${seed}`, train.classNames);
}

async function fromTopology(topology: object, seed: number, name: string, classNames?: readonly string[]): Promise<TfjsModel> {
  let net: tfl.LayersModel;
  try {
    net = await tfl.models.modelFromJSON({ modelTopology: reseed(topology, { next: seed * 1000 }) as never });
  } catch (e) {
    throw new BulwarkError('E_MODEL_FORMAT', `the model's architecture cannot be rebuilt: ${(e as Error).message}`);
  }
  return new TfjsModel(net, { name, classNames });
}

/** The same architecture with fresh weights (every initializer and dropout reseeded from `seed`). */
export function freshCopy(model: TfjsModel, seed: number, name = `${model.info.name} (fresh)`): Promise<TfjsModel> {
  return fromTopology(model.net.toJSON(null, false) as object, seed, name, model.info.classNames);
}

/** Trains one shadow on its rows and returns its logit-scaled confidence on the pool. */
export async function trainShadow(arch: ShadowArchitecture, training: ShadowTraining, data: ShadowData, job: ShadowJob, progress?: Progress): Promise<Float64Array> {
  const train = rows(data, job.trainIdx, `shadow ${job.shadow}`);
  const model = await buildShadow(arch, train, data.classNames.length, job.seed);
  try {
    await model.fit(train, { epochs: training.epochs, batchSize: training.batchSize, learningRate: training.learningRate, seed: job.seed, progress });
    const pool = rows(data, data.poolIdx, 'pool');
    return await logitConfidence(model, pool.x, pool.y, data.scoreFrom);
  } finally {
    model.dispose();
  }
}
