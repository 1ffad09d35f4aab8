import { promises as fs } from 'node:fs';
import { BulwarkError, type Model } from '../core/index.js';
import { loadTfjsModel, type ModelCard } from './tfjs/index.js';
import { loadOnnxModel } from './onnx/model.js';
import { connectHttpModel } from './http/model.js';

export interface OpenModelOptions {
  /** For remote models: API key sent as a bearer token. */
  apiKey?: string;
  timeoutMs?: number;
}

export interface OpenedModel {
  model: Model;
  /** What Bulwark knows about a local model (classes, training data), where it has it. */
  card?: ModelCard;
  /** Local files that make up the model, for hashing and provenance. */
  files: string[];
}

/**
 * One way to name a model everywhere: a TF.js model directory (or its model.json), an
 * .onnx file, or an http(s) URL of a model served with the Open Inference Protocol v2.
 */
export async function openModel(spec: string, opts: OpenModelOptions = {}): Promise<OpenedModel> {
  if (/^https?:\/\//i.test(spec)) {
    const model = await connectHttpModel(spec, { apiKey: opts.apiKey, timeoutMs: opts.timeoutMs });
    return { model, files: [] };
  }
  if (/\.onnx$/i.test(spec)) {
    return { model: await loadOnnxModel(spec), files: [spec] };
  }
  const stat = await fs.stat(spec).catch(() => null);
  if (!stat) {
    throw new BulwarkError(
      'E_FILE_NOT_FOUND',
      `model not found: ${spec}. Give a TF.js model directory (made by 'bulwark train --out DIR'), a model.json, an .onnx file or an http(s) URL`,
    );
  }
  const { model, card } = await loadTfjsModel(spec);
  const dir = model.info.name;
  const entries = await fs.readdir(dir).catch(() => [] as string[]);
  const files = entries.filter((f) => f === 'model.json' || f.endsWith('.bin') || f === 'bulwark.json').sort().map((f) => `${dir}/${f}`);
  return { model, card, files };
}
