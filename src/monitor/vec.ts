/** Squared L2 distance, giving up (returning a value ≥ `bound`) once it exceeds `bound`. */
export function sqDistBounded(a: Float32Array, aOff: number, b: Float32Array, bOff: number, d: number, bound: number): number {
  let s = 0;
  let i = 0;
  // Check the bound every 64 values: often enough to prune, rarely enough not to slow the loop.
  while (i < d) {
    const end = Math.min(d, i + 64);
    for (; i < end; i++) {
      const t = a[aOff + i] - b[bOff + i];
      s += t * t;
    }
    if (s >= bound) return s;
  }
  return s;
}

/** A growable pool of equal-length rows in one Float32Array (no per-row objects). */
export class RowPool {
  data: Float32Array;
  count = 0;
  constructor(readonly dim: number, initialRows = 16) {
    this.data = new Float32Array(dim * initialRows);
  }
  push(row: Float32Array): void {
    if ((this.count + 1) * this.dim > this.data.length) {
      const next = new Float32Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data.set(row, this.count * this.dim);
    this.count++;
  }
  /** Minimum L2 distance from `row` to the pool's rows (Infinity when empty). */
  minDistance(row: Float32Array): number {
    let best = Infinity;
    for (let r = 0; r < this.count; r++) {
      const s = sqDistBounded(this.data, r * this.dim, row, 0, this.dim, best);
      if (s < best) best = s;
    }
    return Math.sqrt(best);
  }
}

export function argmax(v: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
  return best;
}

/** Float32Array row ↔ bytes, for stores that keep events as binary strings. */
export function floatsToBuffer(v: Float32Array, header: number[] = []): Buffer {
  const buf = Buffer.allocUnsafe(4 * header.length + 4 * v.length);
  for (let i = 0; i < header.length; i++) buf.writeInt32LE(header[i], 4 * i);
  Buffer.from(v.buffer, v.byteOffset, v.byteLength).copy(buf, 4 * header.length);
  return buf;
}

export function bufferToFloats(buf: Buffer, headerInts: number): { header: number[]; values: Float32Array } {
  const header: number[] = [];
  for (let i = 0; i < headerInts; i++) header.push(buf.readInt32LE(4 * i));
  const bytes = buf.subarray(4 * headerInts);
  const values = new Float32Array(bytes.length / 4);
  Buffer.from(values.buffer).set(bytes);
  return { header, values };
}

/** Linear-interpolated quantile (numpy's default) of an ascending array. */
export function quantileSorted(s: ArrayLike<number>, q: number): number {
  if (s.length === 0) return NaN;
  const pos = q * (s.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(s.length - 1, lo + 1);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}
