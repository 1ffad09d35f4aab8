import { BulwarkError } from './errors.js';

/**
 * A batch of inputs as one flat Float32Array plus a shape whose first entry is the
 * number of samples. This is how data travels between areas: no framework tensors.
 */
export interface Samples {
  readonly data: Float32Array;
  readonly shape: readonly number[];
}

export function makeSamples(data: Float32Array, shape: readonly number[]): Samples {
  if (shape.length < 1) throw new BulwarkError('E_DATA_SHAPE', 'samples need a shape with at least the sample count');
  const size = shape.reduce((a, b) => a * b, 1);
  if (shape.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new BulwarkError('E_DATA_SHAPE', `invalid shape [${shape.join(', ')}]: every dimension must be a non-negative integer`);
  }
  if (size !== data.length) {
    throw new BulwarkError('E_DATA_SHAPE', `shape [${shape.join(', ')}] needs ${size} values but the data holds ${data.length}`);
  }
  return { data, shape: [...shape] };
}

export function sampleCount(s: Samples): number {
  return s.shape[0];
}

/** Shape of one sample (the shape without the leading count). */
export function sampleShape(s: Samples): number[] {
  return s.shape.slice(1);
}

/** Number of values in one sample. */
export function sampleSize(s: Samples): number {
  return s.shape.slice(1).reduce((a, b) => a * b, 1);
}

/** The samples at the given row indices, copied, in the given order. */
export function takeSamples(s: Samples, indices: ArrayLike<number>): Samples {
  const size = sampleSize(s);
  const n = sampleCount(s);
  const out = new Float32Array(indices.length * size);
  for (let i = 0; i < indices.length; i++) {
    const r = indices[i];
    if (r < 0 || r >= n) throw new BulwarkError('E_DATA_SHAPE', `row ${r} is out of range (0..${n - 1})`);
    out.set(s.data.subarray(r * size, (r + 1) * size), i * size);
  }
  return { data: out, shape: [indices.length, ...sampleShape(s)] };
}

/** Rows [start, end) as a view (no copy). */
export function sliceSamples(s: Samples, start: number, end: number): Samples {
  const size = sampleSize(s);
  const e = Math.min(end, sampleCount(s));
  return { data: s.data.subarray(start * size, e * size), shape: [e - start, ...sampleShape(s)] };
}

/** Index of the largest value in each row of a [n, k] matrix. */
export function argmaxRows(m: Samples): Int32Array {
  const n = m.shape[0];
  const k = sampleSize(m);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    let bestV = -Infinity;
    for (let j = 0; j < k; j++) {
      const v = m.data[i * k + j];
      if (v > bestV) {
        bestV = v;
        best = j;
      }
    }
    out[i] = best;
  }
  return out;
}

/** Share of predictions equal to the labels (NaN when there are none). */
export function labelAccuracy(predicted: Int32Array, y: Int32Array): number {
  let hits = 0;
  for (let i = 0; i < predicted.length; i++) if (predicted[i] === y[i]) hits++;
  return predicted.length > 0 ? hits / predicted.length : NaN;
}

export function takeLabels(y: Int32Array, indices: ArrayLike<number>): Int32Array {
  const out = new Int32Array(indices.length);
  for (let i = 0; i < indices.length; i++) out[i] = y[indices[i]];
  return out;
}
