import { open, readFile } from 'node:fs/promises';
import { BulwarkError } from '../core/index.js';

/** 4 MiB: large enough that per-read overhead vanishes next to hashing, small enough to stay flat. */
export const CHUNK_SIZE = 4 << 20;

/**
 * Reads a file in fixed-size chunks through two reused buffers. The next read is issued
 * before the current chunk is handed to `onChunk`, so disk (in libuv's thread pool) and
 * hashing (on this thread) overlap; memory is two buffers whatever the file size.
 *
 * `onChunk` must finish with the chunk before it returns: the buffer is reused afterwards.
 * Returns the number of bytes read.
 */
export async function forEachChunk(file: string, onChunk: (chunk: Buffer) => void, chunkSize = CHUNK_SIZE): Promise<number> {
  let fh;
  try {
    fh = await open(file, 'r');
  } catch (e) {
    throw readError(file, e);
  }
  let total = 0;
  let pending: Promise<{ bytesRead: number }> | undefined;
  try {
    // Small files get small buffers, so hashing many at once does not hold 8 MiB apiece.
    chunkSize = Math.min(chunkSize, Math.max(64 << 10, (await fh.stat()).size + 1));
    const bufs = [Buffer.allocUnsafe(chunkSize), Buffer.allocUnsafe(chunkSize)];
    let which = 0;
    pending = fh.read(bufs[0], 0, chunkSize, null);
    for (;;) {
      const { bytesRead } = await pending;
      if (bytesRead === 0) break;
      const current = bufs[which];
      which ^= 1;
      pending = fh.read(bufs[which], 0, chunkSize, null);
      total += bytesRead;
      onChunk(current.subarray(0, bytesRead));
    }
  } catch (e) {
    if (e instanceof BulwarkError) throw e;
    throw readError(file, e);
  } finally {
    // A read still in flight (when onChunk threw) must settle before the handle closes.
    await pending?.catch(() => {});
    await fh.close().catch(() => {});
  }
  return total;
}

export function readError(file: string, e: unknown): BulwarkError {
  const err = e as NodeJS.ErrnoException;
  if (err.code === 'ENOENT') return new BulwarkError('E_FILE_NOT_FOUND', `${file} does not exist`);
  return new BulwarkError('E_FILE_READ', `cannot read ${file}: ${err.message}`, { cause: e });
}

/** Reads and parses a JSON file; `expected` finishes the message when it is not JSON. */
export async function readJsonFile(file: string, expected: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw readError(file, e);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new BulwarkError('E_DATA_PARSE', `${file} is not valid JSON (${(e as Error).message}); expected ${expected}`);
  }
}
