import { createHash } from 'node:crypto';
import { forEachChunk } from './stream.js';

export interface FileDigest {
  path: string;
  size: number;
  sha256: string;
}

/** SHA-256 of a file, streamed through two reused 4 MiB buffers so memory stays flat whatever the file size. */
export async function sha256File(path: string): Promise<FileDigest> {
  const hash = createHash('sha256');
  const size = await forEachChunk(path, (chunk) => hash.update(chunk));
  return { path, size, sha256: hash.digest('hex') };
}

/** SHA-256 of in-memory bytes (a dataset's samples, say), hex-encoded. */
export function sha256Bytes(...parts: ArrayBufferView[]): string {
  const hash = createHash('sha256');
  for (const p of parts) hash.update(new Uint8Array(p.buffer, p.byteOffset, p.byteLength));
  return hash.digest('hex');
}
