import { createHash } from 'node:crypto';
import path from 'node:path';
import { BulwarkError, silentProgress, writeFileAtomically, type Progress } from '../core/index.js';
import { forEachChunk, readJsonFile } from './stream.js';
import { hashFileWithRecords, recordFormatOf, RECORD_DIGEST_BYTES, type RecordDigests, type RecordFormat } from './records.js';
import { walkPaths, type FileEntry, type WalkOptions } from './walk.js';

/**
 * A manifest is the in-toto Statement the OpenSSF model-signing tool signs, so an unsigned
 * manifest and the payload of a signature are the same document:
 *
 * - subject: one entry, named after the model (directory or file base name), whose sha256 is
 *   SHA-256 over the resources' raw digests concatenated in resource order;
 * - predicate.serialization: how the files were chosen ({method: "files", hash_type,
 *   allow_symlinks, ignore_paths});
 * - predicate.resources: {name, algorithm, digest} per file, sorted by path;
 * - predicate.bulwark: Bulwark's extension (file sizes and record digests). The OpenSSF v1.0
 *   predicate tells verifiers to ignore fields other than serialization and resources, so a
 *   signature with records still verifies with their tool.
 */
export const STATEMENT_TYPE = 'https://in-toto.io/Statement/v1';
export const PREDICATE_TYPE = 'https://model_signing/signature/v1.0';

export interface ManifestResource {
  name: string;
  algorithm: string;
  digest: string;
}

export interface ManifestSerialization {
  method: string;
  hash_type: string;
  allow_symlinks: boolean;
  /** Absent in signatures made by model_signing before v1.1. */
  ignore_paths?: string[];
}

/** Record digests of one tabular file, as stored in the manifest. */
export interface RecordsEntry {
  /** Resource name of the file. */
  name: string;
  format: RecordFormat;
  /** Hex leaf hash of the header record, or null. */
  header: string | null;
  /** Data records (header excluded). */
  count: number;
  /** RFC 6962 root (hex) over the full leaf hashes of the data records. */
  merkle_root: string;
  /** Bytes kept of each leaf hash in `digests`. */
  digest_bytes: number;
  /** Base64 of `count * digest_bytes` bytes: each data record's truncated leaf hash, in order. */
  digests: string;
}

export interface BulwarkExtension {
  version: 1;
  /** Size in bytes of each resource, aligned with `resources`. */
  sizes: number[];
  records: RecordsEntry[];
}

export interface ManifestPredicate {
  serialization: ManifestSerialization;
  resources: ManifestResource[];
  bulwark?: BulwarkExtension;
}

export interface Manifest {
  _type: string;
  subject: { name: string; digest: { sha256: string } }[];
  predicateType: string;
  predicate: ManifestPredicate;
}

export interface ManifestOptions extends Omit<WalkOptions, 'collectSymlinks'> {
  /** Also digest every record of CSV/TSV/JSONL files, so changes can be named by row. */
  records?: boolean;
  /** Whether CSV/TSV files start with a header row (default true). */
  header?: boolean;
  progress?: Progress;
}

/** Files hashed concurrently: enough to overlap opening small files, few enough to stay flat. */
const CONCURRENCY = 4;

export interface HashedFile {
  entry: FileEntry;
  sha256: string;
  records?: RecordDigests;
}

/** How to split one file into records, or undefined to hash it whole. */
export type RecordPlan = (entry: FileEntry) => { format: RecordFormat; header: boolean } | undefined;

/** The plan `createManifest` uses: every CSV/TSV/JSONL file, by extension. */
export function recordsByExtension(header = true): RecordPlan {
  return (entry) => {
    const format = recordFormatOf(entry.name === '.' ? entry.file : entry.name);
    return format === undefined ? undefined : { format, header };
  };
}

/** Hashes the walked files (with record digests where planned), reporting bytes as progress. */
export async function hashEntries(entries: readonly FileEntry[], opts: { records?: RecordPlan; progress?: Progress; label?: string }): Promise<HashedFile[]> {
  const progress = opts.progress ?? silentProgress;
  progress.start(opts.label ?? 'hashing', entries.reduce((s, e) => s + e.size, 0));
  const out = new Array<HashedFile>(entries.length);
  let next = 0;
  const onBytes = (n: number): void => progress.advance(n);
  const worker = async (): Promise<void> => {
    while (next < entries.length) {
      const k = next++;
      const entry = entries[k];
      const plan = opts.records?.(entry);
      if (plan !== undefined) {
        const r = await hashFileWithRecords(entry.file, plan.format, { header: plan.header, onBytes });
        out[k] = { entry: { ...entry, size: r.size }, sha256: r.sha256, records: r.records };
      } else {
        const h = createHash('sha256');
        const size = await forEachChunk(entry.file, (c) => (h.update(c), onBytes(c.length)));
        out[k] = { entry: { ...entry, size }, sha256: h.digest('hex') };
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, entries.length) }, worker));
  } finally {
    progress.done();
  }
  return out;
}

/** SHA-256 over the resources' raw digests in order: the statement's subject digest. */
export function subjectDigest(resources: readonly ManifestResource[]): string {
  const h = createHash('sha256');
  for (const r of resources) h.update(Buffer.from(r.digest, 'hex'));
  return h.digest('hex');
}

export function modelName(paths: readonly string[]): string {
  return paths.map((p) => path.basename(path.resolve(p))).join(',');
}

