import { BulwarkError, Rng, type Samples } from '../../core/index.js';

/**
 * A backdoor trigger in its general form: x' = (1 − mask) ⊙ x + mask ⊙ pattern, per input
 * value. A BadNets patch is a 0/1 mask over a few pixels; a blended trigger is a constant
 * mask α over the whole input; Neural Cleanse reverse-engineers exactly this form.
 */
export interface Trigger {
  /** Shape of one sample (without the batch dimension). */
  readonly shape: readonly number[];
  readonly mask: Float32Array;
  readonly pattern: Float32Array;
  /** How it was made, for reports. */
  readonly description: string;
}

export type PatchPosition = 'bottom-right' | 'bottom-left' | 'top-right' | 'top-left' | 'centre' | readonly [number, number];
export type PatchPattern = 'solid' | 'checkerboard' | 'random';

export interface PatchOptions {
  /** Side of the square patch in pixels (default 4); for tabular rows, the number of features. */
  size?: number;
  /** Where the patch goes (default 'bottom-right'); [row, column] of its top-left pixel also works. */
  position?: PatchPosition;
  /** Pixels left free between the patch and the border for the corner positions (default 1). */
  margin?: number;
  pattern?: PatchPattern;
  /** The "on" value of the pattern (default: the data's maximum); "off" is the data's minimum. */
  value?: number;
  seed?: number;
}

/** Image geometry of a sample shape: [h, w] or [h, w, c]; null for a flat feature vector. */
export function imageGeometry(shape: readonly number[]): { h: number; w: number; c: number } | null {
  if (shape.length === 2) return { h: shape[0], w: shape[1], c: 1 };
  if (shape.length === 3) return { h: shape[0], w: shape[1], c: shape[2] };
  return null;
}

/**
 * A BadNets patch (Gu et al. 2017). On images it is a size × size square; on tabular rows
 * it sets the last `size` features (or those starting at position[1]) to the pattern.
 */
export function patchTrigger(shape: readonly number[], range: DataRange, opts: PatchOptions = {}): Trigger {
  const size = opts.size ?? 4;
  const margin = opts.margin ?? 1;
  const pattern = opts.pattern ?? 'solid';
  const on = opts.value ?? range.max;
  const off = range.min;
  if (!Number.isInteger(size) || size < 1) throw new BulwarkError('E_USAGE', `patch size must be a positive integer, got ${size}`);
  if (!Number.isInteger(margin) || margin < 0) throw new BulwarkError('E_USAGE', `patch margin must be a non-negative integer, got ${margin}`);
  if (!['solid', 'checkerboard', 'random'].includes(pattern)) throw new BulwarkError('E_USAGE', `patch pattern must be solid, checkerboard or random, got '${pattern}'`);
  const total = shape.reduce((a, b) => a * b, 1);
  const mask = new Float32Array(total);
  const values = new Float32Array(total);
  const rng = new Rng(opts.seed ?? 42);
  const cell = (i: number, j: number): number => {
    if (pattern === 'solid') return on;
    if (pattern === 'checkerboard') return (i + j) % 2 === 0 ? on : off;
    return rng.next() < 0.5 ? on : off;
  };
  const geo = imageGeometry(shape);
  if (!geo) {
    if (size > total) throw new BulwarkError('E_USAGE', `a patch of ${size} features does not fit rows of ${total} features`);
    const start = Array.isArray(opts.position) ? opts.position[1] : total - size;
    if (start < 0 || start + size > total) throw new BulwarkError('E_USAGE', `a patch of ${size} features at ${start} does not fit rows of ${total} features`);
    // Each feature set to its own column's maximum (or pattern): a rare but in-range combination.
    for (let j = 0; j < size; j++) {
      mask[start + j] = 1;
      const colMax = opts.value ?? range.columnMax?.[start + j] ?? on;
      const colMin = range.columnMin?.[start + j] ?? off;
      values[start + j] = cell(0, j) === on ? colMax : colMin;
    }
    return { shape: [...shape], mask, pattern: values, description: `${pattern} patch on features ${start}–${start + size - 1}` };
  }
  const { h, w, c } = geo;
  if (size + 2 * margin > Math.min(h, w) && !Array.isArray(opts.position)) {
    throw new BulwarkError('E_USAGE', `a ${size}×${size} patch with a ${margin}-pixel margin does not fit ${h}×${w} images`);
  }
  const pos = opts.position ?? 'bottom-right';
  let top: number;
  let left: number;
  if (Array.isArray(pos)) [top, left] = pos as [number, number];
  else if (pos === 'centre') [top, left] = [Math.floor((h - size) / 2), Math.floor((w - size) / 2)];
  else {
    top = String(pos).startsWith('top') ? margin : h - size - margin;
    left = String(pos).endsWith('left') ? margin : w - size - margin;
  }
  if (!(top >= 0 && left >= 0 && top + size <= h && left + size <= w)) {
    throw new BulwarkError('E_USAGE', `a ${size}×${size} patch at row ${top}, column ${left} does not fit ${h}×${w} images`);
  }
  for (let i = 0; i < size; i++) {
    for (let j = 0; j < size; j++) {
      const v = cell(i, j);
      for (let ch = 0; ch < c; ch++) {
        const at = ((top + i) * w + (left + j)) * c + ch;
        mask[at] = 1;
        values[at] = v;
      }
    }
  }
  return { shape: [...shape], mask, pattern: values, description: `${size}×${size} ${pattern} patch at row ${top}, column ${left}` };
}

