/**
 * Finds rows whose features repeat an earlier row exactly, by a 53-bit hash of the float32
 * bits in an open-addressing table (16 bytes per distinct row: it also serves the streaming
 * scan of files too large to hold). A repeat whose label differs is a conflicting duplicate:
 * at least one of the two labels is wrong, or the features cannot tell the classes apart.
 */
export class DuplicateIndex {
  private keys = new Float64Array(1024).fill(-1);
  private first = new Int32Array(1024);
  private labels = new Int32Array(1024);
  private size = 0;
  private readonly bits = new Uint32Array(1);
  private readonly view = new Float32Array(this.bits.buffer);

  /**
   * Registers row `index` (features at x[offset … offset + d)); returns the first earlier row
   * with the same features and whether any earlier copy had another label, or null.
   */
  add(x: ArrayLike<number>, offset: number, d: number, index: number, label = -1): { first: number; conflicting: boolean } | null {
    const key = this.hash(x, offset, d);
    let slot = this.slotOf(key);
    if (this.keys[slot] === key) {
      const conflicting = label >= 0 && this.labels[slot] !== label;
      if (conflicting) this.labels[slot] = -2; // remembered: this group holds several labels
      return { first: this.first[slot], conflicting: conflicting || this.labels[slot] === -2 };
    }
    if ((this.size + 1) * 2 > this.keys.length) {
      this.grow();
      slot = this.slotOf(key);
    }
    this.keys[slot] = key;
    this.first[slot] = index;
    this.labels[slot] = label;
    this.size++;
    return null;
  }

  /** After all rows were added: the first row with these features and whether its group mixes labels. */
  lookup(x: ArrayLike<number>, offset: number, d: number): { first: number; conflicting: boolean } | null {
    const key = this.hash(x, offset, d);
    const slot = this.slotOf(key);
    if (this.keys[slot] !== key) return null;
    return { first: this.first[slot], conflicting: this.labels[slot] === -2 };
  }

  private slotOf(key: number): number {
    const mask = this.keys.length - 1;
    let slot = (key % 4294967296) & mask;
    while (this.keys[slot] !== -1 && this.keys[slot] !== key) slot = (slot + 1) & mask;
    return slot;
  }

  private grow(): void {
    const { keys, first, labels } = this;
    this.keys = new Float64Array(keys.length * 2).fill(-1);
    this.first = new Int32Array(keys.length * 2);
    this.labels = new Int32Array(keys.length * 2);
    for (let s = 0; s < keys.length; s++) {
      if (keys[s] === -1) continue;
      const slot = this.slotOf(keys[s]);
      this.keys[slot] = keys[s];
      this.first[slot] = first[s];
      this.labels[slot] = labels[s];
    }
  }

  /** Two independent FNV-1a style 32-bit hashes of the float32 bits, folded into 53 bits. */
  private hash(x: ArrayLike<number>, offset: number, d: number): number {
    let h1 = 0x811c9dc5;
    let h2 = 0x9747b28c;
    for (let j = 0; j < d; j++) {
      const v = x[offset + j];
      this.view[0] = v === 0 ? 0 : v; // -0 and 0 are one value
      const b = this.bits[0];
      h1 = Math.imul(h1 ^ b, 0x01000193);
      h2 = Math.imul(h2 ^ ((b >>> 16) | (b << 16)), 0x5bd1e995);
      h2 ^= h2 >>> 15;
    }
    return (h1 >>> 0) + (h2 >>> 11) * 4294967296;
  }
}

export interface Duplicates {
  /** The first row with the same features, or −1. */
  readonly duplicateOf: Int32Array;
  /** 1 where the row repeats features seen with another label (every copy in such a group is marked). */
  readonly conflicting: Uint8Array;
  /** For rows that are not exact repeats: a row within the near-duplicate radius, or −1. */
  readonly nearDuplicateOf: Int32Array;
}

/** Exact (and, given nearest-neighbour candidates, near) duplicates of in-memory rows. */
export function findDuplicates(
  x: ArrayLike<number>,
  n: number,
  d: number,
  y?: Int32Array,
  near?: { candidate: Int32Array; radius: number },
): Duplicates {
  const index = new DuplicateIndex();
  const duplicateOf = new Int32Array(n).fill(-1);
  const conflicting = new Uint8Array(n);
  const conflictGroups = new Set<number>();
  for (let i = 0; i < n; i++) {
    const hit = index.add(x, i * d, d, i, y ? y[i] : -1);
    if (!hit || !sameRow(x, hit.first, i, d)) continue;
    duplicateOf[i] = hit.first;
    if (hit.conflicting) conflictGroups.add(hit.first);
  }
  for (let i = 0; i < n; i++) {
    const root = duplicateOf[i] >= 0 ? duplicateOf[i] : i;
    if (conflictGroups.has(root)) conflicting[i] = 1;
  }
  const nearDuplicateOf = new Int32Array(n).fill(-1);
  if (near) {
    for (let i = 0; i < n; i++) {
      const j = near.candidate[i];
      // Of a mutual pair only the later row is marked, so removing marked rows keeps one copy.
      if (j < 0 || duplicateOf[i] >= 0 || (j > i && near.candidate[j] === i)) continue;
      let s = 0;
      for (let t = 0; t < d; t++) s += (x[i * d + t] - x[j * d + t]) ** 2;
      if (Math.sqrt(s) <= near.radius && s > 0) nearDuplicateOf[i] = j;
    }
  }
  return { duplicateOf, conflicting, nearDuplicateOf };
}

function sameRow(x: ArrayLike<number>, a: number, b: number, d: number): boolean {
  for (let t = 0; t < d; t++) if (x[a * d + t] !== x[b * d + t]) return false;
  return true;
}
