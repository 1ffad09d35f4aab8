import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { modelAccuracy, type Dataset, type Progress } from '../core/index.js';
import { loadDigitsSplit } from '../data/index.js';
import { loadTfjsModel, saveTfjsModel, type TfjsModel } from '../engines/index.js';
import { adversarialTrain } from '../evasion/index.js';
import { createZooModel, defaultEpochs } from '../zoo/index.js';

/** Where trained built-in models are kept between runs. BULWARK_CACHE_DIR overrides. */
export function cacheDir(): string {
  return process.env.BULWARK_CACHE_DIR ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'bulwark');
}

type CachedModel = { model: TfjsModel; dir: string; trained: boolean };

/**
 * A built-in digits MLP kept in the cache directory: loaded when a copy is there, else created,
 * trained by `train` and saved with its card. A cached copy that fails to load is retrained
 * rather than trusted.
 */
async function cachedDigitsMlp(
  name: string,
  seed: number,
  progress: Progress,
  train: (model: TfjsModel, data: Dataset) => Promise<{ seconds: number }>,
  card: Record<string, unknown> = {},
): Promise<CachedModel> {
  const dir = path.join(cacheDir(), name);
  if (await fs.stat(path.join(dir, 'model.json')).catch(() => null)) {
    try {
      const { model } = await loadTfjsModel(dir);
      return { model, dir, trained: false };
    } catch (e) {
      progress.log(`cached model in ${dir} cannot be loaded (${(e as Error).message}); training a new one`);
    }
  }
  const { train: data, test } = await loadDigitsSplit();
  const model = createZooModel('mlp', { inputShape: [28, 28, 1], numClasses: 10, classNames: data.classNames, seed, name: dir });
  const fit = await train(model, data);
  const testAccuracy = await modelAccuracy(model, test);
  await saveTfjsModel(model, dir, {
    classNames: [...data.classNames],
    dataset: 'digits',
    architecture: 'mlp',
    seed,
    ...card,
    metrics: { testAccuracy, trainSeconds: fit.seconds },
    createdAt: new Date().toISOString(),
  });
  return { model, dir, trained: true };
}

/** The audit's built-in target: the digits MLP, trained once per seed and then reused. */
export function defaultDigitsModel(seed: number, progress: Progress): Promise<CachedModel> {
  return cachedDigitsMlp(`digits-mlp-seed${seed}`, seed, progress, (model, data) => model.fit(data, { epochs: defaultEpochs.mlp, seed, progress }));
}

/** Size of the perturbations the built-in hardened model is trained against (L∞, inputs in [0, 1]). */
export const HARDENED_EPS = 0.1;

/**
 * The built-in target's adversarially trained twin, for the evasion section to set beside
 * it: the same MLP and seed, trained with fast adversarial training (FGSM from a random start,
 * Wong et al. 2020; about a minute, where PGD-10 training takes five), cached like the
 * undefended model.
 */
export function defaultHardenedDigitsModel(seed: number, progress: Progress): Promise<CachedModel> {
  // The per-epoch robustness checks are training detail; the audit shows its progress bar only.
  const quiet: Progress = { ...progress, log: () => {} };
  return cachedDigitsMlp(
    `digits-mlp-fgsmrs-eps${HARDENED_EPS}-seed${seed}`,
    seed,
    progress,
    (model, data) => adversarialTrain(model, data, { attack: 'fgsm-rs', eps: HARDENED_EPS, seed, fit: { epochs: defaultEpochs.mlp, seed, progress: quiet } }),
    { adversarial: { attack: 'fgsm-rs', eps: HARDENED_EPS, norm: 'linf', steps: 1, ratio: 1 } },
  );
}
