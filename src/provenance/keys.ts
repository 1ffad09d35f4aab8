import { createHash, createPrivateKey, createPublicKey, generateKeyPair as nodeGenerateKeyPair, randomBytes, sign, verify, type KeyObject } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { ml_dsa65 } from '@noble/post-quantum/ml-dsa.js';
import { BulwarkError } from '../core/index.js';
import { mlDsaPkcs8, mlDsaPrivateKey, mlDsaSpki, OID_ML_DSA_44, OID_ML_DSA_65, OID_ML_DSA_87, parseKeyInfo, pemBlocks, sameBytes, toPem, type PemBlock } from './der.js';
import { readError } from './stream.js';

/**
 * Signing keys. ECDSA and Ed25519 go through node:crypto; ML-DSA-65 (FIPS 204, pure mode,
 * empty context — what the OpenSSF tool's ML-DSA signer does) through @noble/post-quantum,
 * with its key files encoded by hand (see der.ts). All keys are PEM: PKCS#8 private, SPKI public.
 */
export type KeyAlgorithm = 'ed25519' | 'ecdsa-p256' | 'ecdsa-p384' | 'ecdsa-p521' | 'ml-dsa-65';

export const KEY_ALGORITHMS: readonly KeyAlgorithm[] = ['ed25519', 'ecdsa-p256', 'ecdsa-p384', 'ecdsa-p521', 'ml-dsa-65'];

/** A public key; opaque apart from its algorithm and encodings. */
export interface VerifyingKey {
  readonly kind: 'public';
  readonly alg: KeyAlgorithm;
  /** SubjectPublicKeyInfo DER. */
  readonly spki: Uint8Array;
}

/** A private key; its material stays inside this module. */
export interface SigningKey {
  readonly kind: 'private';
  readonly alg: KeyAlgorithm;
  readonly publicKey: VerifyingKey;
}

type Material = { node: KeyObject } | { mlDsa: Uint8Array };
const material = new WeakMap<SigningKey | VerifyingKey, Material>();

const CURVES: Record<string, { alg: KeyAlgorithm; nodeCurve: string; hash: string; bytes: number }> = {
  prime256v1: { alg: 'ecdsa-p256', nodeCurve: 'P-256', hash: 'sha256', bytes: 32 },
  secp384r1: { alg: 'ecdsa-p384', nodeCurve: 'P-384', hash: 'sha384', bytes: 48 },
  secp521r1: { alg: 'ecdsa-p521', nodeCurve: 'P-521', hash: 'sha512', bytes: 66 },
};
const curveOf = (alg: KeyAlgorithm) => Object.values(CURVES).find((c) => c.alg === alg);

export async function generateKeyPair(alg: KeyAlgorithm): Promise<{ privatePem: string; publicPem: string }> {
  if (alg === 'ml-dsa-65') {
    const seed = new Uint8Array(randomBytes(32));
    const { publicKey } = ml_dsa65.keygen(seed);
    return { privatePem: toPem('PRIVATE KEY', mlDsaPkcs8(seed)), publicPem: toPem('PUBLIC KEY', mlDsaSpki(publicKey)) };
  }
  const enc = { publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } } as const;
  const curve = curveOf(alg);
  if (alg !== 'ed25519' && curve === undefined) throw new BulwarkError('E_USAGE', `unknown key algorithm "${String(alg)}"; choose one of ${KEY_ALGORITHMS.join(', ')}`);
  const pair = await new Promise<{ publicKey: string; privateKey: string }>((resolve, reject) => {
    const done = (err: Error | null, publicKey: string, privateKey: string) => (err ? reject(err) : resolve({ publicKey, privateKey }));
    if (curve === undefined) nodeGenerateKeyPair('ed25519', enc, done);
    else nodeGenerateKeyPair('ec', { namedCurve: curve.nodeCurve, ...enc }, done);
  });
  return { privatePem: pair.privateKey, publicPem: pair.publicKey };
}

/**
 * Writes `outBase.key` (mode 0600) and `outBase.pub`. Refuses to overwrite either: losing a
 * private key to a mistyped path cannot be undone.
 */
export async function writeKeyPair(alg: KeyAlgorithm, outBase: string): Promise<{ privateFile: string; publicFile: string }> {
  const privateFile = `${outBase}.key`, publicFile = `${outBase}.pub`;
  for (const f of [privateFile, publicFile]) {
    if (await fs.stat(f).then(() => true, () => false)) throw new BulwarkError('E_OUTPUT', `${f} already exists; refusing to overwrite a key — choose another name or remove it first`);
  }
  const { privatePem, publicPem } = await generateKeyPair(alg);
  try {
    await fs.writeFile(privateFile, privatePem, { flag: 'wx', mode: 0o600 });
    await fs.chmod(privateFile, 0o600); // the mode above is filtered by umask; be explicit
    await fs.writeFile(publicFile, publicPem, { flag: 'wx' });
  } catch (e) {
    await fs.rm(privateFile, { force: true }).catch(() => {});
    throw new BulwarkError('E_OUTPUT', `cannot write the key pair ${outBase}.{key,pub}: ${(e as Error).message}`, { cause: e });
  }
  return { privateFile, publicFile };
}

