import { createHash } from 'node:crypto';
import { Sha256 } from './sha256.js';
import { forEachChunk } from './stream.js';
import { MerkleAccumulator } from './merkle.js';

/**
 * Record-level digests for tabular files, so verification can say which rows changed
 * rather than only that the file did.
 *
 * A record is a CSV/TSV row (a newline inside a quoted field does not end it) or a JSONL
 * line. Its bytes exclude the line terminator (LF or CRLF), so converting line endings
 * changes the file digest but no record. Empty lines are not records and are not counted.
 * For CSV/TSV the first record is the header: it is digested on its own and the data rows
 * are numbered from 1 after it.
 */
export type RecordFormat = 'csv' | 'tsv' | 'jsonl';

/** Leaf digests are truncated to this many bytes when stored: 8 bytes keep a million rows
 * collision-free in practice (~1e-8) at a quarter of the size. They only locate changes;
 * integrity rests on the full file digest and the full-width Merkle root. */
export const RECORD_DIGEST_BYTES = 8;

export interface RecordDigests {
  format: RecordFormat;
  /** Hex leaf hash of the header record (CSV/TSV), or null when there is none. */
  header: string | null;
  /** Number of data records (the header not included). */
  count: number;
  /** RFC 6962 Merkle root (hex) over the data records' leaf hashes, in file order. */
  merkleRoot: string;
  /** `count * RECORD_DIGEST_BYTES` bytes: the leading bytes of each data record's leaf hash. */
  digests: Uint8Array;
}

export interface FileRecordsDigest {
  sha256: string;
  size: number;
  records: RecordDigests;
}

export function recordFormatOf(name: string): RecordFormat | undefined {
  const lower = name.toLowerCase();
  if (lower.endsWith('.csv')) return 'csv';
  if (lower.endsWith('.tsv')) return 'tsv';
  if (lower.endsWith('.jsonl') || lower.endsWith('.ndjson')) return 'jsonl';
  return undefined;
}

const LF = 0x0a;
const CR = 0x0d;
const QUOTE = 0x22;
const LEAF_PREFIX = Buffer.from([0x00]);
const CR_BYTE = Buffer.from([CR]);
const EMPTY = Buffer.alloc(0);

// CSV scanner states. A quote opens a quoted field only at the start of a field; elsewhere
// it is literal (csv-parse's relax_quotes), so a stray quote cannot swallow the rest of the file.
const FIELD_START = 0;
const UNQUOTED = 1;
const QUOTED = 2;
const QUOTE_IN_QUOTED = 3;

/**
 * Splits a byte stream into records and digests each as it goes; chunks may cut a record
 * (or a CRLF) anywhere, so a record in progress is hashed incrementally.
 */
class RecordHasher {
  private state = FIELD_START;
  private readonly sha = new Sha256();
  private started = false;
  private readonly leaf = new Uint8Array(32);
  private pendingCr = false;
  private first = true;
  private headerPending: boolean;
  header: string | null = null;
  private readonly merkle = new MerkleAccumulator();
  private digests = new Uint8Array(1 << 16);
  private readonly delimiter: number;

  constructor(private readonly format: RecordFormat, header: boolean) {
    this.headerPending = header && format !== 'jsonl';
    this.delimiter = format === 'tsv' ? 0x09 : 0x2c;
  }

  feed(chunk: Buffer): void {
    let start = 0;
    if (this.first) {
      this.first = false;
      // A UTF-8 byte-order mark is encoding, not content.
      if (chunk.length >= 3 && chunk[0] === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf) start = 3;
    }
    if (this.format === 'jsonl') {
      for (;;) {
        const nl = chunk.indexOf(LF, start);
        if (nl < 0) break;
        this.endRecord(chunk, start, nl);
        start = nl + 1;
      }
    } else {
      const delim = this.delimiter;
      let s = this.state;
      for (let i = start; i < chunk.length; i++) {
        const b = chunk[i];
        if (s === QUOTED) {
          if (b === QUOTE) s = QUOTE_IN_QUOTED;
        } else if (b === LF) {
          this.endRecord(chunk, start, i);
          start = i + 1;
          s = FIELD_START;
        } else if (b === QUOTE) {
          s = s === FIELD_START || s === QUOTE_IN_QUOTED ? QUOTED : UNQUOTED;
        } else if (b === delim) {
          s = FIELD_START;
        } else if (b !== CR || s === QUOTE_IN_QUOTED) {
          s = UNQUOTED;
        }
      }
      this.state = s;
    }
    if (start < chunk.length) {
      // The record continues in the next chunk; a trailing CR may yet turn out to be a CRLF.
      const endsCr = chunk[chunk.length - 1] === CR;
      this.append(chunk.subarray(start, endsCr ? chunk.length - 1 : chunk.length));
      this.pendingCr = endsCr;
    }
  }

