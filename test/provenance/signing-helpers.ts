import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BulwarkError } from '../../src/core/errors.js';

/** A fresh temporary directory, removed when the test process exits. */
export function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `bulwark-${prefix}-`));
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes files given as {relative path: content} under `root`, creating folders. */
export function writeTree(root: string, files: Record<string, string | Buffer>): string {
  for (const [rel, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), content);
  }
  return root;
}

/** Copies a (possibly read-only) fixture folder somewhere writable. */
export function copyWritable(src: string, dest: string): string {
  fs.cpSync(src, dest, { recursive: true });
  for (const f of fs.readdirSync(dest, { recursive: true }) as string[]) fs.chmodSync(path.join(dest, f), fs.statSync(path.join(dest, f)).isDirectory() ? 0o755 : 0o644);
  fs.chmodSync(dest, 0o755);
  return dest;
}

/** Flips the lowest bit of one byte of a file (appends a byte to an empty file). */
export function flipByte(file: string, at = 0): void {
  const buf = fs.readFileSync(file);
  if (buf.length === 0) fs.writeFileSync(file, Buffer.from([0x01]));
  else {
    buf[at % buf.length] ^= 0x01;
    fs.writeFileSync(file, buf);
  }
}

/** Asserts the promise rejects with a BulwarkError of `code` whose message matches every regex. */
export async function rejects(p: Promise<unknown>, code: string, ...patterns: RegExp[]): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof BulwarkError, `expected a BulwarkError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    for (const re of patterns) assert.match(e.message, re);
    return true;
  });
}
