export { sha256File, sha256Bytes, type FileDigest } from './hash.js';
export {
  generateKeyPair,
  writeKeyPair,
  loadPrivateKey,
  loadPublicKey,
  publicKeyPem,
  publicKeyHint,
  signBytes,
  verifyBytes,
  KEY_ALGORITHMS,
  type KeyAlgorithm,
  type SigningKey,
  type VerifyingKey,
} from './keys.js';
export {
  createManifest,
  writeManifest,
  readManifest,
  subjectDigest,
  STATEMENT_TYPE,
  PREDICATE_TYPE,
  type Manifest,
  type ManifestOptions,
  type ManifestResource,
} from './manifest.js';
export { merkleRoot } from './merkle.js';
export { signPath, signManifest, writeSignature, readSignature, type SignOptions } from './sign.js';
export { verifyPath, checkManifest, type VerificationResult, type FileChange, type VerifyOptions } from './verify.js';
export type { Bundle, DsseEnvelope } from './dsse.js';
export * from './ledger/index.js';
