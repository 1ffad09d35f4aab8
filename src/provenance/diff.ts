/**
 * Which records changed between two versions of a file, from their record digests alone.
 *
 * Row numbers are 1-based data-row numbers: `removed` and `changed` count rows of the OLD
 * (signed) file, `added` counts rows of the NEW (current) file. Within one stretch of edits
 * between unchanged rows, removed and inserted rows are paired off as `changed` (the first
 * removed with the first inserted, and so on); the surplus is `removed` or `added`.
 */
export interface RecordChanges {
  changed: number[];
  added: number[];
  removed: number[];
}

/**
 * Each gap first gets an exact (shortest edit script) Myers search limited to a few edits,
 * which settles the usual case of scattered edits optimally even among duplicate rows. Past
 * that, unique rows anchor the diff (patience), and gaps with no unique rows get a longer
 * Myers search; past its bounds the gap counts as rewritten.
 */
const QUICK_MYERS_EDITS = 64;
const MAX_MYERS_EDITS = 1000;
const MAX_MYERS_WORK = 50_000_000;

/**
 * Digests are fixed-width byte strings; each distinct one becomes a small integer so the
 * diff compares numbers. `width`-byte keys go through a Map as 16-bit-unit strings.
 */
function toIds(a: Uint8Array, b: Uint8Array, width: number): { ia: Int32Array; ib: Int32Array; distinct: number } {
  const ids = new Map<string, number>();
  const convert = (bytes: Uint8Array): Int32Array => {
    const n = Math.floor(bytes.length / width);
    const out = new Int32Array(n);
    const units: number[] = new Array<number>(Math.ceil(width / 2));
    for (let r = 0; r < n; r++) {
      const o = r * width;
      for (let u = 0; u < units.length; u++) units[u] = (bytes[o + 2 * u] << 8) | (2 * u + 1 < width ? bytes[o + 2 * u + 1] : 0);
      const key = String.fromCharCode(...units);
      let id = ids.get(key);
      if (id === undefined) {
        id = ids.size;
        ids.set(key, id);
      }
      out[r] = id;
    }
    return out;
  };
  const ia = convert(a);
  const ib = convert(b);
  return { ia, ib, distinct: ids.size };
}

/** Diffs two digest sequences (`width` bytes per record) and names the changed rows. */
export function diffRecords(oldDigests: Uint8Array, newDigests: Uint8Array, width: number): RecordChanges {
  const { ia, ib, distinct } = toIds(oldDigests, newDigests, width);
  const matchOf = new Matcher(ia, ib, distinct).run();
  return changesFromMatches(matchOf, ib.length);
}

/** Finds matched (old, new) row pairs, strictly increasing in both. */
class Matcher {
  private readonly matchOf: Int32Array;
  private readonly countA: Int32Array;
  private readonly countB: Int32Array;
  private readonly posB: Int32Array;

  constructor(private readonly a: Int32Array, private readonly b: Int32Array, distinct: number) {
    this.countA = new Int32Array(distinct);
    this.countB = new Int32Array(distinct);
    this.posB = new Int32Array(distinct);
    this.matchOf = new Int32Array(a.length).fill(-1);
  }

  /** Returns, for each old row, the index of the new row it matches, or -1. */
  run(): Int32Array {
    // Gaps wait on an explicit stack so deep nesting cannot overflow the call stack.
    const stack: number[] = [0, this.a.length, 0, this.b.length];
    while (stack.length > 0) {
      const bHi = stack.pop()!, bLo = stack.pop()!, aHi = stack.pop()!, aLo = stack.pop()!;
      this.gap(aLo, aHi, bLo, bHi, stack);
    }
    return this.matchOf;
  }

  private match(i: number, j: number): void {
    this.matchOf[i] = j;
  }

