import path from 'node:path';
import { writeFileAtomically } from '../core/index.js';
import { createBundle, parseBundle, type Bundle } from './dsse.js';
import type { SigningKey } from './keys.js';
import { createManifest, type Manifest, type ManifestOptions } from './manifest.js';
import { readJsonFile } from './stream.js';

export interface SignOptions extends ManifestOptions {
  /**
   * Where the signature will be written. When it lies inside the signed directory it is
   * left out of the manifest (and recorded in ignore_paths), as the OpenSSF tool does with
   * model.sig: a signature cannot cover itself.
   */
  signatureFile?: string;
}

/** The path of `file` relative to directory `root`, or undefined when it is not inside it. */
export function relativeInside(root: string, file: string): string | undefined {
  const rel = path.relative(path.resolve(root), path.resolve(file));
  if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) return undefined;
  return rel.split(path.sep).join('/');
}

/**
 * The DSSE payload: the statement as 2-space-indented JSON, the layout the OpenSSF tool
 * signs (protobuf's MessageToJson). Verifiers check the signature over these exact bytes
 * and parse them afterwards, so the layout matters only for humans and diffs.
 */
export function manifestPayload(manifest: Manifest): Uint8Array {
  return Buffer.from(JSON.stringify(manifest, null, 2), 'utf8');
}

/** Signs an existing manifest (from createManifest or readManifest) into a bundle. */
export function signManifest(manifest: Manifest, key: SigningKey): Bundle {
  return createBundle(manifestPayload(manifest), key);
}

/** Hashes a file or directory, builds its statement and signs it into a Sigstore bundle. */
export async function signPath(target: string, key: SigningKey, opts: SignOptions = {}): Promise<Bundle> {
  const ignore = [...(opts.ignore ?? [])];
  if (opts.signatureFile !== undefined) {
    const rel = relativeInside(target, opts.signatureFile);
    if (rel !== undefined) ignore.push(rel);
  }
  const manifest = await createManifest([target], { ...opts, ignore });
  return signManifest(manifest, key);
}

/** Writes the bundle as compact JSON (as the OpenSSF tool does), atomically. */
export async function writeSignature(bundle: Bundle, file: string): Promise<void> {
  await writeFileAtomically(file, JSON.stringify(bundle));
}

/** Reads a bundle; unreadable files and anything but a DSSE bundle are BulwarkErrors. */
export async function readSignature(file: string): Promise<Bundle> {
  const json = await readJsonFile(file, 'a signature bundle written by "bulwark sign" or model_signing');
  return parseBundle(json, file);
}
