/**
 * SHA-256 (FIPS 180-4) for many small inputs. node:crypto costs several microseconds per
 * hash object, which for a million CSV rows (plus a million Merkle nodes) was most of the
 * time and most of the garbage; this one is reset and reused, allocates nothing per hash and
 * reads its input in place. Whole files still go through node:crypto (OpenSSL, SHA-NI).
 */
const K = Int32Array.from([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
  0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
  0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
  0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);
const IV = Int32Array.from([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);

export class Sha256 {
  private readonly h = new Int32Array(8);
  private readonly w = new Int32Array(64);
  private readonly block = new Uint8Array(64);
  private blockLen = 0;
  private total = 0;

  constructor() {
    this.reset();
  }

  reset(): this {
    this.h.set(IV);
    this.blockLen = 0;
    this.total = 0;
    return this;
  }

  update(data: Uint8Array, start = 0, end = data.length): this {
    this.total += end - start;
    let p = start;
    if (this.blockLen > 0) {
      const take = Math.min(64 - this.blockLen, end - p);
      // Byte loops, not set(subarray()): under 64 bytes the view allocation costs more than the copy.
      for (let i = 0; i < take; i++) this.block[this.blockLen + i] = data[p + i];
      this.blockLen += take;
      p += take;
      if (this.blockLen < 64) return this;
      this.compress(this.block, 0);
      this.blockLen = 0;
    }
    for (; p + 64 <= end; p += 64) this.compress(data, p);
    if (p < end) {
      for (let i = 0; i < end - p; i++) this.block[i] = data[p + i];
      this.blockLen = end - p;
    }
    return this;
  }

  /** Writes the 32-byte digest at `out[off]`; call reset() before hashing again. */
  digestInto(out: Uint8Array, off = 0): void {
    const bits = this.total * 8;
    const b = this.block;
    b[this.blockLen++] = 0x80;
    if (this.blockLen > 56) {
      b.fill(0, this.blockLen);
      this.compress(b, 0);
      this.blockLen = 0;
    }
    b.fill(0, this.blockLen, 56);
    const hi = Math.floor(bits / 0x100000000), lo = bits >>> 0;
    b[56] = hi >>> 24; b[57] = hi >>> 16; b[58] = hi >>> 8; b[59] = hi;
    b[60] = lo >>> 24; b[61] = lo >>> 16; b[62] = lo >>> 8; b[63] = lo;
    this.compress(b, 0);
    for (let i = 0; i < 8; i++) {
      const v = this.h[i];
      out[off + 4 * i] = v >>> 24;
      out[off + 4 * i + 1] = v >>> 16;
      out[off + 4 * i + 2] = v >>> 8;
      out[off + 4 * i + 3] = v;
    }
  }

  private compress(src: Uint8Array, o: number): void {
    const w = this.w, h = this.h;
    for (let i = 0; i < 16; i++, o += 4) w[i] = (src[o] << 24) | (src[o + 1] << 16) | (src[o + 2] << 8) | src[o + 3];
    for (let i = 16; i < 64; i++) {
      const x = w[i - 15], y = w[i - 2];
      const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
      const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) | 0;
    }
    let a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (let i = 0; i < 64; i++) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const t1 = (hh + S1 + ((e & f) ^ (~e & g)) + K[i] + w[i]) | 0;
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
      hh = g; g = f; f = e; e = (d + t1) | 0;
      d = c; c = b; b = a; a = (t1 + t2) | 0;
    }
    h[0] = (h[0] + a) | 0; h[1] = (h[1] + b) | 0; h[2] = (h[2] + c) | 0; h[3] = (h[3] + d) | 0;
    h[4] = (h[4] + e) | 0; h[5] = (h[5] + f) | 0; h[6] = (h[6] + g) | 0; h[7] = (h[7] + hh) | 0;
  }
}
