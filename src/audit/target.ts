import { BulwarkError, isBulwarkError, sampleSize, type Dataset, type Model } from '../core/index.js';
import { loadDatasetFile, loadDatasetSpec } from '../data/index.js';
import { openModel } from '../engines/index.js';

export interface DataOptions {
  /** --data: 'digits' or a file. */
  data: string;
  /** --train-data: the data the model was trained on. */
  trainData?: string;
  label?: string;
  drop?: string[];
  seed: number;
}

/**
 * The data a user's model is audited on: all of --data is held-out test data (its train
 * split would not be the model's training data), and --train-data, when given, is the
 * training data. 'digits' names the built-in split's test or training half.
 */
export async function loadAuditData(o: DataOptions): Promise<{ test: Dataset; train?: Dataset }> {
  const load = async (spec: string, flag: string, half: 'train' | 'test'): Promise<Dataset> => {
    try {
      if (spec === 'digits') return (await loadDatasetSpec('digits'))[half];
      return await loadDatasetFile(spec, { label: o.label, drop: o.drop });
    } catch (e) {
      if (isBulwarkError(e)) throw new BulwarkError(e.code, `${flag} ${spec}: ${e.message}`);
      throw e;
    }
  };
  const test = await load(o.data, '--data', 'test');
  const train = o.trainData ? await load(o.trainData, '--train-data', 'train') : undefined;
  return { test, train };
}

/** Opens --model, turning a refused key or an unreachable server into what to do about it. */
export async function openTarget(spec: string, apiKey: string | undefined): Promise<{ model: Model; files: string[] }> {
  try {
    const { model, files } = await openModel(spec, { apiKey });
    return { model, files };
  } catch (e) {
    throw explainRemote(e, spec, apiKey);
  }
}

export function explainRemote(e: unknown, spec: string, apiKey: string | undefined): unknown {
  if (!isBulwarkError(e) || !/^https?:/i.test(spec)) return e;
  if (/ 401 /.test(e.message)) {
    return new BulwarkError('E_REMOTE', `--model ${spec}: the server wants an API key (401)${apiKey ? ' and refused the one given' : ''}; give one with the 'infer' scope with --key KEY (made by 'bulwark keys create --scopes infer'). The server said: ${e.message}`);
  }
  if (/ 403 /.test(e.message)) {
    return new BulwarkError('E_REMOTE', `--model ${spec}: the key was refused (403); the audit needs a key with the 'infer' scope ('bulwark keys create --scopes infer'). The server said: ${e.message}`);
  }
  if (/cannot reach|did not answer/.test(e.message)) {
    return new BulwarkError(e.code, `--model ${spec}: ${e.message}. Check the address and that the server is running ('bulwark serve --model DIR')`);
  }
  return e;
}

/**
 * Fits the data to the model before anything runs: the features must be as many as the
 * model's inputs (then they take the model's input shape), and every class of the label
 * column must be one the model knows, by name when the model names its classes, else by
 * number. Labels are renumbered to the model's class indices.
 */
export function fitDataToModel(model: Model, ds: Dataset, flag: string, spec: string, label: string | undefined): Dataset {
  const want = model.info.inputShape;
  const wantSize = want.reduce((a, b) => a * b, 1);
  const got = sampleSize(ds.x);
  if (got !== wantSize) {
    const cols = ds.featureNames ? `${got} feature columns${label ? ` besides the label '${label}'` : ''}` : `samples of shape [${ds.x.shape.slice(1).join(', ')}] (${got} values)`;
    throw new BulwarkError(
      'E_DATA_SHAPE',
      `${flag} ${spec} has ${cols}, but model '${model.info.name}' takes inputs of shape [${want.join(', ')}] (${wantSize} values); ` +
        `give the data the model was made for${ds.featureNames ? ', or leave extra columns out with --drop COLS' : ''}`,
    );
  }
  const k = model.info.numClasses;
  const modelNames = model.info.classNames && model.info.classNames.length === k ? [...model.info.classNames] : null;
  const names = ds.classNames;
  let index: number[];
  const present = [...new Set(ds.y)].sort((a, b) => a - b);
  const where = `${flag} ${spec}${label ? ` (label column '${label}')` : ''}`;
  if (modelNames) {
    const unknown = present.filter((c) => !modelNames.includes(names[c]));
    if (unknown.length) {
      throw new BulwarkError(
        'E_DATA_VALUE',
        `${where} has classes the model does not know: ${unknown.slice(0, 5).map((c) => `'${names[c]}'`).join(', ')}${unknown.length > 5 ? ', …' : ''}; ` +
          `the model's classes are ${modelNames.slice(0, 12).map((n) => `'${n}'`).join(', ')}${k > 12 ? ', …' : ''}. Check --label, or audit with data of the model's classes`,
      );
    }
    index = names.map((n) => modelNames.indexOf(n));
  } else if (names.every((n) => /^\d+$/.test(n))) {
    const unknown = present.filter((c) => Number(names[c]) >= k);
    if (unknown.length) {
      throw new BulwarkError(
        'E_DATA_VALUE',
        `${where} has classes the model does not know: ${unknown.slice(0, 5).map((c) => names[c]).join(', ')}; the model has ${k} outputs (classes 0 to ${k - 1}). Check --label`,
      );
    }
    index = names.map(Number);
  } else {
    if (names.length > k) {
      throw new BulwarkError('E_DATA_VALUE', `${where} has ${names.length} classes but the model has ${k} outputs; check --label`);
    }
    // Names the model cannot confirm are taken in sorted order: the loaders' own order.
    index = names.map((_, i) => i);
  }
  const y = Int32Array.from(ds.y, (c) => index[c]);
  const classNames = modelNames ?? Array.from({ length: k }, (_, i) => names[index.indexOf(i)] ?? String(i));
  return { ...ds, x: { data: ds.x.data, shape: [ds.x.shape[0], ...want] }, y, classNames };
}
