import { argmaxRows, BulwarkError, requireCapability, Rng, silentProgress, type Dataset, type Model, type Predictor, type Progress, type Samples } from '../../../core/index.js';
import type { ClassVerdict } from './clusters.js';

export interface RowDetectorOptions {
  /** Layer whose outputs are examined (default: the penultimate layer, not the logits). */
  layer?: string;
  seed?: number;
  progress?: Progress;
  /** Least persistence gap between a class's two groups that marks it infected (default 0.4). */
  minGap?: number;
  /** The dataset's representations at the layer, when already computed. */
  representations?: Samples;
}

/** Which training rows a detector thinks are poisoned. */
export interface RowDetection {
  method: string;
  layer: string;
  /** Per row, higher = more likely poisoned (for ROC curves). */
  score: Float64Array;
  flagged: Uint8Array;
  classes: ClassVerdict[];
  infectedClasses: number[];
}

/** The penultimate layer of a model that names its layers (TfjsModel has a helper; others: second to last). */
export function defaultLayer(model: Model): string {
  const m = model as Model & { penultimateLayer?: () => string };
  if (typeof m.penultimateLayer === 'function') return m.penultimateLayer();
  requireCapability(model, 'activations', 'backdoor detection');
  const names = model.layerNames();
  return names[Math.max(0, names.length - 2)];
}

export async function representationsOf(model: Model, ds: Dataset, layer: string, algorithm: string): Promise<Samples> {
  requireCapability(model, 'activations', algorithm);
  if (!model.layerNames().includes(layer)) {
    throw new BulwarkError('E_USAGE', `model '${model.info.name}' has no layer '${layer}'; its layers are: ${model.layerNames().join(', ')}`);
  }
  return model.activations(ds.x, layer);
}

export async function detectorInputs(model: Model, ds: Dataset, opts: RowDetectorOptions, algorithm: string): Promise<{ layer: string; reps: Samples; progress: Progress }> {
  const progress = opts.progress ?? silentProgress;
  const layer = opts.layer ?? defaultLayer(model);
  const reps = opts.representations ?? (await representationsOf(model, ds, layer, algorithm));
  if (reps.shape[0] !== ds.y.length) throw new BulwarkError('E_DATA_SHAPE', `${reps.shape[0]} representations for ${ds.y.length} rows`);
  return { layer, reps, progress };
}

export function membersOf(y: Int32Array, c: number): Int32Array {
  const out: number[] = [];
  for (let i = 0; i < y.length; i++) if (y[i] === c) out.push(i);
  return Int32Array.from(out);
}

/** The members' representations, centred on their mean (float64, members × width). */
export function centredRows(reps: Samples, members: Int32Array): { z: Float64Array; width: number } {
  const width = reps.data.length / reps.shape[0];
  const m = members.length;
  const z = new Float64Array(m * width);
  const mean = new Float64Array(width);
  for (let i = 0; i < m; i++) {
    const o = members[i] * width;
    for (let j = 0; j < width; j++) mean[j] += reps.data[o + j];
  }
  for (let j = 0; j < width; j++) mean[j] /= Math.max(1, m);
  for (let i = 0; i < m; i++) {
    const o = members[i] * width;
    for (let j = 0; j < width; j++) z[i * width + j] = reps.data[o + j] - mean[j];
  }
  return { z, width };
}

/**
 * Superimposes inputs: saturating addition for data that start at 0 (images: the brighter
 * pixel wins, as in STRIP), the mean otherwise. `parts` are offsets into `data`.
 */
export function superimpose(data: Float32Array, parts: number[], size: number, range: { min: number; max: number }, out: Float32Array, at: number): void {
  const additive = range.min >= 0;
  for (let j = 0; j < size; j++) {
    let v = 0;
    for (const o of parts) v += data[o + j];
    out[at + j] = additive ? Math.min(range.max, v) : v / parts.length;
  }
}

/**
 * Per row: the share of `trials` copies, each with `overlays` random inputs of other classes
 * superimposed, that the model still assigns to the row's label. A trigger survives the
 * overlay; the features of a clean row mostly do not.
 */
export async function persistence(
  model: Predictor,
  ds: Dataset,
  rows: ArrayLike<number>,
  opts: { trials?: number; overlays?: number; seed?: number } = {},
): Promise<Float64Array> {
  const trials = opts.trials ?? 4;
  const overlays = opts.overlays ?? 2;
  const n = ds.y.length;
  const size = ds.x.data.length / n;
  const rng = new Rng(opts.seed ?? 42);
  let min = Infinity;
  let max = -Infinity;
  for (const v of ds.x.data) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const out = new Float64Array(rows.length);
  const BATCH = 256;
  for (let s = 0; s < rows.length; s += BATCH) {
    const e = Math.min(rows.length, s + BATCH);
    const x = new Float32Array((e - s) * trials * size);
    for (let i = s; i < e; i++) {
      const r = rows[i];
      for (let t = 0; t < trials; t++) {
        const parts = [r * size];
        for (let o = 0; o < overlays; o++) {
          let other = rng.int(n);
          for (let tries = 0; ds.y[other] === ds.y[r] && tries < 50; tries++) other = rng.int(n);
          parts.push(other * size);
        }
        superimpose(ds.x.data, parts, size, { min, max }, x, ((i - s) * trials + t) * size);
      }
    }
    const predicted = argmaxRows(await model.predict({ data: x, shape: [(e - s) * trials, ...ds.x.shape.slice(1)] }));
    for (let i = s; i < e; i++) {
      let kept = 0;
      for (let t = 0; t < trials; t++) if (predicted[(i - s) * trials + t] === ds.y[rows[i]]) kept++;
      out[i] = kept / trials;
    }
  }
  return out;
}
