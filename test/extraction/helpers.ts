import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { subset, type Dataset, type Predictor, type Samples } from '../../src/core/index.js';
import { loadDigitsSplit } from '../../src/data/index.js';
import { initTfjs, saveTfjsModel, type TfjsModel } from '../../src/engines/index.js';
import { createZooModel } from '../../src/zoo/index.js';

export function tempDir(prefix: string): string {
  return mkdtempSync(path.join(os.tmpdir(), `bulwark-${prefix}-`));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

const range = (n: number, from = 0) => Array.from({ length: n }, (_, i) => from + i);

export interface DigitsVictim {
  target: TfjsModel;
  /** Digits the target never saw, without their labels: the attacker's own data. */
  pool: Samples;
  /** 1,000 test digits: where fidelity and accuracy are measured. */
  holdout: Dataset;
}

/**
 * The victim: a digits MLP trained for 5 epochs on the first 4,000 training digits (~91% test
 * accuracy, a second or two). The attacker's pool is the next 4,000, so it never holds the
 * target's own training data.
 */
export async function digitsVictim(dir?: string): Promise<DigitsVictim> {
  await initTfjs();
  const d = await loadDigitsSplit();
  const target = createZooModel('mlp', { inputShape: [28, 28, 1], numClasses: 10, classNames: d.train.classNames, seed: 1, name: dir ?? 'digits-mlp' });
  await target.fit(subset(d.train, range(4000)), { epochs: 5, seed: 1 });
  if (dir) await saveTfjsModel(target, dir, { classNames: [...d.train.classNames], dataset: 'digits', architecture: 'mlp', seed: 1 });
  return { target, pool: subset(d.train, range(4000, 4000)).x, holdout: subset(d.test, range(1000)) };
}

/** The model with every row it is asked about counted: the attacker's bill as the target sees it. */
export function counted(model: Predictor): Predictor & { rows: number; calls: number } {
  const c = {
    info: model.info,
    rows: 0,
    calls: 0,
    async predict(x: Samples) {
      c.rows += x.shape[0];
      c.calls += 1;
      return model.predict(x);
    },
  };
  return c;
}
