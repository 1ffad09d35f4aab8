import * as nodeCrypto from 'node:crypto';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import { BulwarkError } from '../../core/index.js';

/**
 * Canonical encoding (format version 1).
 *
 * Everything that is hashed or signed is canonical JSON as in RFC 8785 (JCS): object keys
 * sorted by UTF-16 code units, no whitespace, strings escaped as ECMAScript's JSON.stringify
 * escapes them, numbers in ECMAScript's shortest round-trip form (-0 becomes 0). NaN,
 * Infinity, undefined, functions and bigints are refused rather than silently dropped, so a
 * payload hashes to the same digest in every implementation that follows JCS.
 *
 *   payloadDigest = hex(SHA-256(UTF-8(canonical(payload))))
 *   hash          = hex(SHA-256(UTF-8(canonical({actor, kind, payloadDigest, prevHash, seq, time}))))
 *
 * `seq` is a positive integer, `time` an ISO-8601 UTC string with milliseconds, `prevHash`
 * the previous entry's `hash`, or GENESIS_HASH (64 zeros) for entry 1. The payload enters
 * the entry hash only through its digest, so a verifier holding the digest can check the
 * chain without the payload, and the payload text is stored exactly as it was hashed.
 */

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export const GENESIS_HASH = '0'.repeat(64);
export const LEDGER_FORMAT = 'bulwark-ledger';
export const LEDGER_FORMAT_VERSION = 1;

/** What a caller hands to `append`. `actor` defaults to the store's actor (user@host). */
export interface EntryDraft {
  kind: string;
  payload: JsonValue;
  actor?: string;
}

export interface Entry {
  seq: number;
  /** ISO-8601 UTC, taken inside the write transaction. */
  time: string;
  actor: string;
  kind: string;
  /** The payload exactly as hashed: canonical JSON text. `JSON.parse` it, or use `entryPayload`. */
  payloadJson: string;
  payloadDigest: string;
  prevHash: string;
  hash: string;
}

/** A draft after validation and canonicalisation, ready to be chained inside a transaction. */
export interface PreparedDraft {
  actor: string;
  kind: string;
  payloadJson: string;
  payloadDigest: string;
}

// crypto.hash (Node ≥ 20.12) is a one-shot without a Hash object: verification calls this twice per entry.
const oneShot = typeof nodeCrypto.hash === 'function' ? nodeCrypto.hash : null;

/** Hex SHA-256 of a string's UTF-8 bytes, or of raw bytes. */
export function sha256Hex(data: string | Uint8Array): string {
  return oneShot ? oneShot('sha256', data, 'hex') : nodeCrypto.createHash('sha256').update(data).digest('hex');
}

export function canonicalJson(value: unknown): string {
  try {
    // Without paths first: they are only for the error message, and building one string per key
    // and element cost the audit log, which encodes a payload per request.
    return encode(value, null);
  } catch (e) {
    // Only a value JSON cannot hold gets here: the second pass names where it is.
    if (e === NOT_JSON) return encode(value, '$');
    throw e;
  }
}

const NOT_JSON = Symbol('not JSON');

/** Refuses a value: with a path, saying where and why; without one, with NOT_JSON. */
function notJson(path: string | null, why: string): never {
  if (path === null) throw NOT_JSON;
  throw new BulwarkError('E_DATA_VALUE', `${path} ${why}`);
}

function encode(v: unknown, path: string | null): string {
  if (v === null) return 'null';
  switch (typeof v) {
    case 'boolean':
      return v ? 'true' : 'false';
    case 'string':
      return JSON.stringify(v);
    case 'number':
      if (!Number.isFinite(v)) notJson(path, `is ${v}; JSON has no such number`);
      return JSON.stringify(v);
    case 'object': {
      if (Array.isArray(v)) {
        // Indexing visits holes too, so a sparse array is refused like any undefined.
        let out = '[';
        for (let i = 0; i < v.length; i++) out += (i > 0 ? ',' : '') + encode(v[i], path === null ? null : `${path}[${i}]`);
        return `${out}]`;
      }
      const proto = Object.getPrototypeOf(v) as unknown;
      if (proto !== Object.prototype && proto !== null) notJson(path, `is a ${(v as object).constructor?.name ?? 'object'}, not a plain JSON object`);
      const keys = Object.keys(v).sort();
      let out = '{';
      for (let i = 0; i < keys.length; i++) {
        const k = keys[i] as string;
        out += `${i > 0 ? ',' : ''}${JSON.stringify(k)}:${encode((v as Record<string, unknown>)[k], path === null ? null : `${path}.${k}`)}`;
      }
      return `${out}}`;
    }
    default:
      return notJson(path, `is ${typeof v}, which JSON cannot represent`);
  }
}

