import { BulwarkError } from './errors.js';
import { type Samples, sampleCount, takeLabels, takeSamples } from './samples.js';
import type { Rng } from './rng.js';

/** Labelled data: inputs, integer class labels, and the names that give them meaning. */
export interface Dataset {
  /** Short name shown in reports ("digits", or the file name). */
  readonly name: string;
  readonly x: Samples;
  readonly y: Int32Array;
  /** Name of class i is classNames[i]. */
  readonly classNames: readonly string[];
  /** One name per input feature after encoding (absent for images). */
  readonly featureNames?: readonly string[];
  /** Where the data came from (file paths), for provenance sections. */
  readonly sources?: readonly string[];
}

export interface TrainTestSplit {
  readonly train: Dataset;
  readonly test: Dataset;
}

export function checkDataset(ds: Dataset): Dataset {
  const n = sampleCount(ds.x);
  if (ds.y.length !== n) {
    throw new BulwarkError('E_DATA_SHAPE', `dataset '${ds.name}' has ${n} samples but ${ds.y.length} labels`);
  }
  const k = ds.classNames.length;
  for (let i = 0; i < n; i++) {
    const c = ds.y[i];
    if (c < 0 || c >= k) {
      throw new BulwarkError('E_DATA_VALUE', `dataset '${ds.name}' row ${i}: label ${c} is outside the ${k} known classes`);
    }
  }
  return ds;
}

export function subset(ds: Dataset, indices: ArrayLike<number>, name = ds.name): Dataset {
  return { ...ds, name, x: takeSamples(ds.x, indices), y: takeLabels(ds.y, indices) };
}

/** A seeded split into train and test; the same seed always gives the same split. */
export function splitDataset(ds: Dataset, testCount: number, rng: Rng): TrainTestSplit {
  const n = sampleCount(ds.x);
  if (testCount <= 0 || testCount >= n) {
    throw new BulwarkError('E_USAGE', `cannot hold out ${testCount} of ${n} samples for testing`);
  }
  const order = rng.permutation(n);
  return {
    train: subset(ds, order.subarray(testCount), ds.name),
    test: subset(ds, order.subarray(0, testCount), ds.name),
  };
}

export function classCounts(ds: Dataset): number[] {
  const counts = new Array<number>(ds.classNames.length).fill(0);
  for (const c of ds.y) counts[c]++;
  return counts;
}