async function readKeyFile(file: string): Promise<Buffer> {
  try {
    return await fs.readFile(file);
  } catch (e) {
    throw readError(file, e);
  }
}

function blocksOf(file: string, bytes: Buffer): PemBlock[] {
  try {
    return pemBlocks(bytes.toString('latin1'));
  } catch (e) {
    throw new BulwarkError('E_DATA_PARSE', `${file}: ${(e as Error).message}`);
  }
}

function unsupported(file: string, what: string): BulwarkError {
  return new BulwarkError('E_DATA_VALUE', `${file} holds ${what}, which Bulwark does not sign with; use one of ${KEY_ALGORITHMS.join(', ')} (bulwark keygen)`);
}

function describeNodeKey(file: string, key: KeyObject): KeyAlgorithm {
  if (key.asymmetricKeyType === 'ed25519') return 'ed25519';
  if (key.asymmetricKeyType === 'ec') {
    const curve = CURVES[key.asymmetricKeyDetails?.namedCurve ?? ''];
    if (curve) return curve.alg;
    throw unsupported(file, `an EC key on curve ${key.asymmetricKeyDetails?.namedCurve}`);
  }
  throw unsupported(file, `a ${key.asymmetricKeyType?.toUpperCase() ?? 'unknown'} key`);
}

function checkMlDsaOid(file: string, oid: Uint8Array): boolean {
  if (sameBytes(oid, OID_ML_DSA_65)) return true;
  if (sameBytes(oid, OID_ML_DSA_44) || sameBytes(oid, OID_ML_DSA_87)) throw unsupported(file, 'an ML-DSA-44/87 key');
  return false;
}

function makePublic(alg: KeyAlgorithm, spki: Uint8Array, m: Material): VerifyingKey {
  const pub: VerifyingKey = Object.freeze({ kind: 'public', alg, spki });
  material.set(pub, m);
  return pub;
}

/** Loads a PEM private key (PKCS#8, or SEC1 "EC PRIVATE KEY"); text around the PEM block is ignored. */
export async function loadPrivateKey(file: string): Promise<SigningKey> {
  const blocks = blocksOf(file, await readKeyFile(file));
  const block = blocks.find((b) => b.label.endsWith('PRIVATE KEY'));
  if (block === undefined) {
    if (blocks.some((b) => b.label === 'PUBLIC KEY')) throw new BulwarkError('E_USAGE', `${file} holds a public key; signing needs the private key (the .key file from bulwark keygen)`);
    throw new BulwarkError('E_DATA_PARSE', `${file} holds no PEM private key ("-----BEGIN PRIVATE KEY-----")`);
  }
  if (block.label === 'ENCRYPTED PRIVATE KEY') throw new BulwarkError('E_DATA_VALUE', `${file} is encrypted; decrypt it first (openssl pkey -in ${file} -out plain.key)`);
  try {
    if (block.label === 'PRIVATE KEY') {
      const { oid, key } = parseKeyInfo(block.der, 'pkcs8');
      if (checkMlDsaOid(file, oid)) {
        const { seed, expanded } = mlDsaPrivateKey(block.der, key);
        if (seed !== undefined && seed.length !== 32) throw new Error('the ML-DSA seed must be 32 bytes');
        const secretKey = seed !== undefined ? ml_dsa65.keygen(seed).secretKey : expanded!;
        const publicKey = ml_dsa65.getPublicKey(secretKey);
        return makePrivate('ml-dsa-65', makePublic('ml-dsa-65', mlDsaSpki(publicKey), { mlDsa: publicKey }), { mlDsa: secretKey });
      }
    }
    const node = createPrivateKey({ key: toPem(block.label, block.der), format: 'pem' });
    const alg = describeNodeKey(file, node);
    const spki = new Uint8Array(createPublicKey(node).export({ type: 'spki', format: 'der' }));
    return makePrivate(alg, makePublic(alg, spki, { node: createPublicKey(node) }), { node });
  } catch (e) {
    if (e instanceof BulwarkError) throw e;
    throw new BulwarkError('E_DATA_PARSE', `${file}: not a readable private key (${(e as Error).message})`);
  }
}

function makePrivate(alg: KeyAlgorithm, publicKey: VerifyingKey, m: Material): SigningKey {
  const key: SigningKey = Object.freeze({ kind: 'private', alg, publicKey });
  material.set(key, m);
  return key;
}

