import type { Samples } from '../core/index.js';
import { invalid } from './errors.js';
import type { ModelVersion } from './registry.js';

export const INPUT_NAME = 'input';
export const OUTPUT_NAME = 'probabilities';

export interface InferRules {
  maxBatch: number;
  /** Allowed values, or undefined for finiteness only. */
  range?: { min: number; max: number; why: string };
}

export interface ParsedInfer {
  samples: Samples;
  id?: string;
}

function quote(v: unknown): string {
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = String(v);
  }
  return s.length > 80 ? `${s.slice(0, 80)}…` : s;
}

function asRecord(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

/** A rejected input names the input and the rule it broke. */
function broke(rule: string, message: string) {
  return invalid(`input '${INPUT_NAME}': rule '${rule}': ${message}`);
}

/**
 * Checks an Open Inference Protocol v2 request (already parsed JSON) against the model and the
 * rules and returns the samples. Depth is bounded while flattening, so deeply nested arrays
 * cannot exhaust the stack.
 */
export function parseInferRequest(body: unknown, inputShape: readonly number[], rules: InferRules): ParsedInfer {
  const req = asRecord(body);
  if (!req) throw invalid(`rule 'request': the body must be a JSON object with an 'inputs' array, not ${quote(body)}`);
  const inputs = req.inputs;
  if (!Array.isArray(inputs)) throw invalid(`rule 'request': the request needs an 'inputs' array`);
  if (inputs.length !== 1) throw invalid(`rule 'request': the request has ${inputs.length} inputs; the model takes exactly one, named '${INPUT_NAME}'`);
  const input = asRecord(inputs[0]);
  if (!input) throw invalid(`rule 'request': inputs[0] must be an object with name, shape, datatype and data`);
  if (input.name !== INPUT_NAME) throw invalid(`rule 'name': unknown input ${quote(input.name)}; the model's input is named '${INPUT_NAME}'`);
  if (input.datatype !== 'FP32' && input.datatype !== 'FP64') throw broke('dtype', `datatype ${quote(input.datatype)} is not accepted; send FP32 or FP64`);
  const want = `[n, ${inputShape.join(', ')}]`;
  const shape = input.shape;
  if (!Array.isArray(shape) || shape.length > 16 || !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
    throw broke('shape', `shape ${quote(shape)} is not a list of non-negative integers; it must be ${want}`);
  }
  const dims = shape as number[];
  if (dims.length !== inputShape.length + 1 || dims.slice(1).some((d, i) => d !== inputShape[i])) {
    throw broke('shape', `shape [${dims.join(', ')}] does not match the model's ${want}`);
  }
  const n = dims[0];
  if (n < 1) throw broke('batch size', 'the batch is empty (shape[0] is 0)');
  if (n > rules.maxBatch) throw broke('batch size', `${n} rows in one request; at most ${rules.maxBatch} are allowed`);
  if (!Array.isArray(input.data)) throw broke('data', `needs a 'data' array of numbers (binary tensor data is not supported)`);
  const size = inputShape.reduce((a, b) => a * b, 1);
  const total = n * size;
  const out = new Float32Array(total);
  let count = 0;
  const maxDepth = dims.length;
  const range = rules.range;
  const walk = (arr: unknown[], depth: number): void => {
    for (let i = 0; i < arr.length; i++) {
      const v = arr[i];
      if (typeof v === 'number') {
        if (count >= total) throw broke('shape', `data holds more than the ${total} values shape [${dims.join(', ')}] needs`);
        // JSON has no NaN or Infinity, but 1e999 parses to Infinity.
        if (!Number.isFinite(v)) throw broke('finite', `value ${count} is ${v}; every value must be a finite number`);
        if (range && (v < range.min || v > range.max)) {
          throw broke(
            'range',
            `value ${count} (row ${Math.floor(count / size)}, position ${count % size}) is ${v}, outside [${range.min}, ${range.max}] (${range.why})`,
          );
        }
        out[count++] = v;
      } else if (Array.isArray(v)) {
        if (depth >= maxDepth) throw broke('shape', `data is nested deeper than shape [${dims.join(', ')}] allows`);
        walk(v, depth + 1);
      } else {
        const what = v === null ? 'null' : typeof v === 'string' ? `the string ${quote(v)}` : typeof v;
        throw broke(typeof v === 'string' || v === null ? 'finite' : 'dtype', `value ${count} is ${what}, not a number (NaN and Infinity cannot be sent)`);
      }
    }
  };
  walk(input.data as unknown[], 1);
  if (count !== total) throw broke('shape', `shape [${dims.join(', ')}] needs ${total} values but data holds ${count}`);
  const id = typeof req.id === 'string' && req.id.length <= 256 ? req.id : undefined;
  return { samples: { data: out, shape: dims }, ...(id !== undefined ? { id } : {}) };
}

/** Shortest decimal text that reads back as the same float32: 0.1, not 0.10000000149011612. */
export function float32Text(v: number): string {
  if (v === 0) return '0';
  for (let p = 6; p <= 9; p++) {
    const s = +v.toPrecision(p);
    if (Math.fround(s) === v) return String(s);
  }
  return String(v);
}

/** The OIP v2 inference response, serialised by hand (float32 text, no double copy of the data). */
export function inferResponse(v: ModelVersion, out: Samples, policy: string, id?: string): string {
  const parts = new Array<string>(out.data.length);
  for (let i = 0; i < out.data.length; i++) parts[i] = float32Text(out.data[i]);
  const head = JSON.stringify({ model_name: v.name, model_version: v.version, ...(id !== undefined ? { id } : {}), parameters: { output_policy: policy } });
  return `${head.slice(0, -1)},"outputs":[{"name":"${OUTPUT_NAME}","datatype":"FP32","shape":${JSON.stringify(out.shape)},"data":[${parts.join(',')}]}]}`;
}

export function modelMetadata(v: ModelVersion, versions: string[], extra: Record<string, unknown>): Record<string, unknown> {
  const { inputShape, numClasses, classNames } = v.model.info;
  const names = classNames ?? v.card?.classNames;
  return {
    name: v.name,
    versions,
    platform: `bulwark-gateway (${v.model.info.engine})`,
    inputs: [{ name: INPUT_NAME, datatype: 'FP32', shape: [-1, ...inputShape] }],
    outputs: [{ name: OUTPUT_NAME, datatype: 'FP32', shape: [-1, numClasses] }],
    parameters: { version: v.version, ...(names ? { class_names: names } : {}), ...extra },
  };
}
