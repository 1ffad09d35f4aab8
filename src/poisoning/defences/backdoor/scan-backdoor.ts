import { hasCapability, requireCapability, silentProgress, subset, type Capability, type Dataset, type Model, type Progress } from '../../../core/index.js';
import { activationClustering } from './activation-clustering.js';
import { defaultLayer, representationsOf, type RowDetection } from './common.js';
import { neuralCleanse, type NeuralCleanseResult } from './neural-cleanse.js';
import { spectralSignatures } from './spectral.js';
import { StripDetector } from './strip.js';

export type BackdoorMethod = 'spectral' | 'ac' | 'strip' | 'nc';
export const BACKDOOR_METHODS: readonly BackdoorMethod[] = ['spectral', 'ac', 'strip', 'nc'];

const NEEDS: Record<BackdoorMethod, Capability> = { spectral: 'activations', ac: 'activations', strip: 'predict', nc: 'lossGradient' };
const NAMES: Record<BackdoorMethod, string> = { spectral: 'spectral signatures', ac: 'activation clustering', strip: 'STRIP', nc: 'Neural Cleanse' };

export interface BackdoorScanOptions {
  /** Methods to run; default all the model's capabilities allow. Asking for one it cannot run is an error. */
  methods?: BackdoorMethod[];
  layer?: string;
  /** Clean data for STRIP's threshold and Neural Cleanse; default: the rows no row detector flagged. */
  clean?: Dataset;
  /** STRIP's false-rejection rate on clean data (default 0.05). */
  frr?: number;
  /** Neural Cleanse optimisation steps (default 300). */
  steps?: number;
  seed?: number;
  progress?: Progress;
}

export interface BackdoorScan {
  rows: number;
  layer?: string;
  spectral?: RowDetection;
  ac?: RowDetection;
  strip?: { threshold: number; frr: number; entropy: Float64Array; flagged: Uint8Array };
  nc?: NeuralCleanseResult;
  /** Classes some method named, with the methods that named them. */
  infectedClasses: { classIndex: number; className: string; methods: string[] }[];
  /** Rows flagged by any row detector (spectral, AC, STRIP), ascending. */
  flaggedRows: Int32Array;
  /** Per flagged row, the methods that flagged it. */
  rowMethods: Map<number, string[]>;
  /** Where the clean reference data came from. */
  cleanReference: string;
  skipped: { method: string; why: string }[];
}

/**
 * Looks for a backdoor in a trained model with every detector it supports: spectral
 * signatures and activation clustering on the training rows' representations, STRIP on the
 * training rows themselves, and Neural Cleanse on the model.
 */
export async function scanBackdoor(model: Model, ds: Dataset, opts: BackdoorScanOptions = {}): Promise<BackdoorScan> {
  const progress = opts.progress ?? silentProgress;
  const seed = opts.seed ?? 42;
  const skipped: { method: string; why: string }[] = [];
  let methods: BackdoorMethod[];
  if (opts.methods) {
    methods = opts.methods;
    for (const m of methods) requireCapability(model, NEEDS[m], NAMES[m]);
  } else {
    methods = BACKDOOR_METHODS.filter((m) => {
      if (hasCapability(model, NEEDS[m])) return true;
      skipped.push({ method: NAMES[m], why: `the model (${model.info.engine}) has no '${NEEDS[m]}' capability` });
      return false;
    });
  }
  const n = ds.y.length;
  const result: BackdoorScan = { rows: n, infectedClasses: [], flaggedRows: new Int32Array(0), rowMethods: new Map(), cleanReference: '', skipped };
  const rowDetectors = methods.filter((m) => m === 'spectral' || m === 'ac');
  if (rowDetectors.length > 0) {
    const layer = opts.layer ?? defaultLayer(model);
    result.layer = layer;
    progress.start(`representations at '${layer}'`, 1);
    const representations = await representationsOf(model, ds, layer, NAMES[rowDetectors[0]]);
    progress.done();
    if (methods.includes('spectral')) result.spectral = await spectralSignatures(model, ds, { layer, representations, seed, progress });
    if (methods.includes('ac')) result.ac = await activationClustering(model, ds, { layer, representations, seed, progress });
  }
  let clean = opts.clean;
  if (clean) result.cleanReference = `the clean data given (${clean.y.length} rows of '${clean.name}')`;
  else {
    const suspect = new Uint8Array(n);
    for (const det of [result.spectral, result.ac]) if (det) det.flagged.forEach((f, i) => (suspect[i] |= f));
    const keep = [...suspect.keys()].filter((i) => !suspect[i]);
    clean = subset(ds, keep);
    result.cleanReference = rowDetectors.length > 0 ? `the ${keep.length} rows of '${ds.name}' no row detector flagged (give clean data for a sounder reference)` : `all of '${ds.name}' (assumed mostly clean; give clean data for a sounder reference)`;
  }
  if (methods.includes('strip')) {
    progress.start('STRIP', 1);
    const strip = await StripDetector.calibrate(model, clean, { frr: opts.frr ?? 0.05, seed });
    const detected = await strip.detect(ds.x);
    result.strip = { threshold: strip.threshold, frr: strip.frr, entropy: detected.entropy, flagged: detected.flagged };
    progress.done();
  }
  if (methods.includes('nc')) result.nc = await neuralCleanse(model, clean, { steps: opts.steps, seed, progress });

  const named = new Map<number, string[]>();
  const name = (c: number, m: string): void => void named.set(c, [...(named.get(c) ?? []), m]);
  for (const det of [result.spectral, result.ac]) for (const c of det?.infectedClasses ?? []) name(c, det!.method);
  for (const c of result.nc?.flagged ?? []) name(c, 'Neural Cleanse');
  if (result.strip) {
    // STRIP names no class itself. A class is reported when it holds most of the rows STRIP
    // flagged and at least three times the false rejections its size would explain.
    const counts = new Map<number, number>();
    const sizes = new Map<number, number>();
    ds.y.forEach((c) => sizes.set(c, (sizes.get(c) ?? 0) + 1));
    result.strip.flagged.forEach((f, i) => f && counts.set(ds.y[i], (counts.get(ds.y[i]) ?? 0) + 1));
    const total = [...counts.values()].reduce((a, b) => a + b, 0);
    for (const [c, k] of counts) if (k >= 10 && k / total >= 0.5 && k >= 3 * result.strip.frr * sizes.get(c)!) name(c, 'STRIP');
  }
  result.infectedClasses = [...named.entries()].sort((a, b) => a[0] - b[0]).map(([c, m]) => ({ classIndex: c, className: ds.classNames[c] ?? String(c), methods: m }));
  const rows = new Map<number, string[]>();
  const mark = (flags: Uint8Array | undefined, m: string): void => flags?.forEach((f, i) => f && rows.set(i, [...(rows.get(i) ?? []), m]));
  mark(result.spectral?.flagged, 'spectral signatures');
  mark(result.ac?.flagged, 'activation clustering');
  mark(result.strip?.flagged, 'STRIP');
  result.rowMethods = rows;
  result.flaggedRows = Int32Array.from([...rows.keys()].sort((a, b) => a - b));
  return result;
}
