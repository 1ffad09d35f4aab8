import { BulwarkError, Rng, checkDataset, type Dataset } from '../../core/index.js';
import { applyTrigger, blendTrigger, dataRange, patchTrigger, type BlendOptions, type PatchOptions, type Trigger } from './triggers.js';

export type BackdoorMode = 'all-to-one' | 'all-to-all';

interface CommonOptions {
  /** Share of the whole dataset to poison, in (0, 1). */
  rate: number;
  seed?: number;
}

export interface LabelFlipOptions extends CommonOptions {
  kind: 'label-flip';
  /** uniform (default): each chosen row gets a random other class; targeted: rows of `source` become `target`. */
  mode?: 'uniform' | 'targeted';
  /** Targeted: the class whose rows are flipped (default: any class but the target). */
  source?: number;
  /** Targeted: the class they are flipped to (default 0). */
  target?: number;
}

export interface BadNetsOptions extends CommonOptions {
  kind: 'badnets';
  /** The class triggered inputs should be taken for (all-to-one; default 0). */
  target?: number;
  /** all-to-one (default): poisoned rows come from other classes and are relabelled `target`; all-to-all: class y becomes y + 1. */
  mode?: BackdoorMode;
  patch?: PatchOptions;
}

export interface BlendedOptions extends CommonOptions {
  kind: 'blended';
  target?: number;
  mode?: BackdoorMode;
  blend?: BlendOptions;
}

export type DirtyPoisonOptions = LabelFlipOptions | BadNetsOptions | BlendedOptions;

export interface PoisonResult {
  /** A poisoned copy; the input dataset is not changed. */
  dataset: Dataset;
  /** Rows changed, ascending. */
  poisonedIndices: Int32Array;
  /** Every row's label before poisoning (to measure detectors against). */
  originalLabels: Int32Array;
  /** The trigger planted (backdoor attacks). */
  trigger?: Trigger;
  /** What a triggered input should be classified as, given its true class. */
  targetOf?: (label: number) => number;
  description: string;
}

/** The label a backdoor maps class y to. */
export function backdoorTarget(mode: BackdoorMode, target: number, numClasses: number): (y: number) => number {
  return mode === 'all-to-all' ? (y) => (y + 1) % numClasses : () => target;
}

