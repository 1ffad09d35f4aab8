import { argmaxRows, modelAccuracy, type Dataset, type Predictor, type Samples } from '../../core/index.js';
import { applyTrigger, type Trigger } from './triggers.js';

/** Share of rows predicted as labelled: BackdoorBench's clean accuracy (C-Acc) on clean data. */
export async function cleanAccuracy(model: Predictor, ds: Dataset): Promise<number> {
  return modelAccuracy(model, ds);
}

export interface BackdoorMetrics {
  /** Attack success rate: triggered inputs (whose class is not already the target) classified as the target. */
  asr: number;
  /** Robust accuracy: triggered inputs still classified as their true class. */
  robustAccuracy: number;
  /** Triggered inputs measured. */
  evaluated: number;
}

/** ASR and robust accuracy (BackdoorBench's names) of a trigger on held-out data. */
export async function backdoorMetrics(model: Predictor, test: Dataset, trigger: Trigger, targetOf: (y: number) => number): Promise<BackdoorMetrics> {
  const rows: number[] = [];
  for (let i = 0; i < test.y.length; i++) if (targetOf(test.y[i]) !== test.y[i]) rows.push(i);
  if (rows.length === 0) return { asr: NaN, robustAccuracy: NaN, evaluated: 0 };
  const size = test.x.data.length / test.x.shape[0];
  const x = new Float32Array(rows.length * size);
  rows.forEach((r, i) => x.set(test.x.data.subarray(r * size, (r + 1) * size), i * size));
  const triggered: Samples = applyTrigger({ data: x, shape: [rows.length, ...test.x.shape.slice(1)] }, trigger);
  const predicted = argmaxRows(await model.predict(triggered));
  let hits = 0;
  let robust = 0;
  rows.forEach((r, i) => {
    if (predicted[i] === targetOf(test.y[r])) hits++;
    if (predicted[i] === test.y[r]) robust++;
  });
  return { asr: hits / rows.length, robustAccuracy: robust / rows.length, evaluated: rows.length };
}