/**
 * The text whose SHA-256 is an entry's hash. Written out by hand (keys already in sorted
 * order) because verification runs it a million times; a test pins it to `canonicalJson`.
 */
export function entryHashInput(e: Omit<Entry, 'hash' | 'payloadJson'>): string {
  return `{"actor":${JSON.stringify(e.actor)},"kind":${JSON.stringify(e.kind)},"payloadDigest":${JSON.stringify(e.payloadDigest)},"prevHash":${JSON.stringify(e.prevHash)},"seq":${e.seq},"time":${JSON.stringify(e.time)}}`;
}

export function entryHash(e: Omit<Entry, 'hash' | 'payloadJson'>): string {
  return sha256Hex(entryHashInput(e));
}

export function entryPayload(e: Entry): JsonValue {
  return JSON.parse(e.payloadJson) as JsonValue;
}

export function defaultActor(): string {
  let user = process.env.USER ?? 'unknown';
  try {
    user = os.userInfo().username;
  } catch {
    // no passwd entry (containers): keep $USER
  }
  return `${user}@${os.hostname()}`;
}

const MAX_LABEL = 256;

function checkLabel(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_LABEL) {
    throw new BulwarkError('E_USAGE', `entry ${field} must be a non-empty string of at most ${MAX_LABEL} characters, not ${JSON.stringify(value) ?? String(value)}`);
  }
  return value;
}

/** Validates a draft and fixes its payload bytes. Throws for this caller only, before any write. */
export function prepareDraft(d: EntryDraft, fallbackActor: string): PreparedDraft {
  if (d === null || typeof d !== 'object') throw new BulwarkError('E_USAGE', 'an entry draft must be an object { kind, payload, actor? }');
  const kind = checkLabel(d.kind, 'kind');
  const actor = checkLabel(d.actor ?? fallbackActor, 'actor');
  if (d.payload === undefined) throw new BulwarkError('E_USAGE', `entry payload is missing (kind '${kind}'); use null for none`);
  const payloadJson = canonicalJson(d.payload);
  return { actor, kind, payloadJson, payloadDigest: sha256Hex(payloadJson) };
}

/** Links prepared drafts onto a head. Called inside the store's write transaction. */
export function chainEntries(drafts: readonly PreparedDraft[], head: { seq: number; hash: string } | null, time: string): Entry[] {
  let seq = head ? head.seq : 0;
  let prevHash = head ? head.hash : GENESIS_HASH;
  const out: Entry[] = new Array(drafts.length);
  for (let i = 0; i < drafts.length; i++) {
    const d = drafts[i];
    seq += 1;
    const e: Entry = { seq, time, actor: d.actor, kind: d.kind, payloadJson: d.payloadJson, payloadDigest: d.payloadDigest, prevHash, hash: '' };
    e.hash = entryHash(e);
    out[i] = e;
    prevHash = e.hash;
  }
  return out;
}

/**
 * Reads the CLI's `--payload JSON|@file`. Bad JSON on the command line is a usage error; bad
 * JSON in a file is a parse error naming the file and position.
 */
export async function readPayloadArg(arg: string): Promise<JsonValue> {
  if (arg.startsWith('@')) {
    const file = arg.slice(1);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      throw new BulwarkError(err.code === 'ENOENT' ? 'E_FILE_NOT_FOUND' : 'E_FILE_READ', `cannot read payload file ${file}: ${err.message}`);
    }
    try {
      return JSON.parse(text) as JsonValue;
    } catch (e) {
      throw new BulwarkError('E_DATA_PARSE', `payload file ${file} is not valid JSON: ${(e as Error).message}`);
    }
  }
  try {
    return JSON.parse(arg) as JsonValue;
  } catch (e) {
    const shown = arg.length > 60 ? `${arg.slice(0, 60)}…` : arg;
    throw new BulwarkError('E_USAGE', `--payload '${shown}' is not valid JSON (${(e as Error).message}); pass JSON text, or @FILE to read it from a file`);
  }
}
