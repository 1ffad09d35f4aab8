import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { BulwarkError } from '../core/index.js';

export interface FileDigest {
  path: string;
  size: number;
  sha256: string;
}

/** SHA-256 of a file, streamed so memory stays flat whatever the file size. */
export async function sha256File(path: string): Promise<FileDigest> {
  const hash = createHash('sha256');
  let size = 0;
  try {
    for await (const chunk of createReadStream(path)) {
      hash.update(chunk as Buffer);
      size += (chunk as Buffer).length;
    }
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new BulwarkError(err.code === 'ENOENT' ? 'E_FILE_NOT_FOUND' : 'E_FILE_READ', `cannot hash ${path}: ${err.message}`);
  }
  return { path, size, sha256: hash.digest('hex') };
}

/** SHA-256 of in-memory bytes (a dataset's samples, say), hex-encoded. */
export function sha256Bytes(...parts: ArrayBufferView[]): string {
  const hash = createHash('sha256');
  for (const p of parts) hash.update(new Uint8Array(p.buffer, p.byteOffset, p.byteLength));
  return hash.digest('hex');
}
