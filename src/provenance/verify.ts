import path from 'node:path';
import { BulwarkError, type Progress } from '../core/index.js';
import { diffRecords, type RecordChanges } from './diff.js';
import { verifyEnvelope } from './dsse.js';
import type { VerifyingKey } from './keys.js';
import { hashEntries, manifestProblem, PREDICATE_TYPE, subjectDigest, type Manifest, type RecordsEntry } from './manifest.js';
import { RECORD_DIGEST_BYTES, type RecordFormat } from './records.js';
import { readSignature, relativeInside } from './sign.js';
import { walkPaths } from './walk.js';

export interface FileChange {
  /** Manifest name of the file (for a single-file manifest, the file's base name). */
  path: string;
  kind: 'modified' | 'added' | 'removed';
  /**
   * For a modified CSV/TSV/JSONL file signed with records: 1-based data-row numbers
   * (header not counted). `changed` and `removed` are rows of the SIGNED (old) file,
   * `added` rows of the CURRENT (new) file. `headerChanged` is set when the header row
   * differs. All empty when only formatting changed (line endings, blank lines).
   */
  records?: RecordChanges & { headerChanged?: boolean };
}

/**
 * The outcome of a check that could be carried out. `valid: false` means the signature or
 * the files failed it (CLI exit 1); input that cannot be checked at all throws BulwarkError.
 */
export interface VerificationResult {
  valid: boolean;
  reason?: string;
  changes: FileChange[];
  /** The signed subject, once the signature has verified. */
  subject?: { name: string; sha256: string };
}

export interface VerifyOptions {
  /** Extra paths to leave out, on top of the signature's own ignore_paths (model_signing v1.0 signatures record none). */
  ignore?: readonly string[];
  progress?: Progress;
}

/**
 * Verifies `target` (a file or directory) against a signature bundle: the DSSE signature
 * with `pub`, the statement's consistency, then every file against the signed manifest.
 * Accepts the key-based bundles of the OpenSSF model_signing tool.
 */
export async function verifyPath(target: string, bundleFile: string, pub: VerifyingKey, opts: VerifyOptions = {}): Promise<VerificationResult> {
  const bundle = await readSignature(bundleFile);
  const envelope = verifyEnvelope(bundle, pub);
  if (!envelope.ok) return { valid: false, reason: envelope.reason, changes: [] };
  let statement: unknown;
  try {
    statement = JSON.parse(envelope.payload.toString('utf8'));
  } catch {
    return { valid: false, reason: 'the signed payload is not JSON, so it cannot be an in-toto statement', changes: [] };
  }
  const problem = manifestProblem(statement);
  if (problem !== undefined) return { valid: false, reason: `the signed statement is not a model signature: ${problem}`, changes: [] };
  const ignore = [...(opts.ignore ?? [])];
  const rel = relativeInside(target, bundleFile);
  if (rel !== undefined) ignore.push(rel);
  return checkManifest([target], statement as Manifest, { ...opts, ignore });
}

/**
 * Checks files against a manifest without any signature (integrity, not authenticity):
 * `paths` must be the ones the manifest was created from.
 */
export async function checkManifest(paths: string[], manifest: Manifest, opts: VerifyOptions = {}): Promise<VerificationResult> {
  const pred = manifest.predicate;
  const subject = { name: manifest.subject[0].name, sha256: manifest.subject[0].digest.sha256 };
  if (manifest.predicateType !== PREDICATE_TYPE || pred.serialization.method !== 'files') {
    throw new BulwarkError('E_DATA_VALUE', `the manifest uses serialization "${pred.serialization.method}"; only "files" (one digest per file) can be checked`);
  }
  const bad = [pred.serialization.hash_type, ...pred.resources.map((r) => r.algorithm)].find((a) => a !== 'sha256');
  if (bad !== undefined) throw new BulwarkError('E_DATA_VALUE', `the manifest uses hash "${bad}"; only sha256 can be checked`);
  const computed = subjectDigest(pred.resources);
  if (computed !== subject.sha256.toLowerCase()) {
    return { valid: false, reason: `the statement is inconsistent: its subject digest is ${subject.sha256} but its resources hash to ${computed}`, changes: [], subject };
  }
  const expected = new Map<string, string>();
  for (const r of pred.resources) {
    if (expected.has(r.name)) return { valid: false, reason: `the statement lists ${r.name} twice`, changes: [], subject };
    expected.set(r.name, r.digest.toLowerCase());
  }
  const records = new Map<string, RecordsEntry>((pred.bulwark?.records ?? []).map((r) => [r.name, r]));

  const walked = await walkPaths(paths, {
    allowSymlinks: pred.serialization.allow_symlinks === true,
    ignore: [...(pred.serialization.ignore_paths ?? []), ...(opts.ignore ?? [])],
    collectSymlinks: true,
  });
  const present = walked.entries.filter((e) => expected.has(e.name));
  const hashed = await hashEntries(present, {
    progress: opts.progress,
    label: 'verifying',
    records: (e) => {
      const r = records.get(e.name);
      return r === undefined ? undefined : { format: r.format as RecordFormat, header: r.header !== null };
    },
  });

  const display = (name: string): string => (name === '.' ? path.basename(path.resolve(paths[0])) : name);
  const changes: FileChange[] = [];
  const seen = new Set(present.map((e) => e.name));
  for (const h of hashed) {
    if (h.sha256 === expected.get(h.entry.name)) continue;
    const change: FileChange = { path: display(h.entry.name), kind: 'modified' };
    const old = records.get(h.entry.name);
    if (old !== undefined && h.records !== undefined) {
      const same = old.merkle_root === h.records.merkleRoot && old.count === h.records.count;
      const width = Math.min(old.digest_bytes, RECORD_DIGEST_BYTES);
      const diff = same
        ? { changed: [], added: [], removed: [] }
        : diffRecords(narrow(Buffer.from(old.digests, 'base64'), old.digest_bytes, width), narrow(h.records.digests, RECORD_DIGEST_BYTES, width), width);
      change.records = old.header !== h.records.header ? { ...diff, headerChanged: true } : diff;
    }
    changes.push(change);
  }
  for (const e of walked.entries) if (!expected.has(e.name)) changes.push({ path: display(e.name), kind: 'added' });
  for (const s of walked.symlinks) changes.push({ path: s, kind: 'added' });
  for (const name of expected.keys()) if (!seen.has(name)) changes.push({ path: display(name), kind: 'removed' });
  changes.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));

  if (changes.length === 0) return { valid: true, changes, subject };
  const count = (k: FileChange['kind']) => changes.filter((c) => c.kind === k).length;
  const parts = [`${count('modified')} modified`, `${count('added')} added`, `${count('removed')} removed`].filter((p) => !p.startsWith('0 '));
  const links = walked.symlinks.length > 0 ? ` (symbolic links are not allowed by this signature: ${walked.symlinks.join(', ')})` : '';
  return { valid: false, reason: `the files differ from the signed manifest: ${parts.join(', ')}${links}`, changes, subject };
}

/** Keeps the first `width` bytes of each `stride`-byte digest. */
function narrow(digests: Uint8Array, stride: number, width: number): Uint8Array {
  if (stride === width) return digests;
  const n = Math.floor(digests.length / stride);
  const out = new Uint8Array(n * width);
  for (let i = 0; i < n; i++) out.set(digests.subarray(i * stride, i * stride + width), i * width);
  return out;
}
