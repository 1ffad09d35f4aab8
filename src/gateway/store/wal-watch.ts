import { closeSync, openSync, readSync } from 'node:fs';

// The wal-index header: two copies of a 48-byte header at the start of the `-shm` file
// (https://www.sqlite.org/walformat.html). Every commit by any connection rewrites it (its
// iChange counter counts transactions; mxFrame, the salts and checksums move with the WAL), and
// SQLite's own readers compare it byte for byte to tell whether their page cache is stale.
const HEADER_BYTES = 96;

/**
 * Tells whether anything was committed to a WAL-mode SQLite database since the last call, by
 * reading the wal-index header: one `pread`, no lock and no read transaction. A read
 * transaction per request costs more than the query it guards (locks on the database and the
 * `-shm` file), so a cache checked this way answers as freshly as a query would, for a fraction
 * of the cost. Any doubt — the file is gone, short, or changing — counts as a change.
 */
export class WalChangeWatch {
  private readonly seen = Buffer.alloc(HEADER_BYTES);
  private readonly now = Buffer.alloc(HEADER_BYTES);
  private primed = false;

  private constructor(private fd: number | null) {}

  /** A watch on `dbFile`'s wal-index, or null when there is none to read (not in WAL mode, say). */
  static open(dbFile: string): WalChangeWatch | null {
    try {
      return new WalChangeWatch(openSync(`${dbFile}-shm`, 'r'));
    } catch {
      return null;
    }
  }

  /** True when the header differs from the last call's (and on the first call). Call it before reading. */
  changed(): boolean {
    if (this.fd === null) return true;
    let n = 0;
    try {
      n = readSync(this.fd, this.now, 0, HEADER_BYTES, 0);
    } catch {
      return true;
    }
    if (n < HEADER_BYTES) return true;
    // A writer updates the two copies one after the other; differing copies mean a commit in progress.
    if (this.now.compare(this.now, 0, 48, 48, 96) !== 0) return true;
    if (this.primed && this.now.equals(this.seen)) return false;
    this.now.copy(this.seen);
    this.primed = true;
    return true;
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}