  /** Patience step: rows unique on both sides, in increasing order on both, anchor the diff. */
  private gap(aLo: number, aHi: number, bLo: number, bHi: number, stack: number[]): void {
    const { a, b } = this;
    while (aLo < aHi && bLo < bHi && a[aLo] === b[bLo]) this.match(aLo++, bLo++);
    while (aLo < aHi && bLo < bHi && a[aHi - 1] === b[bHi - 1]) this.match(--aHi, --bHi);
    if (aLo === aHi || bLo === bHi) return;
    if (this.myers(aLo, aHi, bLo, bHi, QUICK_MYERS_EDITS, MAX_MYERS_WORK)) return;

    const { countA, countB, posB } = this;
    for (let i = aLo; i < aHi; i++) countA[a[i]]++;
    for (let j = bLo; j < bHi; j++) {
      countB[b[j]]++;
      posB[b[j]] = j;
    }
    const candI: number[] = [];
    const candJ: number[] = [];
    for (let i = aLo; i < aHi; i++) {
      const id = a[i];
      if (countA[id] === 1 && countB[id] === 1) {
        candI.push(i);
        candJ.push(posB[id]);
      }
    }
    for (let i = aLo; i < aHi; i++) countA[a[i]] = 0;
    for (let j = bLo; j < bHi; j++) countB[b[j]] = 0;

    const lis = longestIncreasing(candJ);
    if (lis.length === 0) {
      this.myers(aLo, aHi, bLo, bHi, MAX_MYERS_EDITS, MAX_MYERS_WORK);
      return;
    }
    let pa = aLo, pb = bLo;
    for (const k of lis) {
      const i = candI[k], j = candJ[k];
      if (i > pa || j > pb) stack.push(pa, i, pb, j);
      this.match(i, j);
      pa = i + 1;
      pb = j + 1;
    }
    if (pa < aHi || pb < bHi) stack.push(pa, aHi, pb, bHi);
  }

  /**
   * Myers' O(ND) greedy diff: records the matches of a shortest edit script and returns
   * true, or returns false (matching nothing) past `maxEdits` edits or `maxWork` steps —
   * a bounded answer beats an unbounded wait.
   */
  private myers(aLo: number, aHi: number, bLo: number, bHi: number, maxEdits: number, maxWork: number): boolean {
    const { a, b } = this;
    const n = aHi - aLo, m = bHi - bLo;
    const maxD = Math.min(n + m, maxEdits);
    const off = maxD + 1;
    const v = new Int32Array(2 * maxD + 3);
    const trace: Int32Array[] = [];
    let work = 0;
    for (let d = 0; d <= maxD && work < maxWork; d++) {
      trace.push(v.slice());
      for (let k = -d; k <= d; k += 2) {
        let x = k === -d || (k !== d && v[off + k - 1] < v[off + k + 1]) ? v[off + k + 1] : v[off + k - 1] + 1;
        let y = x - k;
        const x0 = x;
        while (x < n && y < m && a[aLo + x] === b[bLo + y]) {
          x++;
          y++;
        }
        work += x - x0 + 1;
        v[off + k] = x;
        if (x >= n && y >= m) {
          this.backtrack(trace, d, k, off, aLo, bLo, n);
          return true;
        }
      }
    }
    return false;
  }

  private backtrack(trace: Int32Array[], d: number, k: number, off: number, aLo: number, bLo: number, n: number): void {
    let x = n;
    let y = n - k;
    for (; d > 0; d--) {
      const v = trace[d];
      const down = k === -d || (k !== d && v[off + k - 1] < v[off + k + 1]);
      const prevK = down ? k + 1 : k - 1;
      const prevX = v[off + prevK];
      const prevY = prevX - prevK;
      while (x > prevX && y > prevY) this.match(aLo + --x, bLo + --y);
      x = prevX;
      y = prevY;
      k = prevK;
    }
    while (x > 0 && y > 0) this.match(aLo + --x, bLo + --y);
  }
}

/** Indices (into `seq`) of a longest strictly increasing subsequence, O(n log n). */
function longestIncreasing(seq: readonly number[]): number[] {
  const tails: number[] = [];
  const prev = new Int32Array(seq.length);
  for (let k = 0; k < seq.length; k++) {
    let lo = 0, hi = tails.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (seq[tails[mid]] < seq[k]) lo = mid + 1;
      else hi = mid;
    }
    prev[k] = lo > 0 ? tails[lo - 1] : -1;
    tails[lo] = k;
  }
  const out: number[] = new Array<number>(tails.length);
  for (let k = tails.length > 0 ? tails[tails.length - 1] : -1, p = tails.length - 1; k >= 0; k = prev[k], p--) out[p] = k;
  return out;
}

function changesFromMatches(matchOf: Int32Array, m: number): RecordChanges {
  const out: RecordChanges = { changed: [], added: [], removed: [] };
  let pa = 0, pb = 0;
  const flush = (i: number, j: number): void => {
    const dels = i - pa, ins = j - pb;
    const paired = Math.min(dels, ins);
    for (let t = 0; t < paired; t++) out.changed.push(pa + t + 1);
    for (let t = paired; t < dels; t++) out.removed.push(pa + t + 1);
    for (let t = paired; t < ins; t++) out.added.push(pb + t + 1);
  };
  for (let i = 0; i < matchOf.length; i++) {
    const j = matchOf[i];
    if (j < 0) continue;
    flush(i, j);
    pa = i + 1;
    pb = j + 1;
  }
  flush(matchOf.length, m);
  return out;
}
