import { promises as fs, type Stats } from 'node:fs';
import path from 'node:path';
import { BulwarkError } from '../core/index.js';
import { readError } from './stream.js';

/**
 * Which files a manifest covers, and under which names.
 *
 * Names follow the OpenSSF model-signing tool so its signatures and ours agree: POSIX paths
 * relative to the model directory, and "." when the model is a single file. Several roots
 * (`manifest create a b`) are named under their base names ("a/…", "b").
 */

/** Paths the OpenSSF tool always leaves out of a model directory. */
export const DEFAULT_IGNORES: readonly string[] = ['.git', '.gitattributes', '.github', '.gitignore'];

export interface WalkOptions {
  /** Follow symbolic links (default false: a link is refused, since it can point anywhere). */
  allowSymlinks?: boolean;
  /**
   * Paths relative to each root to leave out, with everything beneath them: ".git", "logs/",
   * "cache/tmp". `*` and `?` match within one path component (a Bulwark extension; the OpenSSF
   * verifier takes these literally). Added to DEFAULT_IGNORES.
   */
  ignore?: readonly string[];
  /** Instead of refusing a symbolic link, report it in `symlinks` (verification uses this). */
  collectSymlinks?: boolean;
}

export interface FileEntry {
  /** Name in the manifest. */
  name: string;
  /** Where to read it. */
  file: string;
  size: number;
}

export interface WalkResult {
  entries: FileEntry[];
  /** Names of symbolic links met when `collectSymlinks` is set and links are not allowed. */
  symlinks: string[];
  /** The ignore list in force (defaults first, then the caller's), normalised. */
  ignored: string[];
}

/** Component-wise, code-point order: the order Python sorts PurePosixPath in, so digests agree. */
export function compareNames(a: string, b: string): number {
  const pa = a.split('/'), pb = b.split('/');
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    if (pa[i] !== pb[i]) return compareCodePoints(pa[i], pb[i]);
  }
  return pa.length - pb.length;
}

function compareCodePoints(a: string, b: string): number {
  const ia = a[Symbol.iterator](), ib = b[Symbol.iterator]();
  for (;;) {
    const x = ia.next(), y = ib.next();
    if (x.done || y.done) return (x.done ? 0 : 1) - (y.done ? 0 : 1);
    const cx = x.value.codePointAt(0)!, cy = y.value.codePointAt(0)!;
    if (cx !== cy) return cx - cy;
  }
}

export function normaliseIgnore(p: string): string {
  return p.replace(/\\/g, '/').replace(/^(\.\/)+/, '').replace(/\/+$/, '');
}

type Matcher = (rel: string) => boolean;

function ignoreMatcher(patterns: readonly string[]): Matcher {
  const compiled = patterns
    .map(normaliseIgnore)
    .filter((p) => p !== '' && p !== '.')
    .map((p) => p.split('/').map((c) => new RegExp('^' + c.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]') + '$', 'u')));
  return (rel) => {
    const parts = rel.split('/');
    return compiled.some((pat) => pat.length <= parts.length && pat.every((re, i) => re.test(parts[i])));
  };
}

/** Lists the files under each root with their manifest names, sorted, ignores applied. */
export async function walkPaths(roots: readonly string[], opts: WalkOptions = {}): Promise<WalkResult> {
  if (roots.length === 0) throw new BulwarkError('E_USAGE', 'no path given: name a file or a directory to cover');
  const ignored = [...new Set([...DEFAULT_IGNORES, ...(opts.ignore ?? []).map(normaliseIgnore)])];
  const isIgnored = ignoreMatcher(ignored);
  const result: WalkResult = { entries: [], symlinks: [], ignored };
  const prefixes = new Set<string>();
  for (const root of roots) {
    const prefix = roots.length === 1 ? '' : path.basename(path.resolve(root));
    if (prefixes.has(prefix)) {
      throw new BulwarkError('E_USAGE', `two paths share the name "${prefix}"; a manifest names each path by its base name, so pass their common parent instead`);
    }
    prefixes.add(prefix);
    const st = await lstatOrThrow(root);
    if (st.isSymbolicLink() && !opts.allowSymlinks) throw symlinkError(root);
    const target = st.isSymbolicLink() ? await statOrThrow(root) : st;
    if (target.isFile()) {
      result.entries.push({ name: prefix === '' ? '.' : prefix, file: root, size: target.size });
    } else if (target.isDirectory()) {
      await walkDir(root, '', prefix, opts, isIgnored, result, new Set([opts.allowSymlinks ? await fs.realpath(root) : root]));
    } else {
      throw notRegular(root);
    }
  }
  result.entries.sort((a, b) => compareNames(a.name, b.name));
  result.symlinks.sort(compareNames);
  return result;
}

async function walkDir(dir: string, rel: string, prefix: string, opts: WalkOptions, isIgnored: Matcher, out: WalkResult, ancestors: Set<string>): Promise<void> {
  let dirents;
  try {
    dirents = await fs.readdir(dir, { withFileTypes: true });
  } catch (e) {
    throw readError(dir, e);
  }
  for (const d of dirents) {
    const childRel = rel === '' ? d.name : `${rel}/${d.name}`;
    if (isIgnored(childRel)) continue;
    const file = path.join(dir, d.name);
    const name = prefix === '' ? childRel : `${prefix}/${childRel}`;
    let isDir = d.isDirectory();
    let size = 0;
    if (d.isSymbolicLink()) {
      if (!opts.allowSymlinks) {
        if (opts.collectSymlinks) {
          out.symlinks.push(name);
          continue;
        }
        throw symlinkError(file);
      }
      const st = await statOrThrow(file);
      if (!st.isFile() && !st.isDirectory()) throw notRegular(file);
      isDir = st.isDirectory();
      size = st.size;
    } else if (d.isFile()) {
      size = (await statOrThrow(file)).size;
    } else if (!isDir) {
      throw notRegular(file);
    }
    if (isDir) {
      // A followed link can lead back up the tree: never enter a directory we are inside.
      const real = opts.allowSymlinks ? await fs.realpath(file) : file;
      if (ancestors.has(real)) continue;
      ancestors.add(real);
      await walkDir(file, childRel, prefix, opts, isIgnored, out, ancestors);
      ancestors.delete(real);
    } else {
      out.entries.push({ name, file, size });
    }
  }
}

async function lstatOrThrow(p: string): Promise<Stats> {
  try {
    return await fs.lstat(p);
  } catch (e) {
    throw readError(p, e);
  }
}

async function statOrThrow(p: string): Promise<Stats> {
  try {
    return await fs.stat(p);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT') throw new BulwarkError('E_FILE_NOT_FOUND', `${p} is a symbolic link to nothing (its target does not exist)`);
    throw readError(p, e);
  }
}

function symlinkError(p: string): BulwarkError {
  return new BulwarkError('E_USAGE', `${p} is a symbolic link; links are refused because they can point outside what is signed — allow them with allowSymlinks (--allow-symlinks) or replace the link by the file`);
}

function notRegular(p: string): BulwarkError {
  return new BulwarkError('E_FILE_READ', `${p} is neither a regular file nor a directory (a socket, pipe or device); remove it or add it to the ignore list`);
}