/**
 * Loads a public key: PEM SPKI (text before the block, such as certtool's dump, is ignored),
 * DER SPKI, or — as the OpenSSF tool stores them — a raw 1952-byte ML-DSA-65 public key.
 */
export async function loadPublicKey(file: string): Promise<VerifyingKey> {
  const bytes = await readKeyFile(file);
  const blocks = blocksOf(file, bytes);
  let der: Uint8Array;
  if (blocks.length > 0) {
    const block = blocks.find((b) => b.label === 'PUBLIC KEY');
    if (block === undefined) {
      if (blocks.some((b) => b.label.endsWith('PRIVATE KEY'))) throw new BulwarkError('E_USAGE', `${file} holds a private key; verification takes the public key (the .pub file) — never hand out the private one`);
      throw new BulwarkError('E_DATA_PARSE', `${file} holds no PEM public key ("-----BEGIN PUBLIC KEY-----"); found ${blocks.map((b) => b.label).join(', ')}`);
    }
    der = block.der;
  } else if (bytes.length === ml_dsa65.lengths.publicKey) {
    return makePublic('ml-dsa-65', mlDsaSpki(bytes), { mlDsa: new Uint8Array(bytes) });
  } else {
    der = new Uint8Array(bytes);
  }
  try {
    const { oid, key } = parseKeyInfo(der, 'spki');
    if (checkMlDsaOid(file, oid)) {
      const raw = der.subarray(key.start + 1, key.end); // skip the BIT STRING's unused-bits byte
      if (raw.length !== ml_dsa65.lengths.publicKey) throw new Error(`an ML-DSA-65 public key is ${ml_dsa65.lengths.publicKey} bytes, found ${raw.length}`);
      return makePublic('ml-dsa-65', der, { mlDsa: raw });
    }
    const node = createPublicKey({ key: Buffer.from(der), format: 'der', type: 'spki' });
    return makePublic(describeNodeKey(file, node), new Uint8Array(node.export({ type: 'spki', format: 'der' })), { node });
  } catch (e) {
    if (e instanceof BulwarkError) throw e;
    throw new BulwarkError('E_DATA_PARSE', `${file}: not a readable public key (${(e as Error).message}); expected PEM "-----BEGIN PUBLIC KEY-----"`);
  }
}

/** The public key as PEM SPKI text. */
export function publicKeyPem(pub: VerifyingKey): string {
  return toPem('PUBLIC KEY', pub.spki);
}

/**
 * The key hint a Sigstore bundle carries, as the OpenSSF tool computes it: SHA-256 (hex) of
 * the PEM text for EC (and Ed25519) keys; "ML_DSA_65:" + SHA-256 of the raw key for ML-DSA.
 */
export function publicKeyHint(pub: VerifyingKey): string {
  const m = material.get(pub);
  if (m !== undefined && 'mlDsa' in m) return `ML_DSA_65:${createHash('sha256').update(m.mlDsa).digest('hex')}`;
  return createHash('sha256').update(publicKeyPem(pub)).digest('hex');
}

function materialOf<T extends SigningKey | VerifyingKey>(key: T): Material {
  const m = material.get(key);
  if (m === undefined) throw new BulwarkError('E_USAGE', 'not a key made by loadPrivateKey/loadPublicKey');
  return m;
}

/**
 * Signs bytes. ECDSA hashes with the curve's hash (P-256/SHA-256, P-384/SHA-384,
 * P-521/SHA-512) and returns a DER signature, as Sigstore does.
 */
export function signBytes(key: SigningKey, data: Uint8Array): Uint8Array {
  const m = materialOf(key);
  if ('mlDsa' in m) return ml_dsa65.sign(data, m.mlDsa);
  if (key.alg === 'ed25519') return new Uint8Array(sign(null, data, m.node));
  return new Uint8Array(sign(curveOf(key.alg)!.hash, data, { key: m.node, dsaEncoding: 'der' }));
}

/** True when `sig` is a valid signature of `data` by `pub`; false (never a throw) otherwise. */
export function verifyBytes(pub: VerifyingKey, data: Uint8Array, sig: Uint8Array): boolean {
  const m = materialOf(pub);
  try {
    if ('mlDsa' in m) return ml_dsa65.verify(sig, data, m.mlDsa);
    if (pub.alg === 'ed25519') return verify(null, data, m.node, sig);
    const curve = curveOf(pub.alg)!;
    if (verify(curve.hash, data, { key: m.node, dsaEncoding: 'der' }, sig)) return true;
    // Some signers emit raw r||s (IEEE P1363) instead of DER; accept it rather than misreport a forgery.
    return sig.length === 2 * curve.bytes && verify(curve.hash, data, { key: m.node, dsaEncoding: 'ieee-p1363' }, sig);
  } catch {
    return false;
  }
}
