export { sha256File, sha256Bytes, type FileDigest } from './hash.js';
