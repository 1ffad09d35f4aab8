import { promises as fs } from 'node:fs';
import path from 'node:path';
import { BulwarkError } from './errors.js';

/**
 * Writes a set of files as one directory that appears complete or not at all: the files go
 * into a hidden sibling first, which then replaces `dir` by rename. A crash halfway leaves
 * the previous contents of `dir` untouched.
 */
export async function writeDirAtomically(dir: string, files: Record<string, string | Uint8Array>): Promise<void> {
  const parent = path.dirname(path.resolve(dir));
  const base = path.basename(dir);
  const tmp = path.join(parent, `.${base}.tmp-${process.pid}-${Date.now()}`);
  const old = path.join(parent, `.${base}.old-${process.pid}-${Date.now()}`);
  try {
    await fs.mkdir(parent, { recursive: true });
    await fs.mkdir(tmp);
    for (const [name, content] of Object.entries(files)) await fs.writeFile(path.join(tmp, name), content);
    const existing = await fs.stat(dir).catch(() => null);
    if (existing && !existing.isDirectory()) throw new Error(`${dir} exists and is not a directory`);
    if (existing) await fs.rename(dir, old);
    await fs.rename(tmp, dir);
    if (existing) await fs.rm(old, { recursive: true, force: true });
  } catch (e) {
    await fs.rm(tmp, { recursive: true, force: true }).catch(() => {});
    throw new BulwarkError('E_OUTPUT', `cannot write ${dir}: ${(e as Error).message}`);
  }
}

/** Writes one file via a temporary sibling and a rename, so readers never see half of it. */
export async function writeFileAtomically(file: string, content: string | Uint8Array): Promise<void> {
  const tmp = path.join(path.dirname(path.resolve(file)), `.${path.basename(file)}.tmp-${process.pid}-${Date.now()}`);
  try {
    await fs.mkdir(path.dirname(path.resolve(file)), { recursive: true });
    await fs.writeFile(tmp, content);
    await fs.rename(tmp, file);
  } catch (e) {
    await fs.rm(tmp, { force: true }).catch(() => {});
    throw new BulwarkError('E_OUTPUT', `cannot write ${file}: ${(e as Error).message}`);
  }
}
