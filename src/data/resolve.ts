import { promises as fs } from 'node:fs';
import path from 'node:path';
import { BulwarkError, Rng, splitDataset, type Dataset, type TrainTestSplit } from '../core/index.js';
import { loadDigits, loadDigitsSplit } from './digits.js';
import { loadCsv } from './csv.js';
import { loadJsonl } from './jsonl.js';
import { loadNpy } from './npy.js';

export const BUILTIN_DATASETS = ['digits'] as const;

export interface DatasetSpecOptions {
  /** Label column (CSV/JSONL: a name; NPY: a column index, default the last). */
  label?: string;
  /** Columns left out of the features. */
  drop?: string[];
  /** Seed of the train/test split of a user's file. */
  seed?: number;
  /** Share of a user's file held out for testing. Default 0.2. */
  testFraction?: number;
}

/**
 * One way to name data everywhere: a built-in dataset name, or a CSV, JSONL or NPY file.
 * The built-in digits come with their fixed split; a user's file is split with the seed.
 */
export async function loadDatasetSpec(spec: string, opts: DatasetSpecOptions = {}): Promise<TrainTestSplit & { all: Dataset }> {
  if (spec === 'digits') {
    const [all, split] = await Promise.all([loadDigits(), loadDigitsSplit()]);
    return { all, ...split };
  }
  const all = await loadDatasetFile(spec, opts);
  const fraction = opts.testFraction ?? 0.2;
  if (!(fraction > 0 && fraction < 1)) throw new BulwarkError('E_USAGE', `test fraction must be in (0, 1), got ${fraction}`);
  const n = all.x.shape[0];
  if (n < 2) throw new BulwarkError('E_DATA_SHAPE', `${spec} has ${n} row; at least 2 are needed to hold some out for testing`);
  const testCount = Math.min(n - 1, Math.max(1, Math.round(n * fraction)));
  return { all, ...splitDataset(all, testCount, new Rng(opts.seed ?? 42)) };
}

/** The whole of a built-in dataset or a file, unsplit. */
export async function loadDatasetFile(spec: string, opts: DatasetSpecOptions = {}): Promise<Dataset> {
  if (spec === 'digits') return loadDigits();
  const stat = await fs.stat(spec).catch(() => null);
  const ext = path.extname(spec).toLowerCase();
  if (!stat) {
    if (!/[./\\]/.test(spec)) {
      throw new BulwarkError('E_UNKNOWN_DATASET', `unknown dataset '${spec}'; the built-in datasets are: ${BUILTIN_DATASETS.join(', ')} (or give a .csv, .jsonl or .npy file)`);
    }
    throw new BulwarkError('E_FILE_NOT_FOUND', `dataset file not found: ${spec}`);
  }
  if (ext === '.csv' || ext === '.jsonl' || ext === '.ndjson') {
    if (!opts.label) throw new BulwarkError('E_USAGE', `${spec}: say which column holds the class with --label COL`);
    const tabular = { label: opts.label, drop: opts.drop };
    return ext === '.csv' ? loadCsv(spec, tabular) : loadJsonl(spec, tabular);
  }
  if (ext === '.npy') {
    // Images keep their shape in an .npy only with the labels in a file of their own:
    // `<name>.labels.npy` beside it (as `bulwark attack poison --out` writes them).
    const labelsPath = `${spec.slice(0, -ext.length)}.labels.npy`;
    if (opts.label === undefined && (await fs.stat(labelsPath).catch(() => null))?.isFile()) return loadNpy(spec, { labelsPath });
    let label = -1;
    if (opts.label !== undefined) {
      label = Number(opts.label);
      if (!Number.isInteger(label)) throw new BulwarkError('E_USAGE', `${spec}: for an .npy file --label is a column index (e.g. -1 for the last), got '${opts.label}'`);
    }
    return loadNpy(spec, { label }).catch((e: unknown) => {
      if (e instanceof BulwarkError && e.code === 'E_DATA_SHAPE' && /needs a 2-D array/.test(e.message)) {
        throw new BulwarkError('E_DATA_SHAPE', `${e.message}; for images of that shape, put their class indices (integers, one per sample) in ${labelsPath}`);
      }
      throw e;
    });
  }
  throw new BulwarkError('E_UNKNOWN_DATASET', `cannot tell the format of ${spec} from its extension; use .csv, .jsonl or .npy, or a built-in dataset (${BUILTIN_DATASETS.join(', ')})`);
}