export interface BlendOptions {
  /** Weight of the trigger image (default 0.2). */
  alpha?: number;
  /** The trigger image (one sample's values); default seeded uniform noise in the data's range. */
  image?: Float32Array;
  seed?: number;
}

/** A blended trigger (Chen et al. 2017): the whole input mixed with a fixed image at weight α. */
export function blendTrigger(shape: readonly number[], range: DataRange, opts: BlendOptions = {}): Trigger {
  const alpha = opts.alpha ?? 0.2;
  if (!(alpha > 0 && alpha <= 1)) throw new BulwarkError('E_USAGE', `blend alpha must be in (0, 1], got ${alpha}`);
  const total = shape.reduce((a, b) => a * b, 1);
  let image = opts.image;
  if (image && image.length !== total) throw new BulwarkError('E_DATA_SHAPE', `the blend image has ${image.length} values but samples have ${total}`);
  if (!image) {
    const rng = new Rng(opts.seed ?? 42);
    image = Float32Array.from({ length: total }, () => range.min + rng.next() * (range.max - range.min));
  }
  return {
    shape: [...shape],
    mask: new Float32Array(total).fill(alpha),
    pattern: Float32Array.from(image),
    description: `${opts.image ? 'image' : 'noise'} blended at α = ${alpha}`,
  };
}

/** The triggered copy of every sample (or of the given rows only). */
export function applyTrigger(x: Samples, trigger: Trigger, rows?: ArrayLike<number>): Samples {
  const size = trigger.mask.length;
  const n = x.shape[0];
  if (x.data.length !== n * size) {
    throw new BulwarkError('E_DATA_SHAPE', `the trigger is for samples of shape [${trigger.shape.join(', ')}] but the data has shape [${x.shape.slice(1).join(', ')}]`);
  }
  const out = Float32Array.from(x.data);
  const stamp = (r: number): void => {
    const o = r * size;
    for (let j = 0; j < size; j++) {
      const m = trigger.mask[j];
      if (m !== 0) out[o + j] = (1 - m) * out[o + j] + m * trigger.pattern[j];
    }
  };
  if (rows) for (let i = 0; i < rows.length; i++) stamp(rows[i]);
  else for (let r = 0; r < n; r++) stamp(r);
  return { data: out, shape: [...x.shape] };
}

/** The trigger as a grey image (mask ⊙ pattern, channels averaged), for reports. */
export function triggerImage(trigger: Trigger): { width: number; height: number; pixels: number[] } | null {
  const geo = imageGeometry(trigger.shape);
  if (!geo) return null;
  const { h, w, c } = geo;
  let max = 0;
  const pixels: number[] = [];
  for (let p = 0; p < h * w; p++) {
    let v = 0;
    for (let ch = 0; ch < c; ch++) v += trigger.mask[p * c + ch] * trigger.pattern[p * c + ch];
    pixels.push(v / c);
    max = Math.max(max, v / c);
  }
  return { width: w, height: h, pixels: pixels.map((v) => (max > 0 ? v / max : 0)) };
}

/** The range of the data, overall and (for tabular rows) per column. */
export interface DataRange {
  min: number;
  max: number;
  columnMin?: Float32Array;
  columnMax?: Float32Array;
}

export function dataRange(x: Samples): DataRange {
  let min = Infinity;
  let max = -Infinity;
  for (const v of x.data) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const range: DataRange = { min: Number.isFinite(min) ? min : 0, max: Number.isFinite(max) ? max : 1 };
  if (x.shape.length === 2) {
    const d = x.shape[1];
    const columnMin = new Float32Array(d).fill(Infinity);
    const columnMax = new Float32Array(d).fill(-Infinity);
    for (let i = 0; i < x.data.length; i++) {
      const j = i % d;
      if (x.data[i] < columnMin[j]) columnMin[j] = x.data[i];
      if (x.data[i] > columnMax[j]) columnMax[j] = x.data[i];
    }
    range.columnMin = columnMin;
    range.columnMax = columnMax;
  }
  return range;
}