/** Builds the statement for hashed files; `ignored` is recorded so verifiers skip the same paths. */
export function buildManifest(name: string, files: readonly HashedFile[], serialization: { allowSymlinks: boolean; ignored: readonly string[] }): Manifest {
  const resources = files.map((f) => ({ name: f.entry.name, algorithm: 'sha256', digest: f.sha256 }));
  const records: RecordsEntry[] = [];
  for (const f of files) {
    if (!f.records) continue;
    records.push({
      name: f.entry.name,
      format: f.records.format,
      header: f.records.header,
      count: f.records.count,
      merkle_root: f.records.merkleRoot,
      digest_bytes: RECORD_DIGEST_BYTES,
      digests: Buffer.from(f.records.digests.buffer, f.records.digests.byteOffset, f.records.digests.byteLength).toString('base64'),
    });
  }
  return {
    _type: STATEMENT_TYPE,
    subject: [{ name, digest: { sha256: subjectDigest(resources) } }],
    predicateType: PREDICATE_TYPE,
    predicate: {
      serialization: { method: 'files', hash_type: 'sha256', allow_symlinks: serialization.allowSymlinks, ignore_paths: [...serialization.ignored] },
      resources,
      bulwark: { version: 1, sizes: files.map((f) => f.entry.size), records },
    },
  };
}

/**
 * Hashes files or directory trees into a manifest: each file's SHA-256 and size and, with
 * `records`, a digest per CSV/TSV/JSONL record and their Merkle root.
 */
export async function createManifest(paths: string[], opts: ManifestOptions = {}): Promise<Manifest> {
  const walked = await walkPaths(paths, opts);
  if (walked.entries.length === 0) {
    throw new BulwarkError('E_USAGE', `${paths.join(', ')}: no files left to cover after the ignore list (${walked.ignored.join(', ')})`);
  }
  const files = await hashEntries(walked.entries, { records: opts.records ? recordsByExtension(opts.header ?? true) : undefined, progress: opts.progress });
  return buildManifest(modelName(paths), files, { allowSymlinks: opts.allowSymlinks ?? false, ignored: walked.ignored });
}

export async function writeManifest(manifest: Manifest, file: string): Promise<void> {
  await writeFileAtomically(file, JSON.stringify(manifest, null, 2) + '\n');
}

export async function readManifest(file: string): Promise<Manifest> {
  const json = await readJsonFile(file, 'a manifest written by "bulwark manifest create"');
  const problem = manifestProblem(json);
  if (problem !== undefined) throw new BulwarkError('E_DATA_PARSE', `${file} is not a Bulwark/OpenSSF manifest: ${problem}`);
  return json as Manifest;
}

/** Why a parsed JSON value is not a usable manifest, or undefined when it is one. */
export function manifestProblem(json: unknown): string | undefined {
  if (!isObject(json)) return 'expected a JSON object';
  if (json._type !== STATEMENT_TYPE) return `_type is ${JSON.stringify(json._type)}, expected "${STATEMENT_TYPE}"`;
  if (json.predicateType !== PREDICATE_TYPE) return `predicateType is ${JSON.stringify(json.predicateType)}, expected "${PREDICATE_TYPE}"`;
  const subject = json.subject;
  if (!Array.isArray(subject) || subject.length !== 1) return 'expected exactly one subject';
  const s0: unknown = subject[0];
  if (!isObject(s0) || typeof s0.name !== 'string' || !isObject(s0.digest) || !isHex(s0.digest.sha256)) return 'the subject needs a name and a sha256 digest';
  const pred = json.predicate;
  if (!isObject(pred)) return 'predicate missing';
  const ser = pred.serialization;
  if (!isObject(ser) || typeof ser.method !== 'string' || typeof ser.hash_type !== 'string') return 'predicate.serialization needs method and hash_type';
  if (ser.ignore_paths !== undefined && !(Array.isArray(ser.ignore_paths) && ser.ignore_paths.every((p) => typeof p === 'string'))) return 'serialization.ignore_paths must be a list of paths';
  const res = pred.resources;
  if (!Array.isArray(res)) return 'predicate.resources must be a list';
  for (const [i, r] of res.entries()) {
    if (!isObject(r) || typeof r.name !== 'string' || typeof r.algorithm !== 'string' || !isHex(r.digest)) return `resource ${i + 1} needs name, algorithm and a hex digest`;
  }
  const ext = pred.bulwark;
  if (ext !== undefined) {
    if (!isObject(ext) || !Array.isArray(ext.records)) return 'predicate.bulwark.records must be a list';
    if (ext.sizes !== undefined && !(Array.isArray(ext.sizes) && ext.sizes.length === res.length)) return 'predicate.bulwark.sizes must have one size per resource';
    for (const r of ext.records as unknown[]) {
      if (!isObject(r) || typeof r.name !== 'string' || typeof r.digests !== 'string' || typeof r.count !== 'number' || typeof r.digest_bytes !== 'number' || r.digest_bytes < 1) return 'a predicate.bulwark.records entry is malformed';
      if (r.format !== 'csv' && r.format !== 'tsv' && r.format !== 'jsonl') return `records of ${r.name} have unknown format ${JSON.stringify(r.format)}`;
      if (Math.floor((r.digests.length * 3) / 4) < r.count * r.digest_bytes - 2) return `record digests of ${r.name} are shorter than its ${r.count} records`;
    }
  }
  return undefined;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isHex(v: unknown): v is string {
  return typeof v === 'string' && /^[0-9a-fA-F]*$/.test(v) && v.length % 2 === 0 && v.length > 0;
}
