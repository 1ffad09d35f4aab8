import { BulwarkError } from '../core/index.js';
import { publicKeyHint, signBytes, verifyBytes, type SigningKey, type VerifyingKey } from './keys.js';

/**
 * DSSE envelopes inside Sigstore bundles (v0.3 JSON), key-based: the public key is named by
 * a hint, never carried (a verifier must bring its own), and there is no transparency-log
 * entry. This is what the OpenSSF model-signing tool writes for `sign key`.
 */
export const BUNDLE_MEDIA_TYPE = 'application/vnd.dev.sigstore.bundle.v0.3+json';
export const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';

export interface DsseSignature {
  sig: string;
  /** The OpenSSF tool writes "" (v1.0 wrote null); not used to pick the key. */
  keyid?: string | null;
}

export interface DsseEnvelope {
  /** Base64 of the payload bytes. */
  payload: string;
  payloadType: string;
  signatures: DsseSignature[];
}

export interface Bundle {
  mediaType: string;
  verificationMaterial: {
    publicKey?: { hint?: string | null; rawBytes?: string; keyDetails?: string };
    tlogEntries?: unknown[];
  };
  dsseEnvelope: DsseEnvelope;
}

/** DSSE pre-authentication encoding: "DSSEv1 <len> <type> <len> <body>", lengths in bytes. */
export function pae(payloadType: string, payload: Uint8Array): Uint8Array {
  const type = Buffer.from(payloadType, 'utf8');
  const head = Buffer.from(`DSSEv1 ${type.length} ${payloadType} ${payload.length} `, 'utf8');
  return Buffer.concat([head, payload]);
}

/** Signs `payload` into a bundle carrying the key's hint. */
export function createBundle(payload: Uint8Array, key: SigningKey, payloadType = IN_TOTO_PAYLOAD_TYPE): Bundle {
  const sig = signBytes(key, pae(payloadType, payload));
  return {
    mediaType: BUNDLE_MEDIA_TYPE,
    verificationMaterial: { publicKey: { hint: publicKeyHint(key.publicKey) }, tlogEntries: [] },
    dsseEnvelope: {
      payload: Buffer.from(payload).toString('base64'),
      payloadType,
      signatures: [{ sig: Buffer.from(sig).toString('base64'), keyid: '' }],
    },
  };
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Checks a parsed JSON value has the shape of a DSSE bundle. Shape errors are unusable
 * input (BulwarkError E_DATA_PARSE naming `source`), not failed verification.
 */
export function parseBundle(json: unknown, source: string): Bundle {
  const fail = (what: string): never => {
    throw new BulwarkError('E_DATA_PARSE', `${source} is not a Sigstore bundle with a DSSE envelope: ${what}`);
  };
  if (!isObject(json)) return fail('expected a JSON object');
  if (typeof json.mediaType !== 'string') fail('mediaType missing');
  const env = json.dsseEnvelope;
  if (!isObject(env)) return fail('dsseEnvelope missing (a message-signature bundle cannot sign a manifest)');
  if (typeof env.payload !== 'string' || !BASE64.test(env.payload)) fail('dsseEnvelope.payload must be base64');
  if (typeof env.payloadType !== 'string') fail('dsseEnvelope.payloadType missing');
  const sigs = env.signatures;
  if (!Array.isArray(sigs) || sigs.length === 0) return fail('dsseEnvelope.signatures is empty');
  for (const s of sigs as unknown[]) {
    if (!isObject(s) || typeof s.sig !== 'string' || !BASE64.test(s.sig)) fail('each signature needs a base64 "sig"');
  }
  const vm = json.verificationMaterial;
  if (vm !== undefined && !isObject(vm)) fail('verificationMaterial must be an object');
  return json as unknown as Bundle;
}

export type EnvelopeCheck = { ok: true; payload: Buffer } | { ok: false; reason: string };

/**
 * Verifies the envelope's signature with `pub`. Any one valid signature suffices (DSSE
 * allows several signers). The hint is compared only to explain a failure: it is not
 * signed, so it can neither make a signature valid nor, on its own, invalid.
 */
export function verifyEnvelope(bundle: Bundle, pub: VerifyingKey): EnvelopeCheck {
  if (bundle.mediaType !== BUNDLE_MEDIA_TYPE) {
    return { ok: false, reason: `bundle media type is "${bundle.mediaType}"; only key-signed "${BUNDLE_MEDIA_TYPE}" bundles are verified` };
  }
  const env = bundle.dsseEnvelope;
  const payload = Buffer.from(env.payload, 'base64');
  const message = pae(env.payloadType, payload);
  const valid = env.signatures.some((s) => verifyBytes(pub, message, Buffer.from(s.sig, 'base64')));
  if (!valid) {
    const hint = bundle.verificationMaterial?.publicKey?.hint;
    const ours = publicKeyHint(pub);
    const who = hint && hint !== ours ? `it names a different key (hint ${hint}; this ${pub.alg} key is ${ours})` : `the envelope was altered or signed by another ${pub.alg} key`;
    return { ok: false, reason: `the signature does not verify with the given public key: ${who}` };
  }
  if (env.payloadType !== IN_TOTO_PAYLOAD_TYPE) {
    return { ok: false, reason: `payload type is "${env.payloadType}", expected "${IN_TOTO_PAYLOAD_TYPE}"` };
  }
  return { ok: true, payload };
}
