import { createHash } from 'node:crypto';
import { Sha256 } from './sha256.js';

/**
 * Merkle trees as RFC 6962 (Certificate Transparency) defines them, because that shape is
 * well specified, has independent implementations to check against, and its domain
 * separation keeps a leaf from ever being passed off as an inner node:
 *
 *   leaf  = SHA-256(0x00 || record bytes)
 *   node  = SHA-256(0x01 || left || right)
 *   root of n leaves: split at k, the largest power of two below n; root = node(root(first k),
 *   root(rest)). The root of no leaves is SHA-256 of the empty string.
 */

const LEAF_PREFIX = Buffer.from([0x00]);
const NODE_PREFIX = Buffer.from([0x01]);

export function leafHash(data: Uint8Array): Buffer {
  return createHash('sha256').update(LEAF_PREFIX).update(data).digest();
}

export function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  return createHash('sha256').update(NODE_PREFIX).update(left).update(right).digest();
}

/**
 * Computes the root leaf by leaf with O(log n) memory, so a million-row file never holds
 * all its leaf hashes at once. It keeps the root of at most one perfect subtree per height
 * (a binary counter); folding them from the smallest (rightmost) up gives exactly RFC 6962's
 * split at the largest power of two.
 */
export class MerkleAccumulator {
  private readonly levels: Uint8Array[] = [];
  private readonly occupied: boolean[] = [];
  private readonly carry = new Uint8Array(32);
  private readonly sha = new Sha256();
  private n = 0;

  /** Adds a leaf hash (already domain-separated, as `leafHash` makes it); the bytes are copied. */
  push(leaf: Uint8Array): void {
    const carry = this.carry;
    carry.set(leaf.subarray(0, 32));
    let h = 0;
    for (; this.occupied[h]; h++) {
      this.node(this.levels[h], carry, carry);
      this.occupied[h] = false;
    }
    if (this.levels[h] === undefined) this.levels[h] = new Uint8Array(32);
    this.levels[h].set(carry);
    this.occupied[h] = true;
    this.n++;
  }

  get count(): number {
    return this.n;
  }

  /** The root over every leaf pushed so far, hex-encoded. */
  root(): string {
    if (this.n === 0) return createHash('sha256').digest('hex');
    const right = new Uint8Array(32);
    let have = false;
    for (let h = 0; h < this.levels.length; h++) {
      if (!this.occupied[h]) continue;
      if (have) this.node(this.levels[h], right, right);
      else right.set(this.levels[h]);
      have = true;
    }
    return Buffer.from(right).toString('hex');
  }

  private node(left: Uint8Array, right: Uint8Array, out: Uint8Array): void {
    this.sha.reset().update(NODE_PREFIX).update(left).update(right).digestInto(out);
  }
}

/** Root over in-memory leaf hashes; the recursive definition, kept for small inputs and tests. */
export function merkleRoot(leaves: readonly Buffer[]): string {
  const acc = new MerkleAccumulator();
  for (const l of leaves) acc.push(l);
  return acc.root();
}
