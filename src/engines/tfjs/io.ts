import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { BulwarkError, writeDirAtomically } from '../../core/index.js';
import { TfjsModel } from './model.js';


/** Facts Bulwark keeps beside a model: what it was trained on and how well it did. */
export interface ModelCard {
  classNames: string[];
  dataset?: string;
  architecture?: string;
  seed?: number;
  metrics?: Record<string, number>;
  createdAt?: string;
  [key: string]: unknown;
}

export const MODEL_JSON = 'model.json';
export const WEIGHTS_BIN = 'weights.bin';
export const CARD_JSON = 'bulwark.json';

/**
 * Writes DIR/model.json + DIR/weights.bin (the standard tfjs-layers format, loadable by
 * `tf.loadLayersModel`) and DIR/bulwark.json. The directory appears whole or not at all.
 */
export async function saveTfjsModel(model: TfjsModel, dir: string, card: ModelCard): Promise<void> {
  let artifacts: tf.io.ModelArtifacts | null = null;
  await model.net.save(
    tf.io.withSaveHandler(async (a) => {
      artifacts = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  const a = artifacts as tf.io.ModelArtifacts | null;
  if (!a || !a.weightData || !a.weightSpecs) throw new BulwarkError('E_OUTPUT', 'TF.js produced no weights to save');
  const weightData = Array.isArray(a.weightData) ? Buffer.concat(a.weightData.map((b) => Buffer.from(b))) : Buffer.from(a.weightData);
  const modelJson = {
    format: 'layers-model',
    generatedBy: `bulwark (TensorFlow.js ${tf.version_core})`,
    convertedBy: null,
    modelTopology: a.modelTopology,
    weightsManifest: [{ paths: [WEIGHTS_BIN], weights: a.weightSpecs }],
  };
  await writeDirAtomically(dir, {
    [MODEL_JSON]: JSON.stringify(modelJson),
    [WEIGHTS_BIN]: weightData,
    [CARD_JSON]: JSON.stringify(card, null, 2) + '\n',
  });
}

/** Loads a model saved by Bulwark or any tfjs-layers model.json with its weight files. */
export async function loadTfjsModel(location: string): Promise<{ model: TfjsModel; card: ModelCard }> {
  const stat = await fs.stat(location).catch(() => null);
  if (!stat) throw new BulwarkError('E_FILE_NOT_FOUND', `model not found: ${location} (give a directory holding model.json, or the model.json file)`);
  const dir = stat.isDirectory() ? location : path.dirname(location);
  const jsonPath = stat.isDirectory() ? path.join(location, MODEL_JSON) : location;
  const text = await fs.readFile(jsonPath, 'utf8').catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') throw new BulwarkError('E_FILE_NOT_FOUND', `${dir} holds no ${MODEL_JSON}: it is not a TF.js model directory`);
    throw new BulwarkError('E_FILE_READ', `cannot read ${jsonPath}: ${e.message}`);
  });
  let json: { modelTopology?: object; weightsManifest?: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[] };
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new BulwarkError('E_MODEL_FORMAT', `${jsonPath} is not valid JSON (${(e as Error).message}); the model file is corrupt`);
  }
  if (!json || typeof json !== 'object' || !json.modelTopology || !Array.isArray(json.weightsManifest)) {
    throw new BulwarkError('E_MODEL_FORMAT', `${jsonPath} is not a tfjs-layers model: it needs "modelTopology" and "weightsManifest"`);
  }
  const weightSpecs: tf.io.WeightsManifestEntry[] = [];
  const buffers: Buffer[] = [];
  for (const group of json.weightsManifest) {
    weightSpecs.push(...group.weights);
    for (const p of group.paths) {
      const file = path.join(dir, p);
      buffers.push(
        await fs.readFile(file).catch((e: NodeJS.ErrnoException) => {
          throw new BulwarkError(e.code === 'ENOENT' ? 'E_FILE_NOT_FOUND' : 'E_FILE_READ', `weights file ${file} named in ${jsonPath} cannot be read: ${e.message}`);
        }),
      );
    }
  }
  const weights = Buffer.concat(buffers);
  const expected = weightSpecs.reduce((sum, s) => sum + s.shape.reduce((a, b) => a * b, 1) * bytesPerValue(s.dtype), 0);
  if (weights.length !== expected) {
    throw new BulwarkError('E_MODEL_FORMAT', `weights in ${dir} hold ${weights.length} bytes but ${jsonPath} describes ${expected}: the files are truncated or do not belong together`);
  }
  let net: tfl.LayersModel;
  try {
    net = await tfl.loadLayersModel(
      tf.io.fromMemory({
        modelTopology: json.modelTopology,
        weightSpecs,
        weightData: weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength),
      }),
    );
  } catch (e) {
    throw new BulwarkError('E_MODEL_FORMAT', `${jsonPath} cannot be loaded as a TF.js model: ${(e as Error).message}`);
  }
  const card = await readCard(dir, net);
  return { model: new TfjsModel(net, { name: dir, classNames: card.classNames }), card };
}

async function readCard(dir: string, net: tfl.LayersModel): Promise<ModelCard> {
  const k = (net.outputs[0].shape[1] as number | null) ?? 0;
  const fallback: ModelCard = { classNames: Array.from({ length: k }, (_, i) => String(i)) };
  const text = await fs.readFile(path.join(dir, CARD_JSON), 'utf8').catch(() => null);
  if (text === null) return fallback;
  try {
    const card = JSON.parse(text) as ModelCard;
    if (!Array.isArray(card.classNames) || card.classNames.length !== k) card.classNames = fallback.classNames;
    return card;
  } catch {
    throw new BulwarkError('E_MODEL_FORMAT', `${path.join(dir, CARD_JSON)} is not valid JSON; delete it or restore it`);
  }
}

function bytesPerValue(dtype: string): number {
  return dtype === 'float32' || dtype === 'int32' ? 4 : dtype === 'bool' ? 1 : 4;
}