  /** Call once after the last chunk: a final record without a newline still counts. */
  finish(): RecordDigests {
    if (this.started || this.pendingCr) this.endRecord(EMPTY, 0, 0);
    const count = this.merkle.count;
    return {
      format: this.format,
      header: this.header,
      count,
      merkleRoot: this.merkle.root(),
      digests: this.digests.slice(0, count * RECORD_DIGEST_BYTES),
    };
  }

  private append(part: Uint8Array): void {
    if (this.pendingCr) {
      this.pendingCr = false;
      this.hasher().update(CR_BYTE);
    }
    if (part.length > 0) this.hasher().update(part);
  }

  private hasher(): Sha256 {
    if (!this.started) {
      this.started = true;
      this.sha.reset().update(LEAF_PREFIX);
    }
    return this.sha;
  }

  private endRecord(chunk: Buffer, from: number, to: number): void {
    if (to > from && chunk[to - 1] === CR) to--;
    else if (to === from && this.pendingCr) this.pendingCr = false; // CR then LF across chunks
    if (this.pendingCr) this.append(EMPTY);
    if (to > from) {
      // The common case, a record within one chunk: hashed in place, nothing copied.
      this.hasher().update(chunk, from, to);
    }
    if (!this.started) return; // an empty line: not a record
    this.started = false;
    const leaf = this.leaf;
    this.sha.digestInto(leaf);
    if (this.headerPending) {
      this.headerPending = false;
      this.header = Buffer.from(leaf).toString('hex');
      return;
    }
    const n = this.merkle.count;
    if ((n + 1) * RECORD_DIGEST_BYTES > this.digests.length) {
      const grown = new Uint8Array(this.digests.length * 2);
      grown.set(this.digests);
      this.digests = grown;
    }
    this.digests.set(leaf.subarray(0, RECORD_DIGEST_BYTES), n * RECORD_DIGEST_BYTES);
    this.merkle.push(leaf);
  }
}

export interface RecordOptions {
  /** Whether a CSV/TSV file's first record is a header (default true); ignored for JSONL. */
  header?: boolean;
  /** Called with each chunk's size as it is read, for progress reporting. */
  onBytes?: (n: number) => void;
}

/** One pass over the file: its SHA-256 and size, and the digest of every record. */
export async function hashFileWithRecords(file: string, format: RecordFormat, opts: RecordOptions = {}): Promise<FileRecordsDigest> {
  const fileHash = createHash('sha256');
  const records = new RecordHasher(format, opts.header ?? true);
  const size = await forEachChunk(file, (chunk) => {
    fileHash.update(chunk);
    records.feed(chunk);
    opts.onBytes?.(chunk.length);
  });
  return { sha256: fileHash.digest('hex'), size, records: records.finish() };
}

/**
 * Record digests of bytes already in memory; same rules as for files. `chunkSize` feeds the
 * bytes in pieces, as a file read would (tests use it to cut records and CRLFs anywhere).
 */
export function recordDigestsOf(bytes: Uint8Array, format: RecordFormat, opts: { header?: boolean; chunkSize?: number } = {}): RecordDigests {
  const r = new RecordHasher(format, opts.header ?? true);
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const step = opts.chunkSize ?? Math.max(1, buf.length);
  for (let p = 0; p < buf.length; p += step) r.feed(buf.subarray(p, p + step));
  return r.finish();
}
