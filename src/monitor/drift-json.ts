import { endianness } from 'node:os';
import { BulwarkError } from '../core/index.js';
import type { DriftReference } from './drift.js';

/**
 * The stored form of a DriftReference. The kept reference values (up to 784 × 5,000 floats)
 * travel as base64 of little-endian float32 so a digits reference is ~21 MB of text rather
 * than ~60 MB of decimal numbers, and reads back bit-for-bit.
 */
interface DriftReferenceJson {
  format: 'bulwark-drift-reference';
  version: 1;
  rows: number;
  sampleRows: number;
  features: number;
  categorical: number[];
  numClasses: number;
  predictionCounts: number[];
  values: string;
  confidence: string;
}

const FORMAT = 'bulwark-drift-reference';
const BIG_ENDIAN = endianness() === 'BE';

function floatsToBase64(v: Float32Array): string {
  const buf = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  return (BIG_ENDIAN ? Buffer.from(buf).swap32() : buf).toString('base64');
}

function base64ToFloats(s: unknown, expected: number, field: string): Float32Array {
  if (typeof s !== 'string') throw invalid(`"${field}" must be a base64 string`);
  const bytes = Buffer.from(s, 'base64');
  if (bytes.length !== expected * 4) throw invalid(`"${field}" holds ${bytes.length / 4} floats but the header says ${expected}`);
  const out = new Float32Array(expected);
  const view = Buffer.from(out.buffer);
  bytes.copy(view);
  if (BIG_ENDIAN) view.swap32();
  for (let i = 0; i < out.length; i++) {
    if (!Number.isFinite(out[i])) throw new BulwarkError('E_DATA_VALUE', `the drift reference's "${field}" holds a non-finite value at index ${i}; rebuild the reference from clean data`);
  }
  return out;
}

function invalid(what: string): BulwarkError {
  return new BulwarkError('E_DATA_PARSE', `not a valid drift reference: ${what}; rebuild it with driftReference() and save it with driftReferenceToJson()`);
}

function count(o: Record<string, unknown>, field: string, min: number): number {
  const v = o[field];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw invalid(`"${field}" must be an integer ≥ ${min}, got ${JSON.stringify(v)}`);
  return v;
}

/** The reference as one JSON document (for a file, a database row or a Redis value). */
export function driftReferenceToJson(ref: DriftReference): string {
  const doc: DriftReferenceJson = {
    format: FORMAT,
    version: ref.version,
    rows: ref.rows,
    sampleRows: ref.sampleRows,
    features: ref.features,
    categorical: [...ref.categorical],
    numClasses: ref.numClasses,
    predictionCounts: [...ref.predictionCounts],
    values: floatsToBase64(ref.values),
    confidence: floatsToBase64(ref.confidence),
  };
  return JSON.stringify(doc);
}

/** Reads what driftReferenceToJson wrote, checking every size against the header. */
export function driftReferenceFromJson(text: string): DriftReference {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new BulwarkError('E_DATA_PARSE', `the drift reference is not JSON (${e instanceof Error ? e.message : String(e)}); pass the text driftReferenceToJson() wrote`, { cause: e });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw invalid('expected a JSON object');
  const o = parsed as Record<string, unknown>;
  if (o.format !== FORMAT) throw invalid(`"format" must be "${FORMAT}", got ${JSON.stringify(o.format)}`);
  if (o.version !== 1) throw invalid(`unsupported version ${JSON.stringify(o.version)} (this build reads version 1)`);
  const rows = count(o, 'rows', 2);
  const sampleRows = count(o, 'sampleRows', 2);
  if (sampleRows > rows) throw invalid(`"sampleRows" (${sampleRows}) exceeds "rows" (${rows})`);
  const features = count(o, 'features', 1);
  const numClasses = count(o, 'numClasses', 1);
  const categorical = o.categorical;
  if (!Array.isArray(categorical) || categorical.some((c) => !Number.isInteger(c) || c < 0 || c >= features)) {
    throw invalid(`"categorical" must list feature indices in 0..${features - 1}`);
  }
  const predictionCounts = o.predictionCounts;
  if (!Array.isArray(predictionCounts) || predictionCounts.length !== numClasses || predictionCounts.some((c) => !Number.isInteger(c) || c < 0)) {
    throw invalid(`"predictionCounts" must be ${numClasses} non-negative integers`);
  }
  return {
    version: 1,
    rows,
    sampleRows,
    features,
    categorical: (categorical as number[]).slice(),
    values: base64ToFloats(o.values, features * sampleRows, 'values'),
    numClasses,
    predictionCounts: (predictionCounts as number[]).slice(),
    confidence: base64ToFloats(o.confidence, sampleRows, 'confidence'),
  };
}