/** Label flipping, BadNets and blended triggers: the poisons that need no model. */
export function poisonDataset(ds: Dataset, opts: DirtyPoisonOptions): PoisonResult {
  checkDataset(ds);
  const n = ds.x.shape[0];
  const k = ds.classNames.length;
  const rate = opts.rate;
  if (!(rate > 0 && rate < 1)) throw new BulwarkError('E_USAGE', `poisoning rate must be in (0, 1), got ${rate}`);
  if (k < 2) throw new BulwarkError('E_DATA_SHAPE', `poisoning labels needs at least 2 classes; '${ds.name}' has ${k}`);
  const count = Math.max(1, Math.round(rate * n));
  const rng = new Rng(opts.seed ?? 42);
  const y = Int32Array.from(ds.y);
  const className = (c: number): string => `'${ds.classNames[c]}'`;

  if (opts.kind === 'label-flip') {
    const mode = opts.mode ?? 'uniform';
    if (mode !== 'uniform' && mode !== 'targeted') throw new BulwarkError('E_USAGE', `label-flip mode must be uniform or targeted, got '${String(mode)}'`);
    if (mode === 'uniform') {
      const rows = pick(Array.from({ length: n }, (_, i) => i), count, rng, ds.name, 'rows');
      for (const r of rows) y[r] = (ds.y[r] + 1 + rng.int(k - 1)) % k;
      return result(ds, y, rows, `${rows.length} labels (${pctOf(rows.length, n)}) flipped to a random other class`);
    }
    const target = classArg(opts.target ?? 0, k, 'target');
    const source = opts.source === undefined ? undefined : classArg(opts.source, k, 'source');
    if (source === target) throw new BulwarkError('E_USAGE', 'the source and target classes of a targeted flip must differ');
    const candidates = rowsWhere(ds.y, (c) => (source === undefined ? c !== target : c === source));
    const rows = pick(candidates, count, rng, ds.name, source === undefined ? `rows outside class ${className(target)}` : `rows of class ${className(source)}`);
    for (const r of rows) y[r] = target;
    return result(ds, y, rows, `${rows.length} labels (${pctOf(rows.length, n)}) of ${source === undefined ? 'other classes' : `class ${className(source)}`} flipped to ${className(target)}`);
  }

  if (opts.kind !== 'badnets' && opts.kind !== 'blended') {
    throw new BulwarkError('E_USAGE', `unknown poisoning kind '${(opts as { kind: string }).kind}'; known: label-flip, badnets, blended, clean-label`);
  }
  const mode = opts.mode ?? 'all-to-one';
  if (mode !== 'all-to-one' && mode !== 'all-to-all') throw new BulwarkError('E_USAGE', `backdoor mode must be all-to-one or all-to-all, got '${String(mode)}'`);
  const target = classArg(opts.target ?? 0, k, 'target');
  const shape = ds.x.shape.slice(1);
  const range = dataRange(ds.x);
  const trigger = opts.kind === 'badnets' ? patchTrigger(shape, range, { seed: opts.seed, ...opts.patch }) : blendTrigger(shape, range, { seed: opts.seed, ...opts.blend });
  const targetOf = backdoorTarget(mode, target, k);
  const candidates = mode === 'all-to-one' ? rowsWhere(ds.y, (c) => c !== target) : Array.from({ length: n }, (_, i) => i);
  const rows = pick(candidates, count, rng, ds.name, mode === 'all-to-one' ? `rows outside the target class ${className(target)}` : 'rows');
  for (const r of rows) y[r] = targetOf(ds.y[r]);
  const x = applyTrigger(ds.x, trigger, rows);
  const what = opts.kind === 'badnets' ? 'BadNets' : 'blended';
  const to = mode === 'all-to-one' ? `relabelled ${className(target)}` : 'relabelled y → y + 1';
  return {
    ...result({ ...ds, x }, y, rows, `${what} trigger (${trigger.description}) on ${rows.length} rows (${pctOf(rows.length, n)}), ${to}`, ds.y),
    trigger,
    targetOf,
  };
}

function result(ds: Dataset, y: Int32Array, rows: Int32Array, description: string, originalLabels: Int32Array = ds.y): PoisonResult {
  const sorted = Int32Array.from(rows).sort();
  return { dataset: { ...ds, name: `${ds.name} (poisoned)`, y }, poisonedIndices: sorted, originalLabels: Int32Array.from(originalLabels), description };
}

function pick(candidates: number[], count: number, rng: Rng, name: string, what: string): Int32Array {
  if (count > candidates.length) {
    throw new BulwarkError('E_USAGE', `cannot poison ${count} rows of '${name}': only ${candidates.length} ${what} are eligible; lower the rate`);
  }
  const chosen = Int32Array.from(candidates);
  for (let i = 0; i < count; i++) {
    const j = i + rng.int(chosen.length - i);
    const t = chosen[i];
    chosen[i] = chosen[j];
    chosen[j] = t;
  }
  return chosen.slice(0, count);
}

function rowsWhere(y: Int32Array, f: (c: number) => boolean): number[] {
  const out: number[] = [];
  for (let i = 0; i < y.length; i++) if (f(y[i])) out.push(i);
  return out;
}

function classArg(c: number, k: number, what: string): number {
  if (!Number.isInteger(c) || c < 0 || c >= k) throw new BulwarkError('E_USAGE', `${what} class must be a class index in 0..${k - 1}, got ${c}`);
  return c;
}

function pctOf(a: number, n: number): string {
  return `${((100 * a) / n).toFixed(1)}%`;
}
