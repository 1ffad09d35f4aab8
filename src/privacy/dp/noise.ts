import { randomFillSync } from 'node:crypto';
import { Rng } from '../../core/index.js';

/**
 * Where privacy noise comes from. The default is seeded, so a run repeats exactly; a
 * release that must resist an adversary who can guess the seed asks for `secureNoise()`
 * (the operating system's cryptographic generator).
 */
export interface NoiseSource {
  readonly kind: 'seeded' | 'secure';
  /** Uniform in (0, 1). */
  uniform(): number;
  /** Standard normal. */
  normal(): number;
  /** out[i] = scale · N(0, 1), independently (at float32 resolution: for training noise). */
  fillNormal(out: Float32Array | Float64Array, scale: number): void;
  /** out[i] uniform in (0, 1), independently (at float32 resolution: for dropout masks). */
  fillUniform(out: Float32Array): void;
}

// Ziggurat tables (Marsaglia and Tsang 2000, in Doornik's 2005 form, which draws the layer
// and the uniform independently): 128 layers of equal area under the normal density.
const ZIG_C = 128;
const ZIG_R = 3.442619855899;
const ZIG_V = 9.91256303526217e-3;
const ZIG_X = new Float64Array(ZIG_C + 1);
const ZIG_RATIO = new Float64Array(ZIG_C);
{
  let f = Math.exp(-0.5 * ZIG_R * ZIG_R);
  ZIG_X[0] = ZIG_V / f;
  ZIG_X[1] = ZIG_R;
  ZIG_X[ZIG_C] = 0;
  for (let i = 2; i < ZIG_C; i++) {
    ZIG_X[i] = Math.sqrt(-2 * Math.log(ZIG_V / ZIG_X[i - 1] + f));
    f = Math.exp(-0.5 * ZIG_X[i] * ZIG_X[i]);
  }
  for (let i = 0; i < ZIG_C; i++) ZIG_RATIO[i] = ZIG_X[i + 1] / ZIG_X[i];
}

abstract class Ziggurat {
  abstract uniform(): number;
  abstract uint32(): number;

  normal(): number {
    const u = 2 * this.uniform() - 1;
    const i = this.uint32() & 0x7f;
    // Inside the layer's rectangle: accepted at once (about 99% of draws).
    if (Math.abs(u) < ZIG_RATIO[i]) return u * ZIG_X[i];
    return this.outsideRectangle(u, i);
  }

  /** The rest of the ziggurat for a draw that fell outside its layer's rectangle. */
  protected outsideRectangle(u: number, i: number): number {
    if (i === 0) return this.tail(u < 0);
    const x = u * ZIG_X[i];
    const f0 = Math.exp(-0.5 * (ZIG_X[i] * ZIG_X[i] - x * x));
    const f1 = Math.exp(-0.5 * (ZIG_X[i + 1] * ZIG_X[i + 1] - x * x));
    if (f1 + this.uniform() * (f0 - f1) < 1) return x;
    return this.normal();
  }

  private tail(negative: boolean): number {
    let x: number;
    let y: number;
    do {
      x = Math.log(this.uniform()) / ZIG_R;
      y = Math.log(this.uniform());
    } while (-2 * y < x * x);
    return negative ? x - ZIG_R : ZIG_R - x;
  }

  fillNormal(out: Float32Array | Float64Array, scale: number): void {
    for (let i = 0; i < out.length; i++) out[i] = scale * this.normal();
  }

  fillUniform(out: Float32Array): void {
    for (let i = 0; i < out.length; i++) out[i] = this.uniform();
  }
}

/**
 * xoshiro128** kept in signed 32-bit locals (core's Rng stores unsigned values, which V8
 * boxes as doubles: fine for shuffling, too slow for the hundreds of thousands of noise
 * values DP-SGD draws per step). Seeded from core's Rng so a seed means one thing everywhere.
 */
class SeededNoise extends Ziggurat implements NoiseSource {
  readonly kind = 'seeded';
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  constructor(seed: number) {
    super();
    const r = new Rng(seed);
    this.a = r.nextUint32() | 0;
    this.b = r.nextUint32() | 0;
    this.c = r.nextUint32() | 0;
    this.d = r.nextUint32() | 0 || 1;
  }
  uint32(): number {
    const s0 = this.a;
    const s1 = this.b;
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9);
    const t = s1 << 9;
    const s2 = this.c ^ s0;
    const s3 = this.d ^ s1;
    this.b = s1 ^ s2;
    this.a = s0 ^ s3;
    this.c = s2 ^ t;
    this.d = rotl(s3, 11);
    return result;
  }
  uniform(): number {
    return ((this.uint32() >>> 0) + 0.5) / 4294967296;
  }

  override fillUniform(out: Float32Array): void {
    let a = this.a;
    let b = this.b;
    let c = this.c;
    let d = this.d;
    for (let k = 0; k < out.length; k++) {
      const r = Math.imul(rotl(Math.imul(b, 5), 7), 9);
      const t = b << 9;
      c ^= a;
      d ^= b;
      b ^= c;
      a ^= d;
      c ^= t;
      d = rotl(d, 11);
      out[k] = ((r >>> 8) + 0.5) / 16777216;
    }
    this.a = a;
    this.b = b;
    this.c = c;
    this.d = d;
  }

  /**
   * The ziggurat with the generator inlined and one 32-bit draw per value: bits 0–6 pick
   * the layer and bits 7–31 (disjoint, so independent) the position in it. 25 bits is more
   * than a float32 holds, and DP-SGD draws hundreds of thousands of these per step.
   */
  override fillNormal(out: Float32Array | Float64Array, scale: number): void {
    let a = this.a;
    let b = this.b;
    let c = this.c;
    let d = this.d;
    for (let k = 0; k < out.length; k++) {
      const r = Math.imul(rotl(Math.imul(b, 5), 7), 9);
      const t = b << 9;
      c ^= a;
      d ^= b;
      b ^= c;
      a ^= d;
      c ^= t;
      d = rotl(d, 11);
      const i = r & 0x7f;
      const u = ((r >>> 7) + 0.5) / 16777216 - 1;
      if (Math.abs(u) < ZIG_RATIO[i]) {
        out[k] = scale * u * ZIG_X[i];
      } else {
        this.a = a;
        this.b = b;
        this.c = c;
        this.d = d;
        out[k] = scale * this.outsideRectangle(u, i);
        a = this.a;
        b = this.b;
        c = this.c;
        d = this.d;
      }
    }
    this.a = a;
    this.b = b;
    this.c = c;
    this.d = d;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

class SecureNoise extends Ziggurat implements NoiseSource {
  readonly kind = 'secure';
  private readonly buf = new Uint32Array(8192);
  private pos = this.buf.length;
  private refill(): void {
    randomFillSync(this.buf);
    this.pos = 0;
  }
  uint32(): number {
    if (this.pos >= this.buf.length) this.refill();
    return this.buf[this.pos++];
  }
  uniform(): number {
    for (;;) {
      if (this.pos + 2 > this.buf.length) this.refill();
      // 53 random bits, so every double in (0, 1) on the 2^-53 grid is reachable.
      const hi = this.buf[this.pos++] >>> 5;
      const lo = this.buf[this.pos++] >>> 6;
      const u = (hi * 67108864 + lo) / 9007199254740992;
      if (u > 0) return u;
    }
  }
}

export function seededNoise(seed = 42): NoiseSource {
  return new SeededNoise(seed);
}

export function secureNoise(): NoiseSource {
  return new SecureNoise();
}
