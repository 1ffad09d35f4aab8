/**
 * Just enough DER and PEM for the key files: node:crypto in Node 20 cannot read or write
 * ML-DSA keys, so their PKCS#8 and SPKI encodings (IETF LAMPS, RFC 9881) are built here.
 */

/** id-ml-dsa-65, 2.16.840.1.101.3.4.3.18, as DER content bytes. */
export const OID_ML_DSA_65 = Uint8Array.from([0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, 0x12]);
/** The other ML-DSA parameter sets, recognised only to be refused by name. */
export const OID_ML_DSA_44 = Uint8Array.from([0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, 0x11]);
export const OID_ML_DSA_87 = Uint8Array.from([0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, 0x13]);

export interface Tlv {
  tag: number;
  /** Content start and end (exclusive) in the buffer. */
  start: number;
  end: number;
}

/** Reads one TLV at `offset`; throws on truncation or indefinite lengths (never valid DER). */
export function readTlv(buf: Uint8Array, offset: number, limit = buf.length): Tlv {
  if (offset + 2 > limit) throw new Error('truncated DER');
  const tag = buf[offset];
  let len = buf[offset + 1];
  let start = offset + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 3 || start + n > limit) throw new Error('bad DER length');
    len = 0;
    for (let i = 0; i < n; i++) len = (len << 8) | buf[start + i];
    start += n;
  }
  if (start + len > limit) throw new Error('truncated DER');
  return { tag, start, end: start + len };
}

function encodeLength(n: number): number[] {
  if (n < 0x80) return [n];
  const bytes: number[] = [];
  for (let v = n; v > 0; v >>= 8) bytes.unshift(v & 0xff);
  return [0x80 | bytes.length, ...bytes];
}

export function tlv(tag: number, ...contents: Uint8Array[]): Uint8Array {
  const len = contents.reduce((s, c) => s + c.length, 0);
  const head = [tag, ...encodeLength(len)];
  const out = new Uint8Array(head.length + len);
  out.set(head);
  let o = head.length;
  for (const c of contents) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

const ALG_ML_DSA_65 = (): Uint8Array => tlv(0x30, tlv(0x06, OID_ML_DSA_65)); // no parameters, per RFC 9881

/** SubjectPublicKeyInfo holding the raw 1952-byte ML-DSA-65 public key in the BIT STRING. */
export function mlDsaSpki(publicKey: Uint8Array): Uint8Array {
  return tlv(0x30, ALG_ML_DSA_65(), tlv(0x03, Uint8Array.of(0), publicKey));
}

/** PKCS#8 OneAsymmetricKey holding the 32-byte seed in its `seed [0] IMPLICIT` form. */
export function mlDsaPkcs8(seed: Uint8Array): Uint8Array {
  return tlv(0x30, tlv(0x02, Uint8Array.of(0)), ALG_ML_DSA_65(), tlv(0x04, tlv(0x80, seed)));
}

/** The algorithm OID (content bytes) and the key field of an SPKI or PKCS#8 structure. */
export function parseKeyInfo(der: Uint8Array, kind: 'spki' | 'pkcs8'): { oid: Uint8Array; key: Tlv } {
  const outer = readTlv(der, 0);
  if (outer.tag !== 0x30) throw new Error('not a DER SEQUENCE');
  let p = outer.start;
  if (kind === 'pkcs8') {
    const version = readTlv(der, p, outer.end);
    if (version.tag !== 0x02) throw new Error('PKCS#8 version missing');
    p = version.end;
  }
  const alg = readTlv(der, p, outer.end);
  if (alg.tag !== 0x30) throw new Error('AlgorithmIdentifier missing');
  const oid = readTlv(der, alg.start, alg.end);
  if (oid.tag !== 0x06) throw new Error('algorithm OID missing');
  const key = readTlv(der, alg.end, outer.end);
  if (key.tag !== (kind === 'spki' ? 0x03 : 0x04)) throw new Error('key field missing');
  return { oid: der.subarray(oid.start, oid.end), key };
}

/**
 * The seed or expanded key inside an ML-DSA PKCS#8 privateKey OCTET STRING: RFC 9881 allows
 * `seed [0]`, `expandedKey OCTET STRING` or `both SEQUENCE {seed, expandedKey}`.
 */
export function mlDsaPrivateKey(der: Uint8Array, key: Tlv): { seed?: Uint8Array; expanded?: Uint8Array } {
  const inner = readTlv(der, key.start, key.end);
  const body = der.subarray(inner.start, inner.end);
  if (inner.tag === 0x80) return { seed: body };
  if (inner.tag === 0x04) return { expanded: body };
  if (inner.tag === 0x30) {
    const seed = readTlv(der, inner.start, inner.end);
    return { seed: der.subarray(seed.start, seed.end) };
  }
  throw new Error('unknown ML-DSA private key form');
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

export interface PemBlock {
  label: string;
  der: Uint8Array;
}

/** Every PEM block in a text; anything around them (openssl/certtool preambles) is skipped. */
export function pemBlocks(text: string): PemBlock[] {
  const out: PemBlock[] = [];
  const re = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const body = m[2].replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body)) throw new Error(`the ${m[1]} block is not base64`);
    out.push({ label: m[1], der: new Uint8Array(Buffer.from(body, 'base64')) });
  }
  return out;
}

/** PEM as OpenSSL and Python's cryptography write it: 64-column base64, trailing newline. */
export function toPem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64');
  return `-----BEGIN ${label}-----\n${b64.replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END ${label}-----\n`;
}
