import { parentPort, workerData } from 'node:worker_threads';
import { initTfjs } from '../../engines/index.js';
import { trainShadow, type ShadowArchitecture, type ShadowData, type ShadowJob, type ShadowTraining } from './shadow.js';

/**
 * A LiRA worker thread: it starts its own TF.js (backends are per thread), then trains the
 * shadow models it is sent, one at a time, and answers with their scores.
 */

export interface WorkerInit {
  arch: ShadowArchitecture;
  training: ShadowTraining;
  x: SharedArrayBuffer;
  shape: number[];
  y: SharedArrayBuffer;
  classNames: string[];
  poolIdx: Int32Array;
  scoreFrom: 'auto' | 'probabilities';
}

export type WorkerReply = { type: 'ready' } | { type: 'done'; shadow: number; scores: Float64Array } | { type: 'error'; shadow: number; message: string };

const port = parentPort;
if (port) {
  const init = workerData as WorkerInit;
  const data: ShadowData = {
    x: new Float32Array(init.x),
    shape: init.shape,
    y: new Int32Array(init.y),
    classNames: init.classNames,
    poolIdx: init.poolIdx,
    scoreFrom: init.scoreFrom,
  };
  await initTfjs();
  port.on('message', async (job: ShadowJob | null) => {
    if (job === null) {
      port.close();
      return;
    }
    try {
      const scores = await trainShadow(init.arch, init.training, data, job);
      port.postMessage({ type: 'done', shadow: job.shadow, scores } satisfies WorkerReply);
    } catch (e) {
      port.postMessage({ type: 'error', shadow: job.shadow, message: (e as Error).message } satisfies WorkerReply);
    }
  });
  port.postMessage({ type: 'ready' } satisfies WorkerReply);
}
