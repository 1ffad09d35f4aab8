import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { Redis } from 'ioredis';
import type { Samples } from '../../src/core/index.js';
import { loadDigitsSplit } from '../../src/data/index.js';
import { initTfjs, saveTfjsModel } from '../../src/engines/index.js';
import { createZooModel } from '../../src/zoo/index.js';
import { BIN } from '../cli/helpers.js';

export const REDIS_URL = process.env.BULWARK_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const POSTGRES_URL = process.env.BULWARK_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export function tempDir(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), `bulwark-${prefix}-`));
  return dir;
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** A logistic digits classifier, trained for 2 epochs (~85% test accuracy, under a second), saved to `dir`. */
export async function trainDigitsModel(dir: string, seed = 42) {
  await initTfjs();
  const { train, test } = await loadDigitsSplit();
  const model = createZooModel('logistic', { inputShape: [28, 28, 1], numClasses: 10, classNames: train.classNames, seed, name: dir });
  await model.fit(train, { epochs: 2, seed });
  await saveTfjsModel(model, dir, { classNames: [...train.classNames], dataset: 'digits', architecture: 'logistic', seed });
  return { model, test };
}

/** The first `n` test images. */
export function firstRows(x: Samples, n: number): Samples {
  const size = x.data.length / x.shape[0];
  return { data: x.data.slice(0, n * size), shape: [n, ...x.shape.slice(1)] };
}

export function inferBody(x: Samples, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: x.shape, data: Array.from(x.data), ...extra }] });
}

export interface Answer {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
  text: string;
}

export async function call(url: string, opts: { key?: string; method?: string; body?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
  const headers: Record<string, string> = { ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}), ...opts.headers };
  if (opts.key) headers.authorization = `Bearer ${opts.key}`;
  const res = await fetch(url, { method: opts.method ?? (opts.body !== undefined ? 'POST' : 'GET'), headers, body: opts.body });
  const text = await res.text();
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // metrics text, or an empty body
  }
  return { status: res.status, headers: res.headers, body, text };
}

/** Null when Redis answers, else why not. */
export async function probeRedis(): Promise<string | null> {
  const r = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 2000, retryStrategy: () => null });
  r.on('error', () => {});
  try {
    await r.connect();
    await r.ping();
    return null;
  } catch (e) {
    return (e as Error).message || String(e);
  } finally {
    r.disconnect();
  }
}

export async function probePostgres(): Promise<string | null> {
  const c = new pg.Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: 3000 });
  c.on('error', () => {});
  try {
    await c.connect();
    await c.query('SELECT 1');
    return null;
  } catch (e) {
    return (e as Error).message || String(e);
  } finally {
    await c.end().catch(() => {});
  }
}

export async function pgExec(text: string): Promise<void> {
  const c = new pg.Client(POSTGRES_URL);
  await c.connect();
  try {
    await c.query(text);
  } finally {
    await c.end();
  }
}

export async function redisDeletePrefix(prefix: string): Promise<void> {
  const r = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  try {
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await r.del(...keys);
    } while (cursor !== '0');
  } finally {
    r.disconnect();
  }
}

export interface ServeProcess {
  child: ChildProcess;
  url: string;
  exited: Promise<number | null>;
}

/** Starts `bulwark serve` in a child process and waits for the line that gives its address. */
export function serveProcess(args: string[]): Promise<ServeProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'serve', ...args, '--port', '0', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    let out = '';
    let err = '';
    child.stderr?.on('data', (c: Buffer) => (err += c.toString()));
    child.stdout?.on('data', (c: Buffer) => {
      out += c.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve({ child, url: (JSON.parse(out.slice(0, nl)) as { url: string }).url, exited });
    });
    void exited.then((code) => reject(new Error(`bulwark serve exited ${code} before listening: ${err}`)));
  });
}
